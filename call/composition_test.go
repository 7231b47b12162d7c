package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// ocRecorder records the OperationContext and deadline each level saw.
type ocRecord struct {
	oc          call.OperationContext
	deadline    time.Time
	hasDeadline bool
	capability  string
}

type recorder struct {
	mu   sync.Mutex
	seen map[string]ocRecord
}

func (r *recorder) record(name string, ctx context.Context, oc *call.OperationContext) {
	dl, ok := ctx.Deadline()
	v, _ := oc.Capabilities.Get("api_key:x")
	r.mu.Lock()
	r.seen[name] = ocRecord{oc: *oc, deadline: dl, hasDeadline: ok, capability: string(v)}
	r.mu.Unlock()
}

func (r *recorder) get(name string) ocRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[name]
}

// Checklist 46, 47, 48, 49, 35, 69 (origin).
func TestCompositionContext(t *testing.T) {
	rec := &recorder{seen: map[string]ocRecord{}}
	adminOnly := constOp("c/adminonly", `"secret"`)
	adminOnly.Spec.Visibility = call.VisibilityInternal
	adminOnly.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	leaf := queryOp("c/leaf", func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		rec.record("leaf", ctx, oc)
		return js(`"leaf"`), nil
	})
	leaf.Spec.Visibility = call.VisibilityInternal
	mid := queryOp("c/mid", func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		rec.record("mid", ctx, oc)
		oc.Metadata["mid"] = true
		return oc.Env.Invoke(ctx, oc, "c/leaf", nil)
	})
	mid.Spec.Visibility = call.VisibilityInternal
	midScope := call.NewScopedEnv("c/leaf")
	mid.ScopedEnv = &midScope
	mid.Authority = &call.CompositionAuthority{Label: "mid-authority", Scopes: []string{"mid"}}
	top := queryOp("c/top", func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		rec.record("top", ctx, oc)
		oc.Metadata["top"] = true
		var which string
		_ = json.Unmarshal(in, &which)
		return oc.Env.Invoke(ctx, oc, which, nil)
	})
	topScope := call.NewScopedEnv("c/mid", "c/adminonly", "c/sub")
	top.ScopedEnv = &topScope
	top.Authority = &call.CompositionAuthority{Label: "top-authority", Scopes: []string{"admin"}}
	top.Capabilities = core.NewCapabilities(map[string][]byte{"api_key:x": []byte("k1")})
	weak := queryOp("c/weak", func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		return oc.Env.Invoke(ctx, oc, "c/adminonly", nil)
	})
	weakScope := call.NewScopedEnv("c/adminonly")
	weak.ScopedEnv = &weakScope
	weak.Authority = &call.CompositionAuthority{Label: "weak", Scopes: []string{"user"}}
	sub := streamOp("c/sub", func(context.Context, *call.OperationContext, json.RawMessage, func(json.RawMessage) error) error {
		return nil
	})
	sub.Spec.Visibility = call.VisibilityInternal
	d := buildDispatcher(t, nodeOpts{regs: []call.HandlerRegistration{adminOnly, leaf, mid, top, weak, sub}}, nil)
	user := &core.Identity{ID: "wire-user", Scopes: []string{"user"}}

	before := time.Now()
	out, ce := ingressCall(t, d, call.RootRequest{ID: "root-1", Operation: "c/top", Input: js(`"c/mid"`), ConnIdentity: user})
	if ce != nil || string(out) != `"leaf"` {
		t.Fatalf("c/top → c/mid → c/leaf: %s %v", out, ce)
	}
	top1, mid1, leaf1 := rec.get("top"), rec.get("mid"), rec.get("leaf")
	// 46: the wire root.
	if top1.oc.IsInternal() || top1.oc.ParentRequestID != "" || top1.oc.RequestID != "root-1" || top1.oc.Identity.ID != "wire-user" ||
		!top1.hasDeadline || top1.deadline.Sub(before) < 29*time.Second || top1.deadline.Sub(before) > 31*time.Second {
		t.Fatalf("root context: %+v deadline in %v", top1.oc, top1.deadline.Sub(before))
	}
	// 47: the child: internal, parent id, the parent's authority as identity, fresh metadata,
	// the parent's capabilities and deadline.
	if !mid1.oc.IsInternal() || mid1.oc.ParentRequestID != "root-1" || mid1.oc.Identity.ID != "top-authority" ||
		mid1.oc.Metadata["top"] != nil || mid1.capability != "k1" || !mid1.deadline.Equal(top1.deadline) || mid1.oc.RequestID == "root-1" {
		t.Fatalf("child context: %+v", mid1.oc)
	}
	// 69: two levels below the root, Origin is still the wire caller.
	if leaf1.oc.Origin == nil || leaf1.oc.Origin.ID != "wire-user" || leaf1.oc.Identity.ID != "mid-authority" || leaf1.oc.ForwardedFor != nil {
		t.Fatalf("grandchild: origin %+v identity %+v", leaf1.oc.Origin, leaf1.oc.Identity)
	}
	// 48: outside the parent's ScopedEnv → NOT_FOUND although the op exists.
	if _, ce := ingressCall(t, d, call.RootRequest{Operation: "c/top", Input: js(`"c/leaf"`), ConnIdentity: user}); ce == nil || ce.Code() != "NOT_FOUND" {
		t.Fatalf("unreachable: %v", ce)
	}
	// 49: an admin authority composes an admin-only Internal op for a user; a weak one cannot.
	if out, ce := ingressCall(t, d, call.RootRequest{Operation: "c/top", Input: js(`"c/adminonly"`), ConnIdentity: user}); ce != nil || string(out) != `"secret"` {
		t.Fatalf("admin authority: %s %v", out, ce)
	}
	if _, ce := ingressCall(t, d, call.RootRequest{Operation: "c/weak", ConnIdentity: &core.Identity{ID: "root", Scopes: []string{"admin"}}}); ce == nil || ce.Message() != "missing required scope: admin" {
		t.Fatalf("weak authority: %v", ce)
	}
	// 35: composing a subscription.
	if _, ce := ingressCall(t, d, call.RootRequest{Operation: "c/top", Input: js(`"c/sub"`)}); ce == nil || ce.Code() != "INVALID_OPERATION_TYPE" || ce.Retryable() ||
		ce.Message() != "OperationEnv.Invoke called on a subscription op; composition is request/response-only" {
		t.Fatalf("compose a subscription: %v", ce)
	}
}

