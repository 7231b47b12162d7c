//go:build cgo && !noiroh

package app

import (
	"context"
	"log/slog"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

func irohVersion() string { return "iroh " + iroh.Version() + " abi 1" }

// bindIrohServe binds the node's iroh endpoint (spec iroh.md §8.3): with --dev on loopback
// with relays disabled, else on binds (nil: every interface) with number 0's relays.
func bindIrohServe(ctx context.Context, key *identity.NodeKey, alpns, binds []string, dev bool, limits config.Limits, log *slog.Logger) (irohServing, error) {
	o := iroh.Options{Key: key, ALPNs: alpns, BindAddrs: binds, Relay: iroh.RelayN0, Limits: limits, Logger: log}
	if dev {
		o.Relay = iroh.RelayDisabled
		if len(binds) == 0 {
			o.BindAddrs = []string{"127.0.0.1:0"}
		}
	}
	return iroh.Bind(ctx, o)
}

// irohDialer binds a dial-only endpoint for a client command: relay custom with the ticket's
// relay URL, disabled without one; keyed by key (nil: ephemeral). close ends it.
func irohDialer(ctx context.Context, key *identity.NodeKey, tk identity.Ticket, log *slog.Logger) (client.IrohDialer, func(), error) {
	if key == nil {
		var err error
		if key, err = identity.Generate(); err != nil {
			return nil, nil, err
		}
	}
	o := iroh.Options{Key: key, Relay: iroh.RelayDisabled, Logger: log}
	if tk.Iroh != nil && tk.Iroh.RelayURL != "" {
		o.Relay, o.RelayURLs = iroh.RelayCustom, []string{tk.Iroh.RelayURL}
	}
	t, err := iroh.Bind(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	return t, func() { _ = t.Close() }, nil
}

// irohBuilt: this binary links iroh.
const irohBuilt = true
