// Package auth resolves who is on the other end: connection identities from client
// certificate fingerprints, request identities from tokens, the config-backed Policy,
// and the Authenticator that rate-limits and audits every attempt.
//
// See also: config (the Store whose Policy it reads), endpoint (which resolves connection identities), docs/security.md (limits and audit lines).
package auth

import (
	"context"
	"net"
	"slices"
)

// Identity is a resolved caller: a peer_id (peers) or an API-key prefix (API keys).
type Identity struct {
	ID        string              `json:"id"`
	Scopes    []string            `json:"scopes"`
	Resources map[string][]string `json:"resources"` // resource type → actions granted; empty for API keys
}

// Equal reports same ID, same Scopes and, for each resource type, the same actions (as sets).
func (i Identity) Equal(o Identity) bool {
	if i.ID != o.ID || !sameSet(i.Scopes, o.Scopes) || len(i.Resources) != len(o.Resources) {
		return false
	}
	for k, v := range i.Resources {
		w, ok := o.Resources[k]
		if !ok || !sameSet(v, w) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// HasScope reports whether s is one of the identity's scopes (exact match).
func (i Identity) HasScope(s string) bool { return slices.Contains(i.Scopes, s) }

// Clone returns a deep copy.
func (i Identity) Clone() Identity {
	c := Identity{ID: i.ID, Scopes: slices.Clone(i.Scopes)}
	if i.Resources != nil {
		c.Resources = make(map[string][]string, len(i.Resources))
		for k, v := range i.Resources {
			c.Resources[k] = slices.Clone(v)
		}
	}
	return c
}

// Context is what the endpoint knows about a connection when it hands it to a handler.
type Context struct {
	Identity    *Identity // nil: none resolved for the connection
	ALPN        string
	Fingerprint string   // "": no client certificate
	RemoteAddr  net.Addr // nil: unknown
}

// IdentityProvider resolves identities. Implementations return deep copies.
type IdentityProvider interface {
	FromFingerprint(ctx context.Context, fp string) (Identity, bool)
	FromToken(ctx context.Context, token string) (Identity, bool)
}

// Revalidator re-checks an identity held by a live connection after a reload.
type Revalidator interface {
	Revalidate(ctx context.Context, id Identity) bool
}

type authContextKey struct{}

// NewContext returns ctx carrying ac.
func NewContext(ctx context.Context, ac Context) context.Context {
	return context.WithValue(ctx, authContextKey{}, ac)
}

// FromContext returns the Context stored by NewContext.
func FromContext(ctx context.Context) (Context, bool) {
	ac, ok := ctx.Value(authContextKey{}).(Context)
	return ac, ok
}
