package iroh

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
)

// RelayMode chooses the relays an endpoint uses (spec iroh.md §5's table).
type RelayMode string

// Relay modes.
const (
	RelayDisabled RelayMode = "disabled" // no relays, no lookups: only bound and dialed addresses (the zero value)
	RelayCustom   RelayMode = "custom"   // the listed relays only
	RelayN0       RelayMode = "n0"       // number 0's public relays; a serving endpoint publishes its address
)

// Options configure Bind.
type Options struct {
	Key                    *identity.NodeKey // required: the node's key is the iroh key
	ALPNs                  []string          // accepted ALPNs; none = a dial-only endpoint (publishes nothing)
	RelayURLs              []string          // RelayCustom: 1–8 absolute URLs
	BindAddrs              []string          // IP-literal host:port, ≤ 1 per family; nil binds 0.0.0.0:0 and [::]:0
	Advertise              []string          // ≤ 8 IP-literal host:port added to the endpoint's addresses
	Relay                  RelayMode
	Limits                 config.Limits // MaxIncomingStreams, IdleTimeout, HandshakeTimeout, MaxConnections(PerIP)
	MaxHandshakes, Backlog int           // 0 → 64; at most 64
	LogLevel               string        // iroh's own, process-wide: error, warn, info, debug, trace; "" → warn
	OnAddr                 func(identity.IrohAddr)
	Logger                 *slog.Logger
	Metrics                endpoint.Metrics // HandshakeFailed("iroh") for failed inbound handshakes (reported by Stats)
}

var logLevels = map[string]int32{"off": 0, "error": 1, "warn": 2, "info": 3, "debug": 4, "trace": 5}

// validate checks o; errors name the field.
func (o *Options) validate() error {
	if o.Key == nil {
		return fmt.Errorf("%w: Options.Key is required", ErrBind)
	}
	if len(o.ALPNs) > 16 {
		return fmt.Errorf("%w: Options.ALPNs: more than 16", ErrBind)
	}
	for _, a := range o.ALPNs {
		if len(a) == 0 || len(a) > 255 || strings.ContainsRune(a, '\n') {
			return fmt.Errorf("%w: Options.ALPNs: %q is not 1–255 bytes without a newline", ErrBind, a)
		}
	}
	switch o.Relay {
	case "", RelayDisabled, RelayN0:
	case RelayCustom:
		if len(o.RelayURLs) == 0 {
			return fmt.Errorf("%w: Options.RelayURLs: relay mode custom needs 1–8 URLs", ErrBind)
		}
	default:
		return fmt.Errorf("%w: Options.Relay: %q is not disabled, custom or n0", ErrBind, o.Relay)
	}
	if len(o.RelayURLs) > 8 {
		return fmt.Errorf("%w: Options.RelayURLs: more than 8", ErrBind)
	}
	for _, u := range o.RelayURLs {
		if err := identity.ValidateIrohRelayURL(u); err != nil {
			return fmt.Errorf("%w: Options.RelayURLs: %w", ErrBind, err)
		}
	}
	if err := checkAddrs("Options.BindAddrs", o.BindAddrs, 2, true); err != nil {
		return err
	}
	if err := checkAddrs("Options.Advertise", o.Advertise, 8, false); err != nil {
		return err
	}
	if _, ok := logLevels[o.LogLevel]; !ok && o.LogLevel != "" {
		return fmt.Errorf("%w: Options.LogLevel: %q is not error, warn, info, debug or trace", ErrBind, o.LogLevel)
	}
	if o.MaxHandshakes < 0 || o.MaxHandshakes > 64 || o.Backlog < 0 || o.Backlog > 64 {
		return fmt.Errorf("%w: Options.MaxHandshakes and Backlog are 0–64", ErrBind)
	}
	return nil
}

func checkAddrs(field string, addrs []string, max int, onePerFamily bool) error {
	if len(addrs) > max {
		return fmt.Errorf("%w: %s: more than %d", ErrBind, field, max)
	}
	var v4, v6 int
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return fmt.Errorf("%w: %s: %q is not an IP-literal host:port", ErrBind, field, a)
		}
		if ap.Addr().Unmap().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if onePerFamily && (v4 > 1 || v6 > 1) {
		return fmt.Errorf("%w: %s: at most one address per family", ErrBind, field)
	}
	return nil
}
