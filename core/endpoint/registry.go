// Package endpoint accepts QUIC and TCP+TLS connections (and connections from other
// Sources), enforces connection limits, resolves connection identities and hands each
// connection to the ProtocolHandler registered for its ALPN.
//
// See also: conn, auth, config, tlsconf; host wires them into a node.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/tlsconf"
)

// ProtocolHandler serves every connection negotiated with its ALPN. Handle owns the
// connection until it returns and must return promptly once ctx is cancelled.
type ProtocolHandler interface {
	ALPN() string
	Handle(ctx context.Context, c conn.Connection, ac auth.Context) error
}

// ErrRegistry matches every registry construction error.
var ErrRegistry = errors.New("endpoint: invalid registry")

// Registry maps ALPNs to handlers; immutable once built.
type Registry struct {
	byALPN map[string]ProtocolHandler
	order  []string
}

// NewRegistry builds a registry. A duplicate or invalid ALPN is an error naming it.
func NewRegistry(hs ...ProtocolHandler) (*Registry, error) {
	r := &Registry{byALPN: make(map[string]ProtocolHandler, len(hs))}
	var errs []error
	for _, h := range hs {
		if h == nil {
			errs = append(errs, errors.New("endpoint: nil handler"))
			continue
		}
		a := h.ALPN()
		if err := tlsconf.ValidateALPN(a); err != nil {
			errs = append(errs, fmt.Errorf("endpoint: %w", err))
			continue
		}
		if _, dup := r.byALPN[a]; dup {
			errs = append(errs, fmt.Errorf("endpoint: duplicate ALPN %q", a))
			continue
		}
		r.byALPN[a] = h
		r.order = append(r.order, a)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrRegistry, errors.Join(errs...))
	}
	return r, nil
}

// Lookup returns the handler of alpn.
func (r *Registry) Lookup(alpn string) (ProtocolHandler, bool) {
	h, ok := r.byALPN[alpn]
	return h, ok
}

// ALPNs returns the registered ALPNs in registration order (a copy).
func (r *Registry) ALPNs() []string { return slices.Clone(r.order) }

// HandlerFunc adapts a function to ProtocolHandler.
type HandlerFunc struct {
	Protocol string
	Func     func(ctx context.Context, c conn.Connection, ac auth.Context) error
}

// ALPN returns the protocol.
func (h HandlerFunc) ALPN() string { return h.Protocol }

// Handle calls Func.
func (h HandlerFunc) Handle(ctx context.Context, c conn.Connection, ac auth.Context) error {
	return h.Func(ctx, c, ac)
}
