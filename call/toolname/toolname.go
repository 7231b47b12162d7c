// Package toolname gives operations the names HTTP/OpenAPI operationIds, MCP tools and agent
// tools need: alphabet [A-Za-z0-9_-], at most 64 characters, stable for the life of the
// process (docs/http.md §2.3).
//
// One Map serves a whole catalogue, never one caller: every caller sees an operation under
// the same name, and a name once given never moves to another operation, also while its
// operation is absent (a hub's imported operations come and go).
package toolname

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"sync"
)

// MaxLen is the longest name a Map gives.
const MaxLen = 64

// MaxEntries caps the names a Map remembers; past it, absent operations' oldest names go first.
const MaxEntries = 65536

// hashedPrefix is the length of base(n) kept before "_" and the eight hex digits.
const hashedPrefix = 55

// Base maps every character outside [A-Za-z0-9_-] to '_' ("demo/echo" → "demo_echo").
func Base(op string) string {
	b := []byte(op)
	for i, c := range b {
		if !allowed(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

// Hashed is Base truncated to 55 bytes, "_" and the first eight hex digits of SHA-256(op):
// distinct for operations whose Base collides.
func Hashed(op string) string {
	b := Base(op)
	if len(b) > hashedPrefix {
		b = b[:hashedPrefix]
	}
	sum := sha256.Sum256([]byte(op))
	return b + "_" + hex.EncodeToString(sum[:4])
}

// Valid reports whether s is a name a Map could give.
func Valid(s string) bool {
	if s == "" || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !allowed(s[i]) {
			return false
		}
	}
	return true
}

func allowed(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// Map assigns names to operation names. Safe for concurrent use.
type Map struct {
	mu       sync.Mutex
	reserved map[string]bool
	byOp     map[string]string // operation → name
	byName   map[string]string // name → operation
	order    []string          // operations in assignment order, for eviction
}

// New returns a Map whose first operations are initial (named together, so a collision among
// them hashes every operation involved, whatever their order) and which never gives a name in
// reserved.
func New(initial []string, reserved ...string) *Map {
	m := &Map{reserved: map[string]bool{}, byOp: map[string]string{}, byName: map[string]string{}}
	for _, r := range reserved {
		m.reserved[r] = true
	}
	ops := dedupe(initial)
	count := map[string]int{}
	for _, op := range ops {
		count[Base(op)]++
	}
	for _, op := range ops {
		name := Base(op)
		if m.reserved[name] || len(name) > MaxLen || count[name] > 1 {
			name = Hashed(op)
		}
		if _, taken := m.byName[name]; taken || m.reserved[name] {
			continue // a hash collision: left out, as Name reports
		}
		m.put(op, name)
	}
	return m
}

func dedupe(ops []string) []string {
	out := append([]string(nil), ops...)
	sort.Strings(out)
	j := 0
	for i, op := range out {
		if i > 0 && op == out[i-1] {
			continue
		}
		out[j] = op
		j++
	}
	return out[:j]
}

func (m *Map) put(op, name string) {
	m.byOp[op] = name
	m.byName[name] = op
	m.order = append(m.order, op)
}

// Name returns op's name, assigning one if op is new: Base(op) if it is free, else Hashed(op).
// ok is false when both are taken (the operation is left out; the caller warns) or op is empty.
// present lists the operations that exist now: when the Map is full, the oldest name of an
// operation not in it is forgotten to make room.
func (m *Map) Name(op string, present func(op string) bool) (name string, ok bool) {
	if op == "" {
		return "", false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.byOp[op]; ok {
		return n, true
	}
	for _, cand := range []string{Base(op), Hashed(op)} {
		if len(cand) > MaxLen || m.reserved[cand] {
			continue
		}
		if _, taken := m.byName[cand]; taken {
			continue
		}
		if len(m.byOp) >= MaxEntries && !m.evict(present) {
			return "", false
		}
		m.put(op, cand)
		return cand, true
	}
	return "", false
}

// evict forgets the oldest name whose operation is absent; false if every one is present.
func (m *Map) evict(present func(string) bool) bool {
	for i, op := range m.order {
		if present != nil && present(op) {
			continue
		}
		delete(m.byName, m.byOp[op])
		delete(m.byOp, op)
		m.order = append(m.order[:i:i], m.order[i+1:]...)
		return true
	}
	return false
}

// Lookup returns the operation a name was given to.
func (m *Map) Lookup(name string) (op string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	op, ok = m.byName[name]
	return op, ok
}

// Len returns how many names the Map holds.
func (m *Map) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byOp)
}
