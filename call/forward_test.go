package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/identity"
)

// seen records what a worker's handler saw of its caller.
type seen struct {
	mu                     sync.Mutex
	identity, forwardedFor string
	via                    []string
	composeDone            chan time.Time
	composeBlocked, slept  chan struct{}
}

func (s *seen) ops() []call.HandlerRegistration {
	whoami := queryOp("test/whoami", func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.identity, s.forwardedFor, s.via = "", "", oc.Via()
		if oc.Identity != nil {
			s.identity = oc.Identity.ID
		}
		if oc.ForwardedFor != nil {
			s.forwardedFor = oc.ForwardedFor.ID
		}
		return json.Marshal(map[string]any{"identity": s.identity, "scopes": scopesOf(oc.Identity)})
	})
	secret := queryOp("test/secret", func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(oc.Identity.ID)
	})
	secret.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"x"}}
	fails := queryOp("test/fails", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return nil, call.NewError("OUT_OF_STOCK", "none left").WithDetails(json.RawMessage(`{"sku":"a"}`))
	})
	fails.Spec.ErrorSchemas = []call.ErrorDefinition{{Code: "OUT_OF_STOCK", Description: "none left"}}
	regs := append([]call.HandlerRegistration{whoami, secret, fails}, demo.Registrations(demo.Options{
		OnComposeDone: func(level int, _ string, _ error) {
			if level == 1 {
				s.composeDone <- time.Now()
			}
		},
		OnComposeBlocked: func(int, string) { s.composeBlocked <- struct{}{} },
	})...)
	return regs
}

func scopesOf(id *core.Identity) []string {
	if id == nil {
		return []string{}
	}
	return id.Scopes
}

func newSeen() *seen {
	return &seen{composeDone: make(chan time.Time, 4), composeBlocked: make(chan struct{}, 4), slept: make(chan struct{}, 4)}
}

// hubAndWorker is a hub with a peer set and a worker serving seen's and the demo operations;
// the hub's key is the worker's peer "hub" with scopes hubScopes.
type hubAndWorker struct {
	hub, worker *node
	set         *call.PeerSet
	seen        *seen
	clientKey   *identity.NodeKey // the hub's peer "alice" (scopes read, x)
	bobKey      *identity.NodeKey // the hub's peer "bob" (scope read)
}

func startHubAndWorker(t *testing.T, hubScopes []string, hubLimits, workerLimits call.Limits) *hubAndWorker {
	t.Helper()
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.clientKey, _ = identity.Generate()
	hw.bobKey, _ = identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: hw.seen.ops(), cfg: workerLimits, dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{
		{PeerID: "hub", Fingerprints: []string{hubKey.Fingerprint()}, Scopes: hubScopes, Enabled: true}}}})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set, cfg: hubLimits, dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{
		{PeerID: "alice", Fingerprints: []string{hw.clientKey.Fingerprint()}, Scopes: []string{"read", "x"}, Enabled: true},
		{PeerID: "bob", Fingerprints: []string{hw.bobKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}}}})
	return hw
}

