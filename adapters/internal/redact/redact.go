// Package redact removes bound secrets from what imported operations return (docs/http.md
// §2.6.3): each secret, raw, JSON-escaped and percent-encoded, becomes [REDACTED].
package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sync"
)

// Mark replaces a secret.
const Mark = "[REDACTED]"

// Redactor holds the forms of a set of secrets. Wipe it when done. Safe for concurrent use
// (a child's stderr is redacted while the import closes).
type Redactor struct {
	mu    sync.RWMutex
	forms [][]byte
}

// New returns a Redactor for secrets (copied; empty ones are ignored). Secrets shorter than
// four bytes are ignored too: replacing them would mangle ordinary text and hide nothing.
func New(secrets ...[]byte) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		raw := bytes.Clone(s)
		esc, _ := json.Marshal(string(s))
		esc = esc[1 : len(esc)-1]
		pct := []byte(url.QueryEscape(string(s)))
		pathPct := []byte(url.PathEscape(string(s)))
		for _, f := range [][]byte{raw, esc, pct, pathPct} {
			if !containsForm(r.forms, f) {
				r.forms = append(r.forms, bytes.Clone(f))
			}
		}
		clear(raw)
		clear(esc)
		clear(pct)
		clear(pathPct)
	}
	return r
}

func containsForm(forms [][]byte, f []byte) bool {
	for _, g := range forms {
		if bytes.Equal(g, f) {
			return true
		}
	}
	return false
}

// Empty reports whether there is nothing to redact.
func (r *Redactor) Empty() bool {
	if r == nil {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.forms) == 0
}

// Bytes returns b with every form replaced (b itself when nothing matches).
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil {
		return b
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := b
	for _, f := range r.forms {
		if bytes.Contains(out, f) {
			out = bytes.ReplaceAll(out, f, []byte(Mark))
		}
	}
	return out
}

// String is Bytes for a string.
func (r *Redactor) String(s string) string {
	if r.Empty() {
		return s
	}
	return string(r.Bytes([]byte(s)))
}

// Wipe clears the secrets' forms.
func (r *Redactor) Wipe() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.forms {
		clear(f)
	}
	r.forms = nil
}