// Checklist 50, 51, 70: resolution order, overlays and capabilities of imported leaves.
func TestLayers(t *testing.T) {
	sessionEnv := &fakeSession{names: map[string]string{"x/peerdup": "session", "x/coreonly": "session"}}
	composer := queryOp("l/compose", func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		var req struct {
			Op, Peer string
		}
		_ = json.Unmarshal(in, &req)
		if req.Peer != "" {
			return oc.Env.InvokePeer(ctx, oc, call.PeerRef{Peer: req.Peer}, req.Op, nil, call.AbortDependents)
		}
		spec, _ := oc.Env.Spec(req.Op)
		out, err := oc.Env.Invoke(ctx, oc, req.Op, nil)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"out": json.RawMessage(out), "spec_desc": spec.Description})
	})
	scope := call.NewScopedEnv("x/shared", "x/coreonly", "x/imported", "x/peerdup")
	scope.AllowSessionOps = true
	composer.ScopedEnv = &scope
	composer.Authority = &call.CompositionAuthority{Label: "composer"}
	composer.Capabilities = core.NewCapabilities(map[string][]byte{"api_key:x": []byte("parent-key")})
	coreShared := constOp("x/shared", `"core"`)
	coreShared.Spec.Description = "core"
	coreOnly := constOp("x/coreonly", `"core"`)
	d := buildDispatcher(t, nodeOpts{regs: []call.HandlerRegistration{composer, coreShared, coreOnly}, dopts: call.Options{Sessions: sessionEnv}}, nil)

	// A connection with identity "peer-1" and an imported leaf bound to its own capability.
	imported := queryOp("x/imported", func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		v, _ := oc.Capabilities.Get("api_key:x")
		return json.Marshal(string(v))
	})
	imported.Spec.Visibility = call.VisibilityInternal
	imported.Spec.Description = "imported"
	imported.Provenance = call.ProvenanceFromCall
	imported.Capabilities = core.NewCapabilities(map[string][]byte{"api_key:x": []byte("import-key")})
	peerDup := constOp("x/peerdup", `"peer"`)
	peerDup.Spec.Visibility = call.VisibilityInternal
	peerDup.Provenance = call.ProvenanceFromCall
	importedShared := constOp("x/shared", `"peer"`)
	importedShared.Spec.Visibility = call.VisibilityInternal
	importedShared.Provenance = call.ProvenanceFromCall
	importedShared.Spec.Description = "peer"

	run := func(c *call.Conn, in string) (string, *call.Error) {
		t.Helper()
		out, err := c.Call(tctx(t), "l/compose", js(in))
		var ce *call.Error
		errors.As(err, &ce)
		return string(out), ce
	}
	withID, server := connPair(t, d, &core.Identity{ID: "peer-1"})
	if err := server.Import([]call.HandlerRegistration{imported, importedShared, peerDup}); err != nil {
		t.Fatal(err)
	}
	// session → peers → core: the session shadows a peer, but never a core name.
	sessionEnv.setActive(true)
	if out, ce := run(withID, `{"Op":"x/peerdup"}`); ce != nil || out != `{"out":"session","spec_desc":""}` {
		t.Fatalf("session first: %s %v", out, ce)
	}
	if out, ce := run(withID, `{"Op":"x/coreonly"}`); ce != nil || out != `{"out":"core","spec_desc":""}` {
		t.Fatalf("a session shadowed a core name: %s %v", out, ce)
	}
	sessionEnv.setActive(false)
	if out, ce := run(withID, `{"Op":"x/peerdup"}`); ce != nil || out != `{"out":"peer","spec_desc":""}` {
		t.Fatalf("peer after the session: %s %v", out, ce)
	}
	if out, ce := run(withID, `{"Op":"x/shared"}`); ce != nil || out != `{"out":"peer","spec_desc":"peer"}` {
		t.Fatalf("peer before core: %s %v", out, ce)
	}
	// An imported leaf runs with its import's capability, not its parent's.
	if out, ce := run(withID, `{"Op":"x/imported"}`); ce != nil || out != `{"out":"import-key","spec_desc":"imported"}` {
		t.Fatalf("imported leaf: %s %v", out, ce)
	}
	// InvokePeer(p) uses only p's overlay: no fall-through to core.
	if _, ce := run(withID, `{"Op":"x/coreonly","Peer":"peer-1"}`); ce == nil || ce.Code() != "NOT_FOUND" {
		t.Fatalf("InvokePeer fell through: %v", ce)
	}
	// 51: a connection without identity attaches no overlay.
	anon, anonServer := connPair(t, d, nil)
	_ = anonServer.Import([]call.HandlerRegistration{imported})
	if _, ce := run(anon, `{"Op":"x/imported"}`); ce == nil || ce.Code() != "NOT_FOUND" {
		t.Fatalf("overlay attached without identity: %v", ce)
	}
	// Imported operations are never reachable from the wire.
	if _, err := withID.Call(tctx(t), "x/imported", nil); err == nil {
		t.Fatal("an imported op was reachable from the wire")
	}
}

