package call

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// MaxPeerSetOperations bounds the operations of every layer of a PeerSet together.
const MaxPeerSetOperations = 16384

const maxPeerIDBytes = 128

// ErrPeerSetFull is returned when an Attach or a ReplaceImports would pass MaxPeerSetOperations.
var ErrPeerSetFull = errors.New("call: peer set full")

// PeerSet is a hub's set of peer layers: the import overlays of links, each under a peer id,
// in attach order. A dispatcher with a PeerSet (Options.Peers) puts them in the composite of
// every root, wire and ingress, and resolves exposed (External) imports from the wire after
// its core registry (docs/protocol.md §11). Safe for concurrent use; roots read a snapshot.
type PeerSet struct {
	mu     sync.Mutex
	layers atomic.Pointer[[]setLayer] // immutable snapshot, attach order
	gen    uint64                     // under mu; read by Generation
	change chan struct{}              // under mu: closed and replaced at each bump
}

type setLayer struct {
	peerLayer
	c    *Conn
	stop func() bool // stops the detach-on-end callback
}

// NewPeerSet returns an empty set.
func NewPeerSet() *PeerSet {
	s := &PeerSet{change: make(chan struct{})}
	s.layers.Store(&[]setLayer{})
	return s
}

// Generation counts the changes of the set's catalogue: every Attach, Detach and
// ReplaceImports on an attached Conn bumps it. Front ends key their caches by it (tool lists,
// OpenAPI documents; docs/http.md §2.4).
func (s *PeerSet) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Changed returns a channel closed at the next bump of Generation.
func (s *PeerSet) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.change
}

// bump is called with mu held after the catalogue changed.
func (s *PeerSet) bump() {
	s.gen++
	close(s.change)
	s.change = make(chan struct{})
}

func (s *PeerSet) snapshot() []setLayer {
	if s == nil {
		return nil
	}
	return *s.layers.Load()
}

// Attach attaches c's import overlay (the one ReplaceImports fills) under id, appended, or in
// place of a layer with the same id. When c ends its layer is detached; an older Conn's end
// never removes a newer layer under the same id.
func (s *PeerSet) Attach(id string, c *Conn) error {
	if id == "" || len(id) > maxPeerIDBytes {
		return fmt.Errorf("%w: peer id must be 1-%d bytes", ErrConfig, maxPeerIDBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ctx.Err() != nil {
		return fmt.Errorf("call: attach %s: %w", id, errConnectionClosed(nil))
	}
	cur := s.snapshot()
	total := c.overlay.Len()
	for _, l := range cur {
		if l.id != id {
			total += l.ov.Len()
		}
	}
	if total > MaxPeerSetOperations {
		return fmt.Errorf("%w: %d operations (max %d)", ErrPeerSetFull, total, MaxPeerSetOperations)
	}
	next := make([]setLayer, 0, len(cur)+1)
	replaced := false
	l := setLayer{peerLayer: peerLayer{id: id, ov: c.overlay}, c: c}
	for _, old := range cur {
		if old.id == id {
			if old.stop != nil && old.c != c {
				old.stop()
			}
			next = append(next, l)
			replaced = true
			continue
		}
		next = append(next, old)
	}
	if !replaced {
		next = append(next, l)
	}
	c.mu.Lock()
	c.peerSet = s
	c.mu.Unlock()
	idx := slices.IndexFunc(next, func(x setLayer) bool { return x.id == id })
	next[idx].stop = context.AfterFunc(c.ctx, func() { s.Detach(id, c) })
	s.layers.Store(&next)
	s.bump()
	return nil
}

// Detach removes the layer under id if it belongs to c, and reports whether it did.
func (s *PeerSet) Detach(id string, c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.snapshot()
	i := slices.IndexFunc(cur, func(l setLayer) bool { return l.id == id && l.c == c })
	if i < 0 {
		return false
	}
	if cur[i].stop != nil {
		cur[i].stop()
	}
	next := slices.Delete(slices.Clone(cur), i, i+1)
	s.layers.Store(&next)
	s.bump()
	return true
}

// IDs returns the attached peer ids in attach order.
func (s *PeerSet) IDs() []string {
	cur := s.snapshot()
	out := make([]string, len(cur))
	for i, l := range cur {
		out[i] = l.id
	}
	return out
}

// Generation-free check for ReplaceImports: the set's total with c's overlay at n operations.
func (s *PeerSet) admits(c *Conn, n int) error {
	total := n
	for _, l := range s.snapshot() {
		if l.c != c {
			total += l.ov.Len()
		}
	}
	if total > MaxPeerSetOperations {
		return fmt.Errorf("%w: %d operations (max %d)", ErrPeerSetFull, total, MaxPeerSetOperations)
	}
	return nil
}

// layersFor is the peer part of a root's composite: the connection's own layer (own: set
// only with an identity; keyed by its set id if the set holds it), then the set's layers in
// attach order, each overlay once. With no set layer it returns own unchanged (no allocation).
func (s *PeerSet) layersFor(own []peerLayer) []peerLayer {
	set := s.snapshot()
	if len(set) == 0 {
		return own
	}
	out := make([]peerLayer, 0, len(own)+len(set))
	for _, o := range own {
		for _, l := range set {
			if l.ov == o.ov {
				o.id = l.id
			}
		}
		out = append(out, o)
	}
	for _, l := range set {
		if !slices.ContainsFunc(out, func(x peerLayer) bool { return x.ov == l.ov }) {
			out = append(out, l.peerLayer)
		}
	}
	return out
}

// exposed returns the first External registration named name in the set's layers.
func (s *PeerSet) exposed(name string) *Registration {
	for _, l := range s.snapshot() {
		if r, ok := l.ov.lookup(name); ok && r.Spec.Visibility == VisibilityExternal {
			return r
		}
	}
	return nil
}

// ReplaceImports swaps this connection's whole import overlay for regs (Overlay.Replace): an
// invalid batch changes nothing, a running call keeps its registration, and a removed name is
// then NOT_FOUND. On a Conn attached to a PeerSet it fails, changing nothing, when the set
// would pass MaxPeerSetOperations.
func (c *Conn) ReplaceImports(regs []HandlerRegistration) error {
	c.mu.Lock()
	set := c.peerSet
	c.mu.Unlock()
	if set == nil {
		return c.overlay.Replace(regs)
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if err := set.admits(c, len(regs)); err != nil {
		return err
	}
	if err := c.overlay.Replace(regs); err != nil {
		return err
	}
	if slices.ContainsFunc(set.snapshot(), func(l setLayer) bool { return l.c == c }) {
		set.bump()
	}
	return nil
}
