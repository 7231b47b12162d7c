package call

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"sync"
)

// OperationEnv is how handlers compose other operations (§11). Handlers only ever see this
// interface: session overlays, per-connection imports and the core registry compose behind it.
type OperationEnv interface {
	Invoke(ctx context.Context, parent *OperationContext, name string, input json.RawMessage) (json.RawMessage, error)
	InvokeWithPolicy(ctx context.Context, parent *OperationContext, name string, input json.RawMessage, p AbortPolicy) (json.RawMessage, error)
	InvokePeer(ctx context.Context, parent *OperationContext, peer PeerRef, name string, input json.RawMessage, p AbortPolicy) (json.RawMessage, error)
	Contains(name string) bool
	PeerContains(peer PeerRef, name string) bool
	Spec(name string) (OperationSpec, bool)
	PeerIDs() []string
	PeerOperations(peer string) []OperationSpec
}

// PeerRef selects a peer overlay; the zero value means any.
type PeerRef struct{ Peer string }

// AnyPeer is the zero PeerRef: any peer, or the node itself.
var AnyPeer = PeerRef{}

// SessionOverlaySource supplies the session overlay bound into a handler's ctx (agent module).
type SessionOverlaySource interface {
	OverlayFor(ctx context.Context, oc *OperationContext) OperationEnv // nil = none
}

// ScopedEnv is the set of operations a handler may compose (reachability, §11.2).
type ScopedEnv struct {
	names           map[string]struct{}
	pinned          map[[2]string]struct{} // (peer, op)
	AllowSessionOps bool
}

// NewScopedEnv allows exactly the given names.
func NewScopedEnv(names ...string) ScopedEnv {
	s := ScopedEnv{names: make(map[string]struct{}, len(names))}
	for _, n := range names {
		s.names[n] = struct{}{}
	}
	return s
}

// WithPeerOp returns a copy that also allows op on peer only.
func (s ScopedEnv) WithPeerOp(peer, op string) ScopedEnv {
	c := ScopedEnv{names: s.names, pinned: make(map[[2]string]struct{}, len(s.pinned)+1), AllowSessionOps: s.AllowSessionOps}
	for k := range s.pinned {
		c.pinned[k] = struct{}{}
	}
	c.pinned[[2]string{peer, op}] = struct{}{}
	return c
}

// Allows reports whether name is allowed (names only).
func (s ScopedEnv) Allows(name string) bool {
	_, ok := s.names[name]
	return ok
}

// AllowsVia: Any → Allows(name); a peer → Allows(name) or (peer, name) pinned.
func (s ScopedEnv) AllowsVia(p PeerRef, name string) bool {
	if s.Allows(name) {
		return true
	}
	if p.Peer == "" {
		return false
	}
	_, ok := s.pinned[[2]string{p.Peer, name}]
	return ok
}

// Names lists the allowed names, sorted.
func (s ScopedEnv) Names() []string {
	out := make([]string, 0, len(s.names))
	for n := range s.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Overlay is a mutable set of registrations layered over the core registry (a connection's
// imports). Safe for concurrent use.
type Overlay struct {
	mu   sync.RWMutex
	regs map[string]*Registration
}

// NewOverlay returns an empty overlay.
func NewOverlay() *Overlay { return &Overlay{regs: map[string]*Registration{}} }

// Add validates regs and adds them, replacing by name; a duplicate within one batch is an error
// and nothing is added.
func (o *Overlay) Add(regs []HandlerRegistration) error {
	compiled := make([]*Registration, 0, len(regs))
	seen := map[string]bool{}
	for _, r := range regs {
		if seen[r.Spec.Name] {
			return Errorf(CodeInvalidInput, "duplicate operation in one import: %s", r.Spec.Name)
		}
		seen[r.Spec.Name] = true
		c, err := NewRegistration(r)
		if err != nil {
			return err
		}
		compiled = append(compiled, c)
	}
	o.mu.Lock()
	for _, c := range compiled {
		o.regs[c.Spec.Name] = c
	}
	o.mu.Unlock()
	return nil
}

// Replace validates regs and swaps the whole set for them: names not in regs are gone.
// Registrations whose HandlerRegistration is unchanged keep their compiled schemas. An
// invalid batch changes nothing; a call already running keeps its *Registration.
func (o *Overlay) Replace(regs []HandlerRegistration) error {
	o.mu.RLock()
	old := o.regs
	o.mu.RUnlock()
	next := make(map[string]*Registration, len(regs))
	for _, r := range regs {
		if _, dup := next[r.Spec.Name]; dup {
			return Errorf(CodeInvalidInput, "duplicate operation in one import: %s", r.Spec.Name)
		}
		if prev, ok := old[r.Spec.Name]; ok && sameRegistration(prev.HandlerRegistration, r) {
			next[r.Spec.Name] = prev
			continue
		}
		c, err := NewRegistration(r)
		if err != nil {
			return err
		}
		next[r.Spec.Name] = c
	}
	o.mu.Lock()
	o.regs = next
	o.mu.Unlock()
	return nil
}

// Len returns the number of operations in the overlay.
func (o *Overlay) Len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.regs)
}

