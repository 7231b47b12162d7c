package mcp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/call"
)

const sessionHeader = "Mcp-Session-Id"

// bind wraps the SDK's handler with the session rules of docs/mcp.md §6.2: a session belongs
// to the identity that opened it; another identity (anonymous too) gets 403 and nothing is
// passed on; each request refreshes the caller its tool calls run as; at most
// MaxSessionsPerIdentity sessions per identity (the oldest idle one closes) and MaxSessions
// in all (503).
func (p *Projection) bind(inner http.Handler) http.Handler {
	if p.o.Stateless {
		return inner
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := catalog.CallerFrom(r.Context())
		key := sessionKey(r, caller)
		if id := r.Header.Get(sessionHeader); id != "" {
			p.mu.Lock()
			rec, ok := p.sessions[id]
			if ok && rec.key != "" && rec.key != key {
				p.mu.Unlock()
				writeError(w, http.StatusForbidden, call.CodeForbidden, "session identity mismatch")
				return
			}
			// A session is idle without a POST in flight: its standing GET stream does not count.
			counts := ok && r.Method == http.MethodPost
			if ok {
				rec.caller, rec.lastUsed = caller, time.Now()
			}
			if counts {
				rec.active++
			}
			p.mu.Unlock()
			if counts {
				defer func() {
					p.mu.Lock()
					rec.active--
					rec.lastUsed = time.Now()
					p.mu.Unlock()
				}()
			}
			inner.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost {
			p.mu.Lock()
			p.pruneLocked()
			full := len(p.sessions) >= p.o.MaxSessions
			p.mu.Unlock()
			if full {
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, call.CodeInternal, "too many MCP sessions")
				return
			}
		}
		inner.ServeHTTP(&bindingWriter{ResponseWriter: w, p: p, key: key, caller: caller}, r)
	})
}

// pruneLocked forgets records of sessions the SDK has closed (DELETE, expiry).
func (p *Projection) pruneLocked() {
	live := map[string]bool{}
	for _, is := range p.servers {
		for s := range is.srv.Sessions() {
			live[s.ID()] = true
		}
	}
	for id, rec := range p.sessions {
		if !live[id] && time.Since(rec.lastUsed) > time.Second {
			delete(p.sessions, id)
		}
	}
}

// bindingWriter binds the session an initialize created to its caller as the answer's
// headers are written, before the client can use the id.
type bindingWriter struct {
	http.ResponseWriter
	p      *Projection
	key    string
	caller catalog.Caller
	done   bool
}

func (b *bindingWriter) WriteHeader(code int) {
	if !b.done {
		b.done = true
		if id := b.Header().Get(sessionHeader); id != "" {
			b.p.adopt(id, b.key, b.caller)
		}
	}
	b.ResponseWriter.WriteHeader(code)
}

func (b *bindingWriter) Write(p []byte) (int, error) {
	if !b.done {
		b.WriteHeader(http.StatusOK)
	}
	return b.ResponseWriter.Write(p)
}

func (b *bindingWriter) Flush() {
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (b *bindingWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// adopt binds a new session to key; past MaxSessionsPerIdentity the key's oldest idle
// session is closed.
func (p *Projection) adopt(id, key string, caller catalog.Caller) {
	p.mu.Lock()
	rec, ok := p.sessions[id]
	if !ok {
		p.mu.Unlock()
		return
	}
	rec.key, rec.caller = key, caller
	var oldest *sessionRecord
	n := 0
	for _, r := range p.sessions {
		if r.key != key {
			continue
		}
		n++
		if r != rec && r.active == 0 && (oldest == nil || r.lastUsed.Before(oldest.lastUsed)) {
			oldest = r
		}
	}
	if n <= p.o.MaxSessionsPerIdentity || oldest == nil {
		p.mu.Unlock()
		return
	}
	delete(p.sessions, oldest.id)
	srv := oldest.srv
	p.mu.Unlock()
	for s := range srv.srv.Sessions() {
		if s.ID() == oldest.id {
			p.o.Logger.Info("mcp: closing the oldest idle session", "identity", key, "max", p.o.MaxSessionsPerIdentity)
			_ = s.Close()
		}
	}
}

// writeError answers a refused /mcp request as problem+json (docs/http.md §3.5.4).
func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status,
		"detail": message, "code": code, "message": message, "retryable": status == http.StatusServiceUnavailable})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
