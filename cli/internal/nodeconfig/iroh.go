package nodeconfig

import (
	"fmt"
	"net/netip"

	"github.com/alkdev/alknet/core/identity"
)

// Iroh is the [iroh] section (restart-only; spec iroh.md §8): iroh connectivity beside QUIC and
// TCP+TLS, with the node's key as the iroh key.
type Iroh struct {
	Enabled   bool     `toml:"enabled"`    // needs [tls] mode = "key"
	Relay     string   `toml:"relay"`      // "n0" (default) | "custom" | "disabled"
	RelayURLs []string `toml:"relay_urls"` // relay = "custom": 1–8 URLs
	Bind      []string `toml:"bind"`       // IP-literal host:port, at most one per family; default every interface, port 0
	Advertise []string `toml:"advertise"`  // ≤ 8 IP-literal host:port added to the tickets
	LogLevel  string   `toml:"log_level"`  // iroh's own log: error, warn (default), info, debug, trace
}

// RelayMode is the relay mode in force ("" means n0).
func (i Iroh) RelayMode() string {
	if i.Relay == "" {
		return "n0"
	}
	return i.Relay
}

// validateIroh checks [iroh]; every error names its key.
func (f *File) validateIroh() []error {
	var errs []error
	i := f.Iroh
	switch i.RelayMode() {
	case "n0", "disabled":
		if len(i.RelayURLs) > 0 {
			errs = append(errs, fmt.Errorf("iroh.relay_urls: only with relay = \"custom\" (relay is %q)", i.RelayMode()))
		}
	case "custom":
		if len(i.RelayURLs) == 0 || len(i.RelayURLs) > 8 {
			errs = append(errs, fmt.Errorf("iroh.relay_urls: relay = \"custom\" needs 1-8 URLs, got %d", len(i.RelayURLs)))
		}
	default:
		errs = append(errs, fmt.Errorf("iroh.relay: %q is not n0, custom or disabled", i.Relay))
	}
	for n, u := range i.RelayURLs {
		if err := identity.ValidateIrohRelayURL(u); err != nil {
			errs = append(errs, fmt.Errorf("iroh.relay_urls[%d]: %w", n, err))
		}
	}
	var v4, v6 int
	for n, b := range i.Bind {
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("iroh.bind[%d]: %q is not an IP-literal host:port", n, b))
			continue
		}
		if ap.Addr().Unmap().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		errs = append(errs, fmt.Errorf("iroh.bind: at most one address per family"))
	}
	if len(i.Advertise) > 8 {
		errs = append(errs, fmt.Errorf("iroh.advertise: at most 8 addresses, got %d", len(i.Advertise)))
	}
	for n, a := range i.Advertise {
		if ap, err := netip.ParseAddrPort(a); err != nil || ap.Port() == 0 {
			errs = append(errs, fmt.Errorf("iroh.advertise[%d]: %q is not an IP-literal host:port with a port", n, a))
		}
	}
	switch i.LogLevel {
	case "", "error", "warn", "info", "debug", "trace":
	default:
		errs = append(errs, fmt.Errorf("iroh.log_level: %q is not error, warn, info, debug or trace", i.LogLevel))
	}
	if i.Enabled && f.TLS.Mode != "" && f.TLS.Mode != "key" {
		errs = append(errs, fmt.Errorf("iroh.enabled: iroh presents the node's key: it needs [tls] mode = \"key\" (mode is %q)", f.TLS.Mode))
	}
	return errs
}
