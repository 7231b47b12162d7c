package call

import (
	"slices"
	"sync/atomic"

	"github.com/alkdev/alknet/core"
)

// AbortPolicy says what happens to a composed child when an ancestor is aborted (§14.3).
type AbortPolicy int

// Abort policies.
const (
	AbortDependents AbortPolicy = iota // the child is aborted with its ancestor (default)
	ContinueRunning                    // a started child runs to completion; its result is discarded
)

// OperationContext is what a handler knows about its call (§10).
type OperationContext struct {
	RequestID       string
	ParentRequestID string
	Identity        *core.Identity        // who is calling; nil = anonymous; read-only (shared by a connection's requests)
	Authority       *CompositionAuthority // this handler's own authority
	ForwardedFor    *core.Identity        // wire roots only; never read by access control
	Origin          *core.Identity        // the end caller; inherited by children
	Capabilities    core.Capabilities
	Metadata        map[string]any // fresh per request; never propagated; no secrets
	ScopedEnv       ScopedEnv      // ops this handler may compose
	Env             OperationEnv   // composition entry point
	AbortPolicy     AbortPolicy
	Ownership       OwnershipProvider

	internal bool
	depth    int
	node     *reqNode
	via      []string // forwarders so far, oldest first (wire roots); inherited by children
}

// Via returns the node-key fingerprints of the forwarders a request came through, oldest
// first: from the wire at a root, empty at an ingress root, inherited by composed children.
// It is what the peer said, unauthenticated.
func (oc *OperationContext) Via() []string { return slices.Clone(oc.via) }

// IsInternal reports whether this context belongs to a composed (child) invocation.
func (oc *OperationContext) IsInternal() bool { return oc.internal }

// Depth is the composition depth (0 at a root).
func (oc *OperationContext) Depth() int { return oc.depth }

// reqNode is a request in the abort tree: aborting a node is visible to all its descendants,
// including ContinueRunning ones whose ctx is no longer cancelled with it.
type reqNode struct {
	parent  *reqNode
	aborted atomic.Bool
}

func (n *reqNode) abortedUp() bool {
	for ; n != nil; n = n.parent {
		if n.aborted.Load() {
			return true
		}
	}
	return false
}

// ChildOption adjusts a child context.
type ChildOption func(*OperationContext)

// WithoutCapabilities removes the named capabilities from the child (options can only remove).
func WithoutCapabilities(names ...string) ChildOption {
	return func(oc *OperationContext) {
		keep := map[string][]byte{}
		for _, n := range oc.Capabilities.Names() {
			drop := false
			for _, x := range names {
				if x == n {
					drop = true
				}
			}
			if !drop {
				v, _ := oc.Capabilities.Get(n)
				keep[n] = v
			}
		}
		oc.Capabilities = core.NewCapabilities(keep)
		for _, v := range keep {
			clear(v)
		}
	}
}

// ChildContext builds the context of a composed invocation of reg under parent (§10.3):
// the authority switch, fresh metadata, inherited capabilities (or the leaf's own), env,
// ownership and origin.
func ChildContext(parent *OperationContext, reg *Registration, p AbortPolicy, opts ...ChildOption) *OperationContext {
	child := &OperationContext{
		RequestID:       newUUID(),
		ParentRequestID: parent.RequestID,
		Identity:        parent.Authority.AsIdentity(),
		Authority:       reg.Authority,
		Origin:          parent.Origin,
		Capabilities:    parent.Capabilities,
		Metadata:        map[string]any{},
		Env:             parent.Env,
		AbortPolicy:     p,
		Ownership:       parent.Ownership,
		internal:        true,
		depth:           parent.depth + 1,
		node:            &reqNode{parent: parent.node},
		via:             parent.via,
	}
	if reg.ScopedEnv != nil {
		child.ScopedEnv = *reg.ScopedEnv
	}
	if reg.Provenance.leaf() && len(reg.Capabilities.Names()) > 0 {
		child.Capabilities = reg.Capabilities
	}
	for _, o := range opts {
		o(child)
	}
	return child
}