// fakeSession is a session overlay that resolves the names it holds while active.
type fakeSession struct {
	mu     sync.Mutex
	active bool
	names  map[string]string
}

func (f *fakeSession) setActive(v bool) {
	f.mu.Lock()
	f.active = v
	f.mu.Unlock()
}

func (f *fakeSession) OverlayFor(context.Context, *call.OperationContext) call.OperationEnv {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active {
		return nil
	}
	return f
}
func (f *fakeSession) Invoke(ctx context.Context, p *call.OperationContext, n string, in json.RawMessage) (json.RawMessage, error) {
	return f.InvokeWithPolicy(ctx, p, n, in, p.AbortPolicy)
}
func (f *fakeSession) InvokeWithPolicy(_ context.Context, _ *call.OperationContext, n string, _ json.RawMessage, _ call.AbortPolicy) (json.RawMessage, error) {
	return json.Marshal(f.names[n])
}
func (f *fakeSession) InvokePeer(ctx context.Context, p *call.OperationContext, _ call.PeerRef, n string, in json.RawMessage, pol call.AbortPolicy) (json.RawMessage, error) {
	return f.InvokeWithPolicy(ctx, p, n, in, pol)
}
func (f *fakeSession) Contains(n string) bool                     { _, ok := f.names[n]; return ok }
func (f *fakeSession) PeerContains(_ call.PeerRef, n string) bool { return f.Contains(n) }
func (f *fakeSession) Spec(string) (call.OperationSpec, bool)     { return call.OperationSpec{}, false }
func (f *fakeSession) PeerIDs() []string                          { return nil }
func (f *fakeSession) PeerOperations(string) []call.OperationSpec { return nil }

// connPair returns a client Conn talking over a pipe to a server Conn serving d, whose
// connection identity is id (nil: none).
func connPair(t *testing.T, d *call.Dispatcher, id *core.Identity) (cli, srv *call.Conn) {
	t.Helper()
	a, b := pipe()
	if id != nil {
		if err := a.SetIdentity(*id); err != nil {
			t.Fatal(err)
		}
	}
	srv = call.NewConn(a, d, call.ConnOptions{})
	cli = call.NewConn(b, nil, call.ConnOptions{})
	done := make(chan struct{}, 2)
	go func() { _ = srv.Run(context.Background()); done <- struct{}{} }()
	go func() { _ = cli.Run(context.Background()); done <- struct{}{} }()
	t.Cleanup(func() {
		_ = a.Close(0, "")
		<-done
		<-done
	})
	return cli, srv
}

// Checklist 70 (ChildContext options can remove a capability, never add one).
func TestChildContextCapabilities(t *testing.T) {
	parent := &call.OperationContext{RequestID: "p", Capabilities: core.NewCapabilities(map[string][]byte{"a": []byte("1"), "b": []byte("2")})}
	reg, err := call.NewRegistration(constOp("z/z", `1`))
	if err != nil {
		t.Fatal(err)
	}
	child := call.ChildContext(parent, reg, call.AbortDependents, call.WithoutCapabilities("a"))
	if names := child.Capabilities.Names(); len(names) != 1 || names[0] != "b" {
		t.Fatalf("child capabilities %v", names)
	}
	if names := parent.Capabilities.Names(); len(names) != 2 {
		t.Fatal("removing from the child changed the parent")
	}
}
