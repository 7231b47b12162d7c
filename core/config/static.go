package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/alkdev/alknet/core/tlsconf"
)

// ErrInvalid matches every validation error of this package.
var ErrInvalid = errors.New("config: invalid")

// Static is fixed for a node's lifetime. The node key is passed to tlsconf.NewServer
// separately and never lives in a config struct.
type Static struct {
	QUICAddrs, TCPAddrs []string // "host:port"; empty = no listener of that kind
	TLS                 tlsconf.ServerOptions
	DrainTimeout        time.Duration // 0 → 2 s; negative: no drain
	Limits              Limits
}

// WithDefaults fills zero fields.
func (c Static) WithDefaults() Static {
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// Validate reports every problem with its field path. Warnings (an ACME listener on a port
// other than 443) go to log; nil log means slog.Default().
func (c Static) Validate(log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	var errs []error
	if len(c.QUICAddrs) == 0 && len(c.TCPAddrs) == 0 {
		errs = append(errs, errors.New("listen: no QUIC or TCP address"))
	}
	for i, a := range c.QUICAddrs {
		if err := checkListenAddr(a); err != nil {
			errs = append(errs, fmt.Errorf("quic_addrs[%d]: %w", i, err))
		}
	}
	for i, a := range c.TCPAddrs {
		if err := checkListenAddr(a); err != nil {
			errs = append(errs, fmt.Errorf("tcp_addrs[%d]: %w", i, err))
		}
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("tls: %w", err))
	}
	switch c.TLS.Mode {
	case tlsconf.ModeX509:
		for _, f := range []struct{ field, path string }{{"cert_file", c.TLS.CertFile}, {"key_file", c.TLS.KeyFile}} {
			if f.path == "" {
				continue
			}
			if fh, err := os.Open(f.path); err != nil {
				errs = append(errs, fmt.Errorf("tls.%s: %w", f.field, err))
			} else {
				_ = fh.Close()
			}
		}
	case tlsconf.ModeACME:
		if len(c.TCPAddrs) == 0 {
			errs = append(errs, errors.New("tcp_addrs: acme mode needs a TCP listener (TLS-ALPN-01 challenges arrive over TCP)"))
		}
		for _, a := range c.TCPAddrs {
			if _, port, err := net.SplitHostPort(a); err == nil && port != "443" {
				log.Warn("acme: TLS-ALPN-01 challenges arrive on port 443; make sure it reaches this listener", "addr", a)
			}
		}
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func checkListenAddr(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q: %w", a, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port must be 0-65535", a)
	}
	return nil
}
