package endpoint

import (
	"net"
	"sync"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/internal/netkey"
)

// Refusal reasons, as logged and counted.
const (
	ReasonLimitTotal = "limit_total"
	ReasonLimitIP    = "limit_ip"
	ReasonBlocked    = "blocked"
)

const (
	refusalLogInterval = time.Minute
	maxRefusalLogKeys  = 65536
)

// slots counts live connections in total and per IP key.
type slots struct {
	limits config.Limits
	mu     sync.Mutex
	total  int
	perIP  map[netkey.Key]int
}

func newSlots(l config.Limits) *slots { return &slots{limits: l, perIP: make(map[netkey.Key]int)} }

// check reports the reason a new connection from key would be refused, or "".
func (s *slots) check(key netkey.Key) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLocked(key)
}

func (s *slots) checkLocked(key netkey.Key) string {
	if s.limits.MaxConnections >= 0 && s.total >= s.limits.MaxConnections {
		return ReasonLimitTotal
	}
	if key.IsIP() && s.limits.MaxConnectionsPerIP >= 0 && s.perIP[key] >= s.limits.MaxConnectionsPerIP {
		return ReasonLimitIP
	}
	return ""
}

// acquire takes a slot for key; release must be called exactly once (it is idempotent).
func (s *slots) acquire(key netkey.Key) (release func(), reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.checkLocked(key); r != "" {
		return nil, r
	}
	s.total++
	if key.IsIP() {
		s.perIP[key]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.total--
			if key.IsIP() {
				if s.perIP[key]--; s.perIP[key] <= 0 {
					delete(s.perIP, key)
				}
			}
			s.mu.Unlock()
		})
	}, ""
}

// admission decides whether a connection from addr may start, and logs refusals at most once
// per IP key per minute.
type admission struct {
	slots *slots
	auth  *auth.Authenticator
	e     *Endpoint

	mu      sync.Mutex
	lastLog map[netkey.Key]time.Time
}

// refuseReason reports why a connection from addr is refused now ("" = admit), without taking a slot.
func (a *admission) refuseReason(addr net.Addr) string {
	if a.auth != nil && a.auth.Blocked(addr) {
		return ReasonBlocked
	}
	return a.slots.check(netkey.FromAddr(addr))
}

// admit takes a slot for addr or logs and returns the refusal reason. fp is the peer's key
// fingerprint when known before admission (connections from a Source): without an IP address,
// the failed-token limiter keys that peer by it.
func (a *admission) admit(addr net.Addr, fp, alpn string) (release func(), reason string) {
	if a.auth != nil && a.auth.BlockedPeer(auth.Context{RemoteAddr: addr, Fingerprint: fp, ALPN: alpn}) {
		a.refused(addr, fp, alpn, ReasonBlocked)
		return nil, ReasonBlocked
	}
	release, reason = a.slots.acquire(netkey.FromAddr(addr))
	if reason != "" {
		a.refused(addr, fp, alpn, reason)
	}
	return release, reason
}

func (a *admission) refused(addr net.Addr, fp, alpn, reason string) {
	a.e.metrics.ConnRefused(reason)
	key := netkey.Of(addr, fp)
	now := time.Now()
	a.mu.Lock()
	last, seen := a.lastLog[key]
	due := !seen || now.Sub(last) >= refusalLogInterval
	if due {
		if len(a.lastLog) >= maxRefusalLogKeys {
			clear(a.lastLog)
		}
		a.lastLog[key] = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if fp != "" { // a connection without an IP address (iroh): the key it is limited by
		a.e.log.Warn("connection refused", "remote_addr", netkey.Host(addr), "fingerprint", fp, "reason", reason)
	} else {
		a.e.log.Warn("connection refused", "remote_addr", netkey.Host(addr), "reason", reason)
	}
	if reason == ReasonBlocked && a.auth != nil {
		a.auth.ReportBlocked(auth.Context{ALPN: alpn, RemoteAddr: addr, Fingerprint: fp})
	}
}
