//go:build cgo && !noiroh

package app

import (
	"context"
	"log/slog"

	"github.com/alkdev/alknet/cli/internal/metrics"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

func irohVersion() string { return "iroh " + iroh.Version() + " abi 1" }

// bindIrohServe binds the node's iroh endpoint (spec iroh.md §8.3) as [iroh] says; --dev binds
// loopback (127.0.0.1:0 unless --iroh-bind) with relays disabled.
func bindIrohServe(ctx context.Context, c irohServeConfig) (irohServing, error) {
	o := iroh.Options{Key: c.key, ALPNs: c.alpns, BindAddrs: c.cfg.Bind, Advertise: c.cfg.Advertise,
		Relay: iroh.RelayMode(c.cfg.RelayMode()), RelayURLs: c.cfg.RelayURLs, LogLevel: c.cfg.LogLevel,
		Limits: c.limits, Logger: c.log, Metrics: c.metrics, OnAddr: c.onAddr}
	if len(c.binds) > 0 {
		o.BindAddrs = c.binds
	}
	if c.dev {
		o.Relay, o.RelayURLs = iroh.RelayDisabled, nil
		if len(c.binds) == 0 {
			o.BindAddrs = []string{"127.0.0.1:0"}
		}
	}
	return iroh.Bind(ctx, o)
}

// irohDialer binds a dial-only endpoint for a client command: relay custom with the ticket's
// relay URL, n0 (lookup by key) when the ticket has neither a relay nor an address, disabled
// otherwise; keyed by key (nil: ephemeral). close ends it.
func irohDialer(ctx context.Context, key *identity.NodeKey, tk identity.Ticket, log *slog.Logger) (client.IrohDialer, func(), error) {
	if key == nil {
		var err error
		if key, err = identity.Generate(); err != nil {
			return nil, nil, err
		}
	}
	o := iroh.Options{Key: key, Logger: log}
	o.Relay, o.RelayURLs = clientRelay(tk)
	t, err := iroh.Bind(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	return t, func() { _ = t.Close() }, nil
}

// irohBuilt: this binary links iroh.
const irohBuilt = true

// clientRelay is a client endpoint's relay mode for tk: custom with the ticket's relay URL, n0
// (lookup by key) when the ticket has neither a relay nor an address, disabled otherwise.
func clientRelay(tk identity.Ticket) (iroh.RelayMode, []string) {
	switch {
	case tk.Iroh != nil && tk.Iroh.RelayURL != "":
		return iroh.RelayCustom, []string{tk.Iroh.RelayURL}
	case tk.Iroh != nil && len(tk.Iroh.Addrs) == 0:
		return iroh.RelayN0, nil
	}
	return iroh.RelayDisabled, nil
}

// irohMetrics are the alknet_iroh_* figures: t's (nil when its bind failed: not up) and the
// crate's refusals.
func irohMetrics(t irohServing) metrics.IrohStats {
	ns := iroh.NativeStats()
	s := metrics.IrohStats{Refused: map[string]uint64{"handshakes": ns.RefusedHandshakes,
		"limit_total": ns.RefusedLimitTotal, "limit_ip": ns.RefusedLimitIP, "backlog": ns.RefusedBacklog}}
	if t == nil {
		return s
	}
	ts := t.Stats()
	s.Up, s.Direct, s.Relay, s.RelayConnected = true, ts.Direct, ts.Relayed, ts.RelayConnected
	return s
}
