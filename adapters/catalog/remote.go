package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// RemoteOptions configure Remote. The caller is the connection's: its client certificate and
// its ConnOptions.AuthToken.
type RemoteOptions struct {
	Timeout time.Duration // each call's budget (0: the connection's default)
	Node    NodeInfo
}

// Remote is the catalogue of the node at the other end of c, as its caller sees it:
// the operations its services/list shows, read within ImportFrom's caps (docs/http.md §2.1).
// Calls go over c. Refresh re-reads the list.
func Remote(ctx context.Context, c *call.Conn, o RemoteOptions) (*RemoteCatalog, error) {
	r := &RemoteCatalog{c: c, o: o}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// RemoteCatalog is a Catalog over a call connection.
type RemoteCatalog struct {
	c     *call.Conn
	o     RemoteOptions
	mu    sync.RWMutex
	specs map[string]call.OperationSpec
	names []string
	gen   uint64
}

var _ Catalog = (*RemoteCatalog)(nil)

// Refresh re-reads the node's list; Generation changes when the operations did.
func (r *RemoteCatalog) Refresh(ctx context.Context) error {
	list, err := call.ReadCatalogue(ctx, r.c, call.ImportConfig{})
	if err != nil {
		return err
	}
	specs := make(map[string]call.OperationSpec, len(list))
	names := make([]string, 0, len(list))
	for _, spec := range list {
		specs[spec.Name] = spec
		names = append(names, spec.Name)
	}
	sort.Strings(names)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(names, r.names) {
		r.gen++
	}
	r.specs, r.names = specs, names
	return nil
}

// Generation changes whenever a Refresh found other operations.
func (r *RemoteCatalog) Generation() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.gen
}

// Changed is nil: a remote catalogue changes only at Refresh.
func (r *RemoteCatalog) Changed() <-chan struct{} { return nil }

// Candidates lists the operations read.
func (r *RemoteCatalog) Candidates(context.Context) ([]call.OperationSpec, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]call.OperationSpec, len(r.names))
	for i, n := range r.names {
		out[i] = r.specs[n]
	}
	return out, nil
}

// Visible is Candidates: the node already listed what this caller may call.
func (r *RemoteCatalog) Visible(ctx context.Context, _ *core.Identity) ([]call.OperationSpec, error) {
	return r.Candidates(ctx)
}

// Spec returns an operation read.
func (r *RemoteCatalog) Spec(name string) (call.OperationSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[name]
	return s, ok
}

// Resolve is not possible remotely: tokens travel with each call.
func (r *RemoteCatalog) Resolve(context.Context, string) *core.Identity { return nil }

func (r *RemoteCatalog) opts(req call.RootRequest) []call.CallOption {
	var opts []call.CallOption
	timeout := r.o.Timeout
	if req.Timeout > 0 && (timeout == 0 || req.Timeout < timeout) {
		timeout = req.Timeout
	}
	if timeout > 0 {
		opts = append(opts, call.WithTimeout(timeout))
	}
	return opts
}

// Call calls the operation on the node.
func (r *RemoteCatalog) Call(ctx context.Context, req call.RootRequest) (json.RawMessage, error) {
	return r.c.Call(ctx, req.Operation, req.Input, r.opts(req)...)
}

// Subscribe subscribes on the node; emit blocks (back-pressure).
func (r *RemoteCatalog) Subscribe(ctx context.Context, req call.RootRequest, emit func(json.RawMessage) error) error {
	sub, err := r.c.Subscribe(ctx, req.Operation, req.Input, r.opts(req)...)
	if err != nil {
		return err
	}
	defer sub.Close()
	if req.OnStart != nil {
		req.OnStart()
	}
	for {
		item, err := sub.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := emit(item); err != nil {
			return err
		}
	}
}

// Node describes the node.
func (r *RemoteCatalog) Node() NodeInfo { return r.o.Node }
