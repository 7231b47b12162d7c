package core

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Redacted is how every text form of a secret-bearing value renders.
const Redacted = "[REDACTED]"

// ErrCapabilitiesNotSerializable is returned by every marshalling method of Capabilities.
var ErrCapabilitiesNotSerializable = errors.New("core: capabilities are never serialised")

// Capabilities is an immutable name → secret map (e.g. "api_key:openai") that the assembly
// layer builds from the vault and injects into a registration. It never travels on the wire
// and never prints.
type Capabilities struct {
	c *capSet
}

type capSet struct {
	mu   sync.RWMutex
	vals map[string][]byte
}

// NewCapabilities copies m; the caller may wipe its own values afterwards.
func NewCapabilities(m map[string][]byte) Capabilities {
	s := &capSet{vals: make(map[string][]byte, len(m))}
	for k, v := range m {
		s.vals[k] = append([]byte(nil), v...)
	}
	return Capabilities{c: s}
}

// Get returns a fresh copy of the named secret; the caller wipes it when done.
func (c Capabilities) Get(name string) ([]byte, bool) {
	if c.c == nil {
		return nil, false
	}
	c.c.mu.RLock()
	defer c.c.mu.RUnlock()
	v, ok := c.c.vals[name]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// Names returns the capability names, sorted (names are not secret).
func (c Capabilities) Names() []string {
	if c.c == nil {
		return nil
	}
	c.c.mu.RLock()
	defer c.c.mu.RUnlock()
	out := make([]string, 0, len(c.c.vals))
	for k := range c.c.vals {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Wipe zeroes every value; Get fails afterwards. The CLI calls it at shutdown.
func (c Capabilities) Wipe() {
	if c.c == nil {
		return
	}
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	for k, v := range c.c.vals {
		clear(v)
		delete(c.c.vals, k)
	}
}

// MarshalJSON always fails.
func (Capabilities) MarshalJSON() ([]byte, error) { return nil, ErrCapabilitiesNotSerializable }

// MarshalText always fails.
func (Capabilities) MarshalText() ([]byte, error) { return nil, ErrCapabilitiesNotSerializable }

// String renders [REDACTED].
func (Capabilities) String() string { return Redacted }

// GoString renders [REDACTED].
func (Capabilities) GoString() string { return Redacted }

// Format renders [REDACTED] for every verb.
func (Capabilities) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue renders [REDACTED] in slog records.
func (Capabilities) LogValue() slog.Value { return slog.StringValue(Redacted) }