// link dials the worker from the hub over tr and imports its catalogue under cfg.Peer.
func (hw *hubAndWorker) link(t *testing.T, tr string, cfg call.ImportConfig) (*call.Conn, call.ImportResult) {
	t.Helper()
	// A link's subscriptions buffer 4096 items (forwarding §5.4).
	c := hw.worker.dial(t, tr, hw.hub.key, hw.hub.d, call.ConnOptions{SubscriptionBuffer: 4096, StreamReuse: 4, Logger: slog.New(slog.DiscardHandler)})
	res, err := call.ImportFrom(tctx(t), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ReplaceImports(res.Registrations); err != nil {
		t.Fatal(err)
	}
	if err := hw.set.Attach(cfg.Peer, c); err != nil {
		t.Fatal(err)
	}
	return c, res
}

func names(regs []call.HandlerRegistration) []string {
	var out []string
	for _, r := range regs {
		out = append(out, r.Spec.Name)
	}
	slices.Sort(out)
	return out
}

// Forwarding checklist 1-5: what an import takes, names, copies and skips.
func TestImportFrom(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	c := hw.worker.dialAs(t, "quic", hw.hub)
	res, err := call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", Prefix: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	got := names(res.Registrations)
	for _, want := range []string{"w1/demo/echo", "w1/demo/ticker", "w1/test/whoami", "w1/test/fails"} {
		if !slices.Contains(got, want) {
			t.Fatalf("imported %v, no %s", got, want)
		}
	}
	for _, n := range got {
		if strings.Contains(n, "services/") {
			t.Fatalf("a discovery operation was imported: %s", n)
		}
	}
	for _, r := range res.Registrations {
		switch r.Spec.Name {
		case "w1/demo/echo":
			if r.Spec.Visibility != call.VisibilityInternal || r.Provenance != call.ProvenanceFromCall || !strings.Contains(string(r.Spec.InputSchema), `"text"`) {
				t.Fatalf("w1/demo/echo: %+v", r.Spec)
			}
		case "w1/test/secret":
			if !slices.Equal(r.Spec.AccessControl.RequiredScopes, []string{"x"}) {
				t.Fatalf("access control not copied: %+v", r.Spec.AccessControl)
			}
		case "w1/test/fails":
			if len(r.Spec.ErrorSchemas) != 1 || r.Spec.ErrorSchemas[0].Code != "OUT_OF_STOCK" {
				t.Fatalf("error schemas not copied: %+v", r.Spec.ErrorSchemas)
			}
		}
	}
	// Alias, Filter, visibility and access control override.
	res, err = call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true,
		Filter: func(n string) bool { return strings.HasPrefix(n, "demo/") }, Alias: map[string]string{"demo/echo": "echo/w1"},
		AccessControl: &call.AccessControl{RequiredScopes: []string{"ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res.Registrations); !slices.Contains(got, "echo/w1") || slices.Contains(got, "w1/test/whoami") || slices.Contains(got, "w1/demo/echo") {
		t.Fatalf("alias and filter: %v", got)
	}
	for _, r := range res.Registrations {
		if r.Spec.Visibility != call.VisibilityExternal || !slices.Equal(r.Spec.AccessControl.RequiredScopes, []string{"ops"}) {
			t.Fatalf("%s: %+v", r.Spec.Name, r.Spec)
		}
	}
	// Two remote names onto one local name: nothing is built.
	_, err = call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", Alias: map[string]string{"demo/echo": "x/y", "demo/add": "x/y"}})
	var ie *call.ImportError
	if !errors.As(err, &ie) || ie.Kind != call.SamePeerCollision {
		t.Fatalf("collision: %v", err)
	}
	// A token capability that is not bound: refused before any I/O.
	_, err = call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", AuthTokenCapability: "token:w1"})
	if !errors.As(err, &ie) || ie.Kind != call.Unauthorized {
		t.Fatalf("unbound token capability: %v", err)
	}
	// A catalogue over the caps fails whole.
	_, err = call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", MaxOperations: 2})
	if !errors.As(err, &ie) || ie.Kind != call.DiscoveryFailed {
		t.Fatalf("MaxOperations: %v", err)
	}
	_, err = call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", MaxCatalogueBytes: 100})
	if !errors.As(err, &ie) || ie.Kind != call.DiscoveryFailed {
		t.Fatalf("MaxCatalogueBytes: %v", err)
	}
	// One schema over MaxSchemaBytes skips that operation only.
	res, err = call.ImportFrom(tctx(t), c, call.ImportConfig{Peer: "w1", Prefix: "w1", MaxSchemaBytes: 700})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) == 0 || res.Skipped[0].Kind != call.SchemaParse || len(res.Registrations) == 0 {
		t.Fatalf("MaxSchemaBytes: %d imported, skipped %v", len(res.Registrations), res.Skipped)
	}
}

// Forwarding checklist 6, 10, 15, 18: an exposed import is callable and listed, byte for byte,
// with the client's identity forwarded and the hub's fingerprint in via; an Internal one is not.
func TestForwardedCall(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
			hw.link(t, tr, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
			c := hw.hub.dial(t, tr, hw.clientKey, nil, call.ConnOptions{SubscriptionBuffer: 4096})
			out, err := c.Call(tctx(t), "w1/demo/echo", js(`{"text":"hi <&>"}`))
			if err != nil || string(out) != `{"text":"hi <&>"}` {
				t.Fatalf("forwarded echo: %s %v", out, err)
			}
			if _, err := c.Call(tctx(t), "w1/demo/echo", js(`{}`)); !errors.Is(err, call.ErrInvalidInput) {
				t.Fatalf("input failing the copied schema: %v", err)
			}
			if _, err := c.Call(tctx(t), "w1/test/whoami", nil); err != nil {
				t.Fatal(err)
			}
			hw.seen.mu.Lock()
			id, ff, via := hw.seen.identity, hw.seen.forwardedFor, hw.seen.via
			hw.seen.mu.Unlock()
			if id != "hub" || ff != "alice" || !slices.Equal(via, []string{hw.hub.key.Fingerprint()}) {
				t.Fatalf("the worker saw identity %q, forwarded_for %q, via %v", id, ff, via)
			}
			// A declared domain error with its details reaches the client unchanged.
			_, err = c.Call(tctx(t), "w1/test/fails", nil, call.WithKnownCodes("OUT_OF_STOCK"))
			var ce *call.Error
			if !errors.As(err, &ce) || ce.Code() != "OUT_OF_STOCK" || string(ce.Details()) != `{"sku":"a"}` {
				t.Fatalf("domain error: %v", err)
			}
			// Listed with via, and described.
			list, err := c.Call(tctx(t), call.OpServicesList, js(`{}`))
			if err != nil || !strings.Contains(string(list), `{"name":"w1/demo/echo","namespace":"w1","op_type":"query","via":["`+hw.worker.key.Fingerprint()+`"]`) {
				t.Fatalf("services/list: %s %v", list, err)
			}
			if _, err := c.Call(tctx(t), call.OpServicesSchema, js(`{"name":"w1/demo/echo"}`)); err != nil {
				t.Fatalf("services/schema of an exposed import: %v", err)
			}
			// A subscription is forwarded item by item, in order, past the hub's deadline.
			sub, err := c.Subscribe(context.Background(), "w1/demo/ticker", js(`{"count":2000,"interval_ms":0}`))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				item, err := sub.Recv()
				if err != nil || string(item) != `{"tick":`+jsonInt(i)+`}` {
					t.Fatalf("item %d: %s %v", i, item, err)
				}
			}
			if _, err := sub.Recv(); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
		})
	}
	// Internal imports are not reachable from the wire.
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1"})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	if _, err := c.Call(tctx(t), "w1/demo/echo", js(`{"text":"x"}`)); !errors.Is(err, call.ErrNotFound) {
		t.Fatalf("an internal import from the wire: %v", err)
	}
}

