package auth

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/alkdev/alknet/core/internal/netkey"
)

// Token resolution errors.
var (
	ErrAuthFailed  = errors.New("auth: token not accepted")
	ErrAuthBlocked = errors.New("auth: too many failed attempts from this address")
)

// RateLimits bounds failed token attempts per IP key. Zero fields take the defaults
// (5 per minute, burst 5); a negative burst turns limiting off.
type RateLimits struct {
	FailuresPerMinute float64
	FailureBurst      int
}

// Defaults for RateLimits.
const (
	DefaultFailuresPerMinute = 5
	DefaultFailureBurst      = 5
	maxLimiterKeys           = 65536
	blockedLogInterval       = time.Minute
)

// WithDefaults fills zero fields.
func (r RateLimits) WithDefaults() RateLimits {
	if r.FailuresPerMinute == 0 {
		r.FailuresPerMinute = DefaultFailuresPerMinute
	}
	if r.FailureBurst == 0 {
		r.FailureBurst = DefaultFailureBurst
	}
	return r
}

func (r RateLimits) off() bool { return r.FailureBurst < 0 || r.FailuresPerMinute < 0 }

// Authenticator is the one way handlers and the endpoint resolve identities: it limits failed
// token attempts per IP key and writes one audit line per attempt (docs/security.md).
type Authenticator struct {
	p         IdentityProvider
	limits    func() RateLimits
	log       *slog.Logger
	now       func() time.Time
	onAttempt func(result string) // metrics hook: "accept", "reject" or "blocked"

	mu  sync.Mutex
	lru *list.List                   // of *ipState, most recent first
	ips map[netkey.Key]*list.Element // bounded by maxLimiterKeys
}

type ipState struct {
	key        netkey.Key
	lim        *rate.Limiter
	limits     RateLimits
	lastLogged time.Time // last "blocked" audit line
}

var _ IdentityProvider = (*Authenticator)(nil)

// AuthenticatorOptions configure an Authenticator; the zero value means default rate limits,
// slog.Default(), time.Now and no metrics hook.
type AuthenticatorOptions struct {
	// Limits is read at each use, so reloaded limits apply at once; nil: defaults.
	Limits    func() RateLimits
	Logger    *slog.Logger
	Now       func() time.Time    // replaces time.Now (tests)
	OnAttempt func(result string) // called with every audited attempt's result: "accept", "reject" or "blocked"
}