// sameRegistration reports whether two registrations describe the same operation the same
// way (schemas, access, via), so a refresh can keep the compiled one.
func sameRegistration(a, b HandlerRegistration) bool {
	return a.Spec.Name == b.Spec.Name && a.Spec.Type == b.Spec.Type && a.Spec.Visibility == b.Spec.Visibility &&
		a.Spec.Description == b.Spec.Description && bytes.Equal(a.Spec.InputSchema, b.Spec.InputSchema) &&
		bytes.Equal(a.Spec.OutputSchema, b.Spec.OutputSchema) && reflect.DeepEqual(a.Spec.ErrorSchemas, b.Spec.ErrorSchemas) &&
		reflect.DeepEqual(a.Spec.AccessControl, b.Spec.AccessControl) && slices.Equal(a.via, b.via) &&
		a.Provenance == b.Provenance
}

func (o *Overlay) lookup(name string) (*Registration, bool) {
	if o == nil {
		return nil, false
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	r, ok := o.regs[name]
	return r, ok
}

// Specs lists the overlay's operations, sorted by name.
func (o *Overlay) Specs() []OperationSpec {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]OperationSpec, 0, len(o.regs))
	for _, r := range o.regs {
		out = append(out, r.Spec)
	}
	slices.SortFunc(out, func(a, b OperationSpec) int { return compareStrings(a.Name, b.Name) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// peerLayer is an attached peer overlay.
type peerLayer struct {
	id string
	ov *Overlay
}

// composite is the per-call env of a wire root: session → peers in attach order → core.
type composite struct {
	d     *Dispatcher
	peers []peerLayer
}

var _ OperationEnv = (*composite)(nil)

func (e *composite) session(ctx context.Context, parent *OperationContext) OperationEnv {
	if e.d.sessions == nil {
		return nil
	}
	return e.d.sessions.OverlayFor(ctx, parent)
}

func (e *composite) Invoke(ctx context.Context, parent *OperationContext, name string, input json.RawMessage) (json.RawMessage, error) {
	return e.InvokePeer(ctx, parent, AnyPeer, name, input, parent.AbortPolicy)
}

func (e *composite) InvokeWithPolicy(ctx context.Context, parent *OperationContext, name string, input json.RawMessage, p AbortPolicy) (json.RawMessage, error) {
	return e.InvokePeer(ctx, parent, AnyPeer, name, input, p)
}

func (e *composite) InvokePeer(ctx context.Context, parent *OperationContext, peer PeerRef, name string, input json.RawMessage, p AbortPolicy) (json.RawMessage, error) {
	name = stripSlash(name)
	sess := e.session(ctx, parent)
	_, inCore := e.d.reg.lookup(name)
	reachable := parent.ScopedEnv.AllowsVia(peer, name) ||
		(peer.Peer == "" && !inCore && parent.ScopedEnv.AllowSessionOps && sess != nil && sess.Contains(name))
	if !reachable {
		return nil, errNotFound(name)
	}
	if peer.Peer != "" {
		for _, l := range e.peers {
			if l.id == peer.Peer {
				if reg, ok := l.ov.lookup(name); ok {
					return RunRegistration(ctx, parent, reg, input, p)
				}
			}
		}
		return nil, errNotFound(name)
	}
	if sess != nil && !inCore && sess.Contains(name) { // a session never shadows a core name
		return sess.InvokeWithPolicy(ctx, parent, name, input, p)
	}
	for _, l := range e.peers {
		if reg, ok := l.ov.lookup(name); ok {
			return RunRegistration(ctx, parent, reg, input, p)
		}
	}
	if reg, ok := e.d.reg.lookup(name); ok {
		return RunRegistration(ctx, parent, reg, input, p)
	}
	return nil, errNotFound(name)
}

func (e *composite) Contains(name string) bool {
	name = stripSlash(name)
	if _, ok := e.d.reg.lookup(name); ok {
		return true
	}
	for _, l := range e.peers {
		if _, ok := l.ov.lookup(name); ok {
			return true
		}
	}
	return false
}

func (e *composite) PeerContains(peer PeerRef, name string) bool {
	if peer.Peer == "" {
		return e.Contains(name)
	}
	for _, l := range e.peers {
		if l.id == peer.Peer {
			_, ok := l.ov.lookup(stripSlash(name))
			return ok
		}
	}
	return false
}

// Spec follows Invoke's resolution order (peers, then core; a session overlay resolves
// through its own env), without a reachability check.
func (e *composite) Spec(name string) (OperationSpec, bool) {
	name = stripSlash(name)
	for _, l := range e.peers {
		if r, ok := l.ov.lookup(name); ok {
			return r.Spec, true
		}
	}
	return e.d.reg.Spec(name)
}

func (e *composite) PeerIDs() []string {
	out := make([]string, 0, len(e.peers))
	for _, l := range e.peers {
		out = append(out, l.id)
	}
	return out
}

// peerRegistration returns peer's registration of name, if that layer is in the composite.
func (e *composite) peerRegistration(peer, name string) *Registration {
	for _, l := range e.peers {
		if l.id == peer {
			if r, ok := l.ov.lookup(name); ok {
				return r
			}
		}
	}
	return nil
}

func (e *composite) PeerOperations(peer string) []OperationSpec {
	for _, l := range e.peers {
		if l.id == peer {
			return l.ov.Specs()
		}
	}
	return nil
}