// Forwarding checklist 19 (CP 57): a client's abort reaches the worker's handler through the
// hub, the worker having dialled in; the time is logged and bounded.
func TestHubAbortAcrossHop(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			set := call.NewPeerSet()
			s := newSeen()
			workerKey, _ := identity.Generate()
			hubKey, _ := identity.Generate()
			imported := make(chan error, 1)
			var hubNode *node
			hubNode = startNodeWithKey(t, hubKey, nodeOpts{peers: set, dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{
				{PeerID: "w1", Fingerprints: []string{workerKey.Fingerprint()}, Scopes: []string{"worker"}, Enabled: true}}},
				onConn: func(ctx context.Context, c *call.Conn) {
					if c.Connection().RemoteFingerprint() != workerKey.Fingerprint() {
						return
					}
					go func() {
						res, err := call.ImportFrom(ctx, c, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
						if err == nil {
							err = c.ReplaceImports(res.Registrations)
						}
						if err == nil {
							err = set.Attach("w1", c)
						}
						imported <- err
					}()
				}})
			worker := startNodeWithKey(t, workerKey, nodeOpts{regs: s.ops()})
			// The worker dials the hub and serves its operations over the link.
			hubNode.dialAsWith(t, tr, workerKey, worker.d)
			if err := <-imported; err != nil {
				t.Fatal(err)
			}
			c := hubNode.dial(t, tr, nil, nil, call.ConnOptions{})
			ctx, cancel := context.WithCancel(tctx(t))
			errc := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, "w1/demo/compose", js(`{"depth":1,"block":true}`))
				errc <- err
			}()
			<-s.composeBlocked
			aborted := time.Now()
			cancel()
			select {
			case done := <-s.composeDone:
				took := done.Sub(aborted)
				t.Logf("%s: client abort → worker handler ctx done: %v", tr, took)
				if took > time.Second {
					t.Fatalf("the abort took %v to cross the hop", took)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the worker's handler was never cancelled")
			}
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("client: %v", err)
			}
		})
	}
}