// NewAuthenticator wraps p.
func NewAuthenticator(p IdentityProvider, o AuthenticatorOptions) *Authenticator {
	if o.Limits == nil {
		o.Limits = func() RateLimits { return RateLimits{} }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Authenticator{p: p, limits: o.Limits, log: o.Logger, now: o.Now, onAttempt: o.OnAttempt,
		lru: list.New(), ips: make(map[netkey.Key]*list.Element)}
}

// Fingerprint resolves a connection's client-certificate fingerprint. A resolved fingerprint
// is an attempt (audited as accept); an unknown one is not.
func (a *Authenticator) Fingerprint(ctx context.Context, ac Context) (Identity, bool) {
	if ac.Fingerprint == "" {
		return Identity{}, false
	}
	id, ok := a.p.FromFingerprint(ctx, ac.Fingerprint)
	if ok {
		a.audit(ac, id.ID, "accept")
	}
	return id, ok
}

// Token resolves a per-request token. It returns ErrAuthBlocked without resolving while the
// remote IP is blocked, and ErrAuthFailed (spending one failure) when the token does not resolve.
//
// On a connection whose identity came from its certificate fingerprint (ac.Identity and
// ac.Fingerprint set: a known peer, such as a hub's forwarding link), failures count against
// the connection's ConnFailures in ctx instead, and past the limit the connection is closed;
// its IP is never blocked, so one revoked token cannot cut off every peer behind one address.
func (a *Authenticator) Token(ctx context.Context, ac Context, token string) (Identity, error) {
	lim := a.limits().WithDefaults()
	if cf, _ := ctx.Value(connFailuresKey{}).(*ConnFailures); ac.Identity != nil && ac.Fingerprint != "" || cf != nil && cf.perConn {
		return a.connToken(ctx, ac, token, lim)
	}
	// The IP's key, or for a connection without one (iroh) the peer's fingerprint.
	key := netkey.Of(ac.RemoteAddr, ac.Fingerprint)
	if a.blockedKey(key) {
		a.ReportBlocked(ac)
		return Identity{}, ErrAuthBlocked
	}
	id, ok := a.p.FromToken(ctx, token)
	if ok {
		a.audit(ac, id.ID, "accept")
		return id, nil
	}
	if key.Valid() && !lim.off() {
		a.mu.Lock()
		st := a.stateLocked(key, lim)
		st.lim.AllowN(a.now(), 1)
		a.mu.Unlock()
	}
	a.audit(ac, "", "reject")
	return Identity{}, ErrAuthFailed
}

// connToken is Token on a connection identified by its fingerprint: failures are limited per
// connection (ConnFailures in ctx; none there: not limited).
func (a *Authenticator) connToken(ctx context.Context, ac Context, token string, lim RateLimits) (Identity, error) {
	cf, _ := ctx.Value(connFailuresKey{}).(*ConnFailures)
	if cf != nil && !lim.off() && cf.blocked(a.now(), lim) {
		a.audit(ac, "", "blocked")
		return Identity{}, ErrAuthBlocked
	}
	id, ok := a.p.FromToken(ctx, token)
	if ok {
		a.audit(ac, id.ID, "accept")
		return id, nil
	}
	a.audit(ac, "", "reject")
	if cf != nil && !lim.off() && cf.fail(a.now(), lim) {
		a.log.Warn("closing connection: too many failed tokens", "remote_addr", netkey.Host(ac.RemoteAddr),
			"peer_id", ac.Identity.ID, "alpn", ac.ALPN)
		cf.close()
	}
	return Identity{}, ErrAuthFailed
}

// Blocked reports whether addr's IP key has used up its failure budget.
func (a *Authenticator) Blocked(addr net.Addr) bool { return a.blockedKey(netkey.FromAddr(addr)) }

// BlockedPeer reports whether the peer of ac has used up its failure budget: its IP's, or for
// a connection without an IP address its fingerprint's.
func (a *Authenticator) BlockedPeer(ac Context) bool {
	return a.blockedKey(netkey.Of(ac.RemoteAddr, ac.Fingerprint))
}

func (a *Authenticator) blockedKey(key netkey.Key) bool {
	lim := a.limits().WithDefaults()
	if !key.Valid() || lim.off() {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.ips[key]
	if !ok {
		return false
	}
	st := el.Value.(*ipState)
	a.applyLimits(st, lim)
	return st.lim.TokensAt(a.now()) < 1
}

// ReportBlocked writes the "blocked" audit line for ac, at most once a minute per key (IP, or
// fingerprint without one).
func (a *Authenticator) ReportBlocked(ac Context) {
	key := netkey.Of(ac.RemoteAddr, ac.Fingerprint)
	if !key.Valid() {
		return
	}
	now := a.now()
	a.mu.Lock()
	st := a.stateLocked(key, a.limits().WithDefaults())
	due := st.lastLogged.IsZero() || now.Sub(st.lastLogged) >= blockedLogInterval
	if due {
		st.lastLogged = now
	}
	a.mu.Unlock()
	if due {
		a.audit(ac, "", "blocked")
	}
}

// FromFingerprint implements IdentityProvider with the Context stored in ctx.
func (a *Authenticator) FromFingerprint(ctx context.Context, fp string) (Identity, bool) {
	ac, _ := FromContext(ctx)
	ac.Fingerprint = fp
	return a.Fingerprint(ctx, ac)
}

// FromToken implements IdentityProvider with the Context stored in ctx.
func (a *Authenticator) FromToken(ctx context.Context, token string) (Identity, bool) {
	ac, _ := FromContext(ctx)
	id, err := a.Token(ctx, ac, token)
	return id, err == nil
}

// Revalidate forwards to the wrapped provider when it is a Revalidator.
func (a *Authenticator) Revalidate(ctx context.Context, id Identity) bool {
	r, ok := a.p.(Revalidator)
	return ok && r.Revalidate(ctx, id)
}

// stateLocked returns the limiter state of key, creating it (and evicting the least recently
// used one beyond maxLimiterKeys). a.mu must be held.
func (a *Authenticator) stateLocked(key netkey.Key, lim RateLimits) *ipState {
	if el, ok := a.ips[key]; ok {
		a.lru.MoveToFront(el)
		st := el.Value.(*ipState)
		a.applyLimits(st, lim)
		return st
	}
	st := &ipState{key: key, limits: lim, lim: rate.NewLimiter(perSecond(lim), max(lim.FailureBurst, 0))}
	a.ips[key] = a.lru.PushFront(st)
	for len(a.ips) > maxLimiterKeys {
		old := a.lru.Back()
		a.lru.Remove(old)
		delete(a.ips, old.Value.(*ipState).key)
	}
	return st
}

func (a *Authenticator) applyLimits(st *ipState, lim RateLimits) {
	if st.limits == lim {
		return
	}
	now := a.now()
	st.lim.SetLimitAt(now, perSecond(lim))
	st.lim.SetBurstAt(now, max(lim.FailureBurst, 0))
	st.limits = lim
}

func perSecond(r RateLimits) rate.Limit { return rate.Limit(r.FailuresPerMinute / 60) }

// audit writes the fail2ban line: exactly these keys, in this order. Never a token or hash.
func (a *Authenticator) audit(ac Context, peerID, result string) {
	if a.onAttempt != nil {
		a.onAttempt(result)
	}
	a.log.Info("auth",
		"remote_addr", netkey.Host(ac.RemoteAddr),
		"fingerprint", ac.Fingerprint,
		"peer_id", peerID,
		"alpn", ac.ALPN,
		"result", result)
}

// ConnFailures limits failed tokens on one connection (see Token). The endpoint puts one in
// every Handle ctx (WithConnFailures); close ends the connection once the limit is passed.
type ConnFailures struct {
	perConn bool // every failure counts here, never against the IP (NewLocalConnFailures)
	mu      sync.Mutex
	lim     *rate.Limiter
	limits  RateLimits
	close   func()
	closed  bool
}

type connFailuresKey struct{}

// NewConnFailures returns a per-connection failure limiter that calls close (once) when the
// connection has used up its failure budget.
func NewConnFailures(close func()) *ConnFailures { return &ConnFailures{close: close} }

// NewLocalConnFailures is NewConnFailures for a connection whose address is shared by every
// local client (a loopback HTTP listener): its failures always count per connection, so a
// guessing client is cut off without ever blocking 127.0.0.1 and the operator's own tools.
func NewLocalConnFailures(close func()) *ConnFailures {
	return &ConnFailures{close: close, perConn: true}
}

// Blocked reports whether the connection has used up its failure budget.
func (c *ConnFailures) Blocked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// WithConnFailures returns ctx carrying cf.
func WithConnFailures(ctx context.Context, cf *ConnFailures) context.Context {
	return context.WithValue(ctx, connFailuresKey{}, cf)
}

func (c *ConnFailures) limiter(lim RateLimits) *rate.Limiter {
	if c.lim == nil || c.limits != lim {
		c.lim = rate.NewLimiter(perSecond(lim), max(lim.FailureBurst, 0))
		c.limits = lim
	}
	return c.lim
}

func (c *ConnFailures) blocked(now time.Time, lim RateLimits) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.limiter(lim).TokensAt(now) < 1
}

// fail spends one failure; it reports whether the connection must now be closed (once).
func (c *ConnFailures) fail(now time.Time, lim RateLimits) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.limiter(lim)
	l.AllowN(now, 1)
	if c.closed || l.TokensAt(now) >= 1 {
		return false
	}
	c.closed = true
	return c.close != nil
}
