package catalog

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// ErrNotConnected is the error of a call while a Live catalogue has no connection.
var ErrNotConnected = call.NewError(call.CodeInternal, "not connected to the node").WithRetryable(true)

// Live is a catalogue whose node connection comes and goes (alknet mcp under
// client.Supervise): while none is set it lists nothing and calls fail with ErrNotConnected.
// Every Set or Touch is a change (Generation, Changed).
type Live struct {
	mu     sync.Mutex
	cur    Catalog
	gen    uint64
	change chan struct{}
	node   NodeInfo
}

var _ Catalog = (*Live)(nil)

// NewLive returns a Live catalogue with no connection.
func NewLive(n NodeInfo) *Live { return &Live{change: make(chan struct{}), node: n} }

// Set installs the catalogue of a new connection (nil: disconnected).
func (l *Live) Set(c Catalog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = c
	if c != nil {
		l.node = c.Node()
	}
	l.bumpLocked()
}

// Touch reports a change of the current catalogue (a refresh found other operations).
func (l *Live) Touch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bumpLocked()
}

func (l *Live) bumpLocked() {
	l.gen++
	close(l.change)
	l.change = make(chan struct{})
}

func (l *Live) current() Catalog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Generation counts the changes.
func (l *Live) Generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// Changed is closed at the next change.
func (l *Live) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.change
}

// Candidates lists the current catalogue's operations (none while disconnected).
func (l *Live) Candidates(ctx context.Context) ([]call.OperationSpec, error) {
	if c := l.current(); c != nil {
		return c.Candidates(ctx)
	}
	return nil, nil
}

// Visible lists what id may call in the current catalogue (none while disconnected).
func (l *Live) Visible(ctx context.Context, id *core.Identity) ([]call.OperationSpec, error) {
	if c := l.current(); c != nil {
		return c.Visible(ctx, id)
	}
	return nil, nil
}

// Spec looks name up in the current catalogue.
func (l *Live) Spec(name string) (call.OperationSpec, bool) {
	if c := l.current(); c != nil {
		return c.Spec(name)
	}
	return call.OperationSpec{}, false
}

// Resolve resolves in the current catalogue.
func (l *Live) Resolve(ctx context.Context, token string) *core.Identity {
	if c := l.current(); c != nil {
		return c.Resolve(ctx, token)
	}
	return nil
}

// Call calls in the current catalogue, or fails with ErrNotConnected.
func (l *Live) Call(ctx context.Context, r call.RootRequest) (json.RawMessage, error) {
	if c := l.current(); c != nil {
		return c.Call(ctx, r)
	}
	return nil, ErrNotConnected
}

// Subscribe subscribes in the current catalogue, or fails with ErrNotConnected.
func (l *Live) Subscribe(ctx context.Context, r call.RootRequest, emit func(json.RawMessage) error) error {
	if c := l.current(); c != nil {
		return c.Subscribe(ctx, r, emit)
	}
	return ErrNotConnected
}

// Node describes the node last connected.
func (l *Live) Node() NodeInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node
}