// Forwarding checklist 21, 23: the hub's deadline reaches the worker (minus the margin), and
// a link that drops mid-call fails the call cleanly, then its names are NOT_FOUND.
func TestForwardDeadlineAndLinkLoss(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{RequestTimeout: time.Second}, call.Limits{})
	link, _ := hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	start := time.Now()
	_, err := c.Call(tctx(t), "w1/demo/sleep", js(`{}`))
	if !errors.Is(err, call.ErrTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("slow remote: %v after %v", err, time.Since(start))
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(tctx(t), "w1/demo/sleep", js(`{"ms":5000}`), call.WithTimeout(10*time.Second))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // the call is on the link (a bound, not a sync point: any order fails the same way)
	_ = link.Close()
	select {
	case err := <-errc:
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || !ce.Retryable() ||
			(ce.Message() != "peer w1: connection closed" && ce.Message() != "operation not found: w1/demo/sleep") {
			t.Fatalf("link lost mid-call: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the call did not fail within 1 s of the link closing")
	}
	deadline := time.Now().Add(time.Second)
	for {
		_, err := c.Call(tctx(t), "w1/demo/echo", js(`{"text":"x"}`))
		if errors.Is(err, call.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the link closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Forwarding checklist 28, 29: an untrusted claim never changes the worker's decision; a
// trusted one runs as the claimed identity, capped by the hub's own scopes.
func TestForwardedIdentityTrust(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hubScopes []string
		trust     []string
		bob       bool  // call as bob (scope read) instead of alice (read, x)
		want      error // nil: allowed
		wantID    string
	}{
		// The hub cannot see the operation: it is not imported at all.
		{"untrusted: the hub's own identity decides", []string{"read"}, nil, false, call.ErrNotFound, ""},
		{"untrusted hub with the scope, any client", []string{"x"}, nil, true, nil, "hub"},
		{"trusted: the client's identity", []string{"x", "read"}, []string{"hub"}, false, nil, "alice"},
		{"trusted: a client without the scope is refused", []string{"x", "read"}, []string{"hub"}, true, call.ErrForbidden, ""},
		{"trusted, but the hub lacks the scope", []string{"read"}, []string{"hub"}, false, call.ErrNotFound, ""},
		{"trusted: an anonymous client stays anonymous", []string{"x", "read"}, []string{"hub"}, false, call.ErrForbidden, "anonymous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hw := startHubAndWorker(t, tc.hubScopes, call.Limits{}, call.Limits{TrustForwardedFor: tc.trust})
			hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true,
				AccessControl: &call.AccessControl{}})
			key := hw.clientKey
			if tc.bob {
				key = hw.bobKey
			}
			if tc.wantID == "anonymous" {
				key = nil
			}
			c := hw.hub.dial(t, "quic", key, nil, call.ConnOptions{})
			out, err := c.Call(tctx(t), "w1/test/secret", nil)
			if tc.want == nil && (err != nil || string(out) != `"`+tc.wantID+`"`) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %s %v", out, err)
			}
		})
	}
}

// Forwarding checklist 32, 34: mutual imports converge (the catalogue's via prunes the
// loop), and a forwarder whose remote is already on the path fails locally.
func TestForwardLoops(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	// The worker imports the hub back: the hub's w1/… entries name the worker in via.
	back := hw.hub.dialAs(t, "quic", hw.worker)
	res, err := call.ImportFrom(tctx(t), back, call.ImportConfig{Peer: "hub", Prefix: "hub"})
	if err != nil {
		t.Fatal(err)
	}
	loops := 0
	for _, s := range res.Skipped {
		if s.Kind == call.Loop {
			loops++
		}
	}
	if loops == 0 || slices.ContainsFunc(names(res.Registrations), func(n string) bool { return strings.HasPrefix(n, "hub/w1/") }) {
		t.Fatalf("mutual import: %v, skipped %v", names(res.Registrations), res.Skipped)
	}
}

// startNodeWithKey is startNode with a given node key.
func startNodeWithKey(t *testing.T, key *identity.NodeKey, o nodeOpts) *node {
	t.Helper()
	o.key = key
	return startNode(t, o)
}

// dialAs dials n from node from's key, serving from's dispatcher over the link.
func (n *node) dialAs(t *testing.T, tr string, from *node) *call.Conn {
	t.Helper()
	return n.dial(t, tr, from.key, from.d, call.ConnOptions{})
}

// dialAsWith dials n with key, serving d over the link.
func (n *node) dialAsWith(t *testing.T, tr string, key *identity.NodeKey, d *call.Dispatcher) *call.Conn {
	t.Helper()
	return n.dial(t, tr, key, d, call.ConnOptions{})
}

