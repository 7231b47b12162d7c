// Package catalog is what the adapters project and call: the operations a node serves, the
// identity of each HTTP or MCP request, and the calls themselves, all entering the call
// pipeline through call.Ingress (docs/http.md §2.1).
package catalog

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/call/toolname"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/endpoint"
)

// Catalog is a node's operations as the adapters see them.
type Catalog interface {
	// Generation changes whenever the set of operations may have changed (docs/http.md §2.4).
	Generation() uint64
	// Changed is closed at the next change of Generation (nil: never changes).
	Changed() <-chan struct{}
	// Candidates lists every operation a root request can reach, for naming (§2.3).
	Candidates(ctx context.Context) ([]call.OperationSpec, error)
	// Visible lists the operations id may call (nil: anonymous), sorted by name (CP §6.1).
	Visible(ctx context.Context, id *core.Identity) ([]call.OperationSpec, error)
	// Spec returns the operation a root request for name reaches.
	Spec(name string) (call.OperationSpec, bool)
	// Resolve resolves a Bearer token; nil means rejected (unknown, revoked or blocked).
	Resolve(ctx context.Context, token string) *core.Identity
	Call(ctx context.Context, r call.RootRequest) (json.RawMessage, error)
	Subscribe(ctx context.Context, r call.RootRequest, emit func(json.RawMessage) error) error
	Node() NodeInfo
}

// NodeInfo describes the node behind a catalogue.
type NodeInfo struct {
	Fingerprint string
	Version     string
}

// Local is the catalogue of this process's node. d is called per request: a reload swaps
// dispatchers.
func Local(d func() *call.Dispatcher, n NodeInfo) Catalog { return &local{d: d, n: n} }

type local struct {
	d func() *call.Dispatcher
	n NodeInfo
}

// NodeCatalog is the Local catalogue of a node that has not started yet: as the node's first
// addon it is bound while the node starts, before any listener serves a request.
type NodeCatalog struct {
	local
	bound atomic.Pointer[node.Node]
}

var _ node.Addon = (*NodeCatalog)(nil)

// ForNode returns a catalogue to pass as the first of node.Options.Addons.
func ForNode(version string) *NodeCatalog {
	nc := &NodeCatalog{}
	nc.local = local{d: func() *call.Dispatcher { return nc.bound.Load().Dispatcher() }, n: NodeInfo{Version: version}}
	return nc
}

// Handlers binds the catalogue to n; it serves no protocol itself.
func (nc *NodeCatalog) Handlers(n *node.Node) ([]endpoint.ProtocolHandler, error) {
	nc.bound.Store(n)
	nc.n.Fingerprint = n.Fingerprint()
	return nil, nil
}

// Bound returns the node the catalogue serves (nil before it starts).
func (nc *NodeCatalog) Bound() *node.Node { return nc.bound.Load() }

// Start does nothing: the catalogue has no listener.
func (nc *NodeCatalog) Start(*node.Node) error { return nil }

// Shutdown does nothing.
func (nc *NodeCatalog) Shutdown(context.Context) error { return nil }

func (l *local) Generation() uint64 {
	if p := l.d().Peers(); p != nil {
		return p.Generation()
	}
	return 0
}

func (l *local) Changed() <-chan struct{} {
	if p := l.d().Peers(); p != nil {
		return p.Changed()
	}
	return nil
}

func (l *local) Candidates(context.Context) ([]call.OperationSpec, error) {
	return l.d().RootSpecs(), nil
}

func (l *local) Visible(ctx context.Context, id *core.Identity) ([]call.OperationSpec, error) {
	return l.d().Visible(ctx, id), nil
}

func (l *local) Spec(name string) (call.OperationSpec, bool) { return l.d().RootSpec(name) }

func (l *local) Resolve(ctx context.Context, token string) *core.Identity {
	return l.d().Resolve(ctx, nil, token)
}

func (l *local) Call(ctx context.Context, r call.RootRequest) (json.RawMessage, error) {
	return l.d().Call(ctx, r)
}

func (l *local) Subscribe(ctx context.Context, r call.RootRequest, emit func(json.RawMessage) error) error {
	return l.d().Subscribe(ctx, r, emit)
}

func (l *local) Node() NodeInfo { return l.n }

// Caller is the identity of one HTTP or MCP request, resolved once (docs/http.md §2.1.2).
type Caller struct {
	Identity      *core.Identity // nil: anonymous
	TokenRejected bool           // a Bearer was sent and did not resolve
	ByToken       bool           // Identity came from the Bearer, not the connection
}

// Key is the caller's identity ID ("" when anonymous): sessions and caches are keyed by it.
func (c Caller) Key() string {
	if c.Identity == nil {
		return ""
	}
	return c.Identity.ID
}

type callerKey struct{}

// WithCaller stores the resolved caller in ctx.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller stored by WithCaller (anonymous if none).
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// ResolveCaller applies the per-request rule: a Bearer token that resolves replaces the
// connection identity; one that does not leaves the connection identity and marks the caller
// TokenRejected.
func ResolveCaller(ctx context.Context, c Catalog, conn *core.Identity, token string) Caller {
	if token == "" {
		return Caller{Identity: conn}
	}
	if id := c.Resolve(ctx, token); id != nil {
		return Caller{Identity: id, ByToken: true}
	}
	return Caller{Identity: conn, TokenRejected: true}
}

// Request returns the root request of an operation for this caller: the token already
// resolved, so the pipeline resolves nothing again (one lookup, one audit line).
func (c Caller) Request(ingress, op string, input json.RawMessage) call.RootRequest {
	return call.RootRequest{ID: call.NewRequestID(), Operation: op, Input: input, ConnIdentity: c.Identity,
		TokenRejected: c.TokenRejected, Ingress: ingress}
}

// Names is a catalogue's one name map (docs/http.md §2.3), built at its first use from the
// candidates of that moment at once, so that collisions among them are hashed whatever their
// order. Every projection of the catalogue shares it.
type Names struct {
	cat  Catalog
	once sync.Once
	m    *toolname.Map
	err  error
}

// NewNames returns the name map of cat.
func NewNames(cat Catalog) *Names { return &Names{cat: cat} }

// Map returns the map, building it on the first call.
func (n *Names) Map(ctx context.Context) (*toolname.Map, error) {
	n.once.Do(func() {
		specs, err := n.cat.Candidates(ctx)
		if err != nil {
			n.err = err
			return
		}
		ops := make([]string, len(specs))
		for i, s := range specs {
			ops[i] = s.Name
		}
		n.m = toolname.New(ops)
	})
	return n.m, n.err
}