// Forwarding checklist 11, 24: an exposed subscription runs past the hub's RequestTimeout, and
// a client's abort of a forwarded subscription makes the worker's emit fail (no completion).
func TestForwardedSubscriptionLifetime(t *testing.T) {
	emitFailed := make(chan struct{}, 1)
	endless := streamOp("test/endless", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		for {
			if err := emit(js(`1`)); err != nil {
				emitFailed <- struct{}{}
				return err
			}
			time.Sleep(time.Millisecond)
		}
	})
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	twoThenFail := streamOp("test/twothenfail", func(_ context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		for range 2 {
			if err := emit(js(`1`)); err != nil {
				return err
			}
		}
		return call.NewError(call.CodeInvalidInput, "bad third")
	})
	hw.worker = startNode(t, nodeOpts{regs: append(hw.seen.ops(), endless, twoThenFail)})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set, cfg: call.Limits{RequestTimeout: 200 * time.Millisecond}})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	sub, err := c.Subscribe(context.Background(), "w1/demo/ticker", js(`{"count":4,"interval_ms":150}`)) // 600 ms > 200 ms
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if item, err := sub.Recv(); err != nil || string(item) != `{"tick":`+jsonInt(i)+`}` {
			t.Fatalf("item %d: %s %v", i, item, err)
		}
	}
	if _, err := sub.Recv(); err != io.EOF {
		t.Fatalf("a subscription past the hub's RequestTimeout: %v", err)
	}
	// A remote call.error follows the items before it.
	sub, err = c.Subscribe(context.Background(), "w1/test/twothenfail", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := sub.Recv(); err != nil {
			t.Fatalf("items before the error: %v", err)
		}
	}
	if _, err := sub.Recv(); !errors.Is(err, call.ErrInvalidInput) || !strings.Contains(err.Error(), "bad third") {
		t.Fatalf("the remote's error after its items: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub, err = c.Subscribe(ctx, "w1/test/endless", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-emitFailed:
	case <-time.After(2 * time.Second):
		t.Fatal("the worker's emit did not fail after the client's abort")
	}
}

// Forwarding checklist 20 (CP 57): aborting a hub root whose child forwarded aborts the remote
// request; under ContinueRunning the forwarded child runs to completion.
func TestForwardAbortPolicies(t *testing.T) {
	outcome := make(chan string, 2)
	slow := queryOp("test/slow", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		select {
		case <-time.After(300 * time.Millisecond):
			outcome <- "completed"
			return js(`1`), nil
		case <-ctx.Done():
			outcome <- "cancelled"
			return nil, ctx.Err()
		}
	})
	withPolicy := func(name string, p call.AbortPolicy) call.HandlerRegistration {
		r := composer(name, "w1/test/slow")
		r.Handler = func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			return oc.Env.InvokeWithPolicy(ctx, oc, "w1/test/slow", in, p)
		}
		return r
	}
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: append(hw.seen.ops(), slow)})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set, regs: []call.HandlerRegistration{
		withPolicy("hub/dependents", call.AbortDependents), withPolicy("hub/continue", call.ContinueRunning)}})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1"})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	for _, tc := range []struct{ op, want string }{{"hub/dependents", "cancelled"}, {"hub/continue", "completed"}} {
		ctx, cancel := context.WithCancel(tctx(t))
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := c.Call(ctx, tc.op, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: %v", tc.op, err)
		}
		select {
		case got := <-outcome:
			if got != tc.want {
				t.Fatalf("%s: the worker's request was %s, want %s", tc.op, got, tc.want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: the worker's request never ended", tc.op)
		}
	}
}

// Forwarding checklist 25: over a TCP+TLS link a client lagging past the link's buffer gets its
// items, then "subscription consumer too slow".
func TestForwardTCPLinkLag(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	hw.link(t, "tcp", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	sub, err := c.Subscribe(context.Background(), "w1/demo/ticker", js(`{"count":30000,"interval_ms":0,"pad":1000}`))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	time.Sleep(1500 * time.Millisecond) // the client lags; the hub's emit blocks; the link's buffer fills
	got := 0
	for {
		_, err := sub.Recv()
		if err == nil {
			got++
			continue
		}
		if err == io.EOF || !strings.Contains(err.Error(), "subscription consumer too slow") {
			t.Fatalf("after %d items: %v (want the link's too-slow error)", got, err)
		}
		break
	}
	if got == 0 {
		t.Fatal("no items before the error")
	}
	t.Logf("items before the error: %d", got)
}

// Forwarding checklist 33: a composed loop H → W → H is stopped at W's forwarder with the loop
// error, before anything is sent back to H.
func TestComposedLoop(t *testing.T) {
	hubKey, _ := identity.Generate()
	set := call.NewPeerSet()
	pinged := make(chan struct{}, 1)
	ping := queryOp("hub/ping", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		pinged <- struct{}{}
		return js(`"pong"`), nil
	})
	imported := make(chan error, 1)
	worker := startNode(t, nodeOpts{regs: []call.HandlerRegistration{composer("test/back", "hub/hub/ping")},
		dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{{PeerID: "hub", Fingerprints: []string{hubKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}}},
		onConn: func(ctx context.Context, c *call.Conn) { // W imports H back over the link H dialled
			go func() {
				res, err := call.ImportFrom(ctx, c, call.ImportConfig{Peer: "hub", Prefix: "hub"})
				if err == nil {
					err = c.ReplaceImports(res.Registrations)
				}
				imported <- err
			}()
		}})
	hub := startNodeWithKey(t, hubKey, nodeOpts{peers: set, regs: []call.HandlerRegistration{ping, composer("hub/loop", "w1/test/back")}})
	link := worker.dial(t, "quic", hubKey, hub.d, call.ConnOptions{})
	if err := <-imported; err != nil {
		t.Fatal(err)
	}
	res, err := call.ImportFrom(tctx(t), link, call.ImportConfig{Peer: "w1", Prefix: "w1"})
	if err == nil {
		err = link.ReplaceImports(res.Registrations)
	}
	if err == nil {
		err = set.Attach("w1", link)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := hub.dial(t, "tcp", nil, nil, call.ConnOptions{})
	_, err = c.Call(tctx(t), "hub/loop", nil)
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || ce.Message() != "forwarding loop: "+hubKey.Fingerprint()+" is already on the path" {
		t.Fatalf("composed loop: %v", err)
	}
	select {
	case <-pinged:
		t.Fatal("the loop reached H again")
	default:
	}
}

// Forwarding checklist 24: a paused client blocks the worker's emit through the hub over QUIC
// (back-pressure end to end), and nothing is lost when it reads again.
func TestForwardBackPressure(t *testing.T) {
	var emitted atomic.Int64
	const total = 20000
	flood := streamOp("test/flood", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		pad, _ := json.Marshal(strings.Repeat("x", 1000))
		for i := range total {
			if err := emit(json.RawMessage(`{"i":` + jsonInt(i) + `,"pad":` + string(pad) + `}`)); err != nil {
				return err
			}
			emitted.Add(1)
		}
		return nil
	})
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: append(hw.seen.ops(), flood)})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	sub, err := c.Subscribe(context.Background(), "w1/test/flood", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// The client does not read: buffers fill (its 32 items, the link's 4096, the QUIC windows),
	// then the worker's emit blocks, well before the 20,000 items.
	paused, deadline := int64(-1), time.Now().Add(10*time.Second)
	for {
		time.Sleep(250 * time.Millisecond)
		now := emitted.Load()
		if now == paused {
			break
		}
		if now >= total || time.Now().After(deadline) {
			t.Fatalf("the worker kept emitting while the client paused: %d of %d", now, total)
		}
		paused = now
	}
	for i := range total {
		item, err := sub.Recv()
		if err != nil || !strings.HasPrefix(string(item), `{"i":`+jsonInt(i)+`,`) {
			t.Fatalf("item %d: %.20s %v", i, item, err)
		}
	}
	if _, err := sub.Recv(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	t.Logf("emitted while the client paused: %d of %d", paused, total)
}

// Forwarding checklist 21: the remote's deadline is the hub's time left minus the margin,
// min(100 ms, half of it), so the forwarder times out before the hub's own deadline.
func TestForwardDeadlineMargin(t *testing.T) {
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: []call.HandlerRegistration{deadlineOp()}})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set, cfg: call.Limits{RequestTimeout: time.Second}})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	out, err := c.Call(tctx(t), "w1/test/deadline", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	_ = json.Unmarshal(out, &ms)
	// The hub's 1 s, less transit, less the 100 ms margin: at most 900 ms (a bound, not a speed).
	if ms > 900 || ms < 500 {
		t.Fatalf("the worker's handler had %d ms; want the hub's budget minus the 100 ms margin", ms)
	}
}
