package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/internal/wire"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/identity"
)

// composer is a hub operation that composes target through its env (forwarding checklist 8,
// 16, 26).
func composer(name, target string) call.HandlerRegistration {
	scope := call.NewScopedEnv(target)
	return call.HandlerRegistration{
		Spec:      call.OperationSpec{Name: name, Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Authority: &call.CompositionAuthority{Label: name, Scopes: []string{"read"}},
		ScopedEnv: &scope,
		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			return oc.Env.Invoke(ctx, oc, target, in)
		},
	}
}

// Forwarding checklist 8, 16, 26: a core operation composes an Internal import for an
// anonymous caller on another connection; two levels below the root the forwarder still sends
// the end caller as forwarded_for; composing an imported subscription is refused.
func TestPeerSetComposition(t *testing.T) {
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.clientKey, _ = identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: hw.seen.ops(), dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{
		{PeerID: "hub", Fingerprints: []string{hubKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}}}})
	inner := composer("hub/inner", "w1/test/whoami")
	inner.Spec.Visibility = call.VisibilityInternal
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set, regs: []call.HandlerRegistration{
		composer("hub/echo", "w1/demo/echo"), composer("hub/outer", "hub/inner"), inner, composer("hub/ticker", "w1/demo/ticker")},
		dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{{PeerID: "alice", Fingerprints: []string{hw.clientKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}}}})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1"}) // Internal imports
	if got := hw.set.IDs(); !slices.Equal(got, []string{"w1"}) {
		t.Fatalf("IDs %v", got)
	}
	anon := hw.hub.dial(t, "tcp", nil, nil, call.ConnOptions{})
	if out, err := anon.Call(tctx(t), "hub/echo", js(`{"text":"via the set"}`)); err != nil || string(out) != `{"text":"via the set"}` {
		t.Fatalf("a core op composing an import: %s %v", out, err)
	}
	alice := hw.hub.dial(t, "quic", hw.clientKey, nil, call.ConnOptions{})
	// A client's own forwarded_for claim never reaches the worker: the hub sends its Origin.
	mallory := &core.Identity{ID: "mallory", Scopes: []string{"admin"}}
	if _, err := alice.Call(tctx(t), "hub/outer", nil, call.WithForwardedFor(mallory)); err != nil {
		t.Fatal(err)
	}
	hw.seen.mu.Lock()
	ff := hw.seen.forwardedFor
	hw.seen.mu.Unlock()
	if ff != "alice" {
		t.Fatalf("two levels below the root the worker saw forwarded_for %q, want alice", ff)
	}
	if _, err := alice.Call(tctx(t), "hub/ticker", nil); !errors.Is(err, call.ErrInvalidOperationType) {
		t.Fatalf("composing an imported subscription: %v", err)
	}
}

// Forwarding checklist 9, 7: re-attaching an id replaces in place, an older Conn's end keeps
// the newer layer, a Conn's end detaches its own; a refresh of an unchanged catalogue reuses
// every registration; the set refuses more than MaxPeerSetOperations.
func TestPeerSetAttachDetach(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	c1, res1 := hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	c2, _ := hw.link(t, "tcp", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	if got := hw.set.IDs(); !slices.Equal(got, []string{"w1"}) {
		t.Fatalf("re-attach: %v", got)
	}
	_ = c1.Close()
	client := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	if _, err := client.Call(tctx(t), "w1/demo/echo", js(`{"text":"x"}`)); err != nil {
		t.Fatalf("the older link's end removed the newer layer: %v", err)
	}
	// Refresh: nothing changed, every registration is the previous one.
	res2, err := call.ImportFrom(tctx(t), c2, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true, Previous: &res1})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res2.Registrations {
		if reflect.ValueOf(r.Handler).Pointer() != reflect.ValueOf(res1.Registrations[i].Handler).Pointer() &&
			reflect.ValueOf(r.Stream).Pointer() != reflect.ValueOf(res1.Registrations[i].Stream).Pointer() {
			t.Fatalf("%s was rebuilt on an unchanged refresh", r.Spec.Name)
		}
	}
	// Past MaxPeerSetOperations: refused, nothing changed.
	many := make([]call.HandlerRegistration, call.MaxPeerSetOperations+1)
	for i := range many {
		many[i] = constOp(fmt.Sprintf("x/op%d", i), `1`)
		many[i].Provenance = call.ProvenanceFromCall
	}
	if err := c2.ReplaceImports(many); !errors.Is(err, call.ErrPeerSetFull) {
		t.Fatalf("peer set full: %v", err)
	}
	if _, err := client.Call(tctx(t), "w1/demo/echo", js(`{"text":"x"}`)); err != nil {
		t.Fatalf("a refused replace changed the set: %v", err)
	}
	_ = c2.Close()
	deadline := time.Now().Add(time.Second)
	for len(hw.set.IDs()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a closed link's layer was not detached within 1 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Forwarding checklist 13: services/list past MaxFrameSize/2 comes in pages; ImportFrom reads them all.
func TestListPaging(t *testing.T) {
	var regs []call.HandlerRegistration
	for i := range 60 {
		regs = append(regs, constOp(fmt.Sprintf("page/op%02d", i), `1`))
	}
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: regs, cfg: call.Limits{MaxFrameSize: 4096}})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set})
	c := hw.worker.dial(t, "quic", nil, nil, call.ConnOptions{})
	page, err := c.Call(tctx(t), call.OpServicesList, js(`{}`))
	if err != nil || !strings.Contains(string(page), `"next":"`) || len(page) > 4096/2 {
		t.Fatalf("first page (%d bytes): %s %v", len(page), page, err)
	}
	_, res := hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1"})
	if n := len(res.Registrations); n != 60 {
		t.Fatalf("imported %d of 60 paged operations", n)
	}
}

// Forwarding checklist 17, 27: the auth_token comes from the import's capability; one caller
// past MaxPending/4 forwarded requests on a link is refused, another caller is not.
func TestForwardTokenAndPendingCap(t *testing.T) {
	token, entry, err := auth.NewAPIKey([]string{"x"}, "hub import", time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: hw.seen.ops(), dynamic: config.DynamicConfig{APIKeys: []auth.APIKeyEntry{entry}}})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set})
	caps := core.NewCapabilities(map[string][]byte{"token:w1": []byte(token)})
	link := hw.worker.dial(t, "quic", hw.hub.key, hw.hub.d, call.ConnOptions{MaxPending: 8})
	res, err := call.ImportFrom(tctx(t), link, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true,
		Capabilities: caps, AuthTokenCapability: "token:w1", AccessControl: &call.AccessControl{}}) // the hub lets anyone; the worker checks the token
	if err != nil {
		t.Fatal(err)
	}
	if err := link.ReplaceImports(res.Registrations); err != nil {
		t.Fatal(err)
	}
	if err := hw.set.Attach("w1", link); err != nil {
		t.Fatal(err)
	}
	c := hw.hub.dial(t, "quic", nil, nil, call.ConnOptions{})
	if out, err := c.Call(tctx(t), "w1/test/secret", nil); err != nil || string(out) != `"`+entry.Prefix+`"` {
		t.Fatalf("the import's token: %s %v", out, err)
	}
	// MaxPending 8 on the link: one caller may have 2 forwarded requests at a time.
	ctx, cancel := context.WithCancel(tctx(t))
	defer cancel()
	for range 2 {
		go func() { _, _ = c.Call(ctx, "w1/demo/sleep", js(`{}`)) }()
	}
	// Both sleeps are forwarded once the worker serves them.
	deadline := time.Now().Add(5 * time.Second)
	for hw.worker.d.InFlight() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker serves %d of the 2 sleeps", hw.worker.d.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = c.Call(tctx(t), "w1/demo/echo", js(`{"text":"x"}`))
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Message() != "peer w1: too many pending requests" || !ce.Retryable() {
		t.Fatalf("the third forwarded request of one caller: %v", err)
	}
	other := hw.hub.dial(t, "tcp", nil, nil, call.ConnOptions{})
	if _, err := other.Call(tctx(t), "w1/demo/echo", js(`{"text":"x"}`)); err != nil {
		t.Fatalf("another caller was refused too: %v", err)
	}
}

// Forwarding checklist 32: a request whose via already holds the forwarder's remote fails at
// the forwarder with the loop error; nothing reaches the remote.
func TestForwarderRefusesLoop(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	st := openRaw(t, hw.hub.rawConn(t, "quic"))
	st.send(wire.EventRequested, "loop1", map[string]any{"operationId": "/w1/test/whoami", "input": nil, "via": []string{hw.worker.key.Fingerprint()}})
	e := st.mustNext()
	if e.Type != wire.EventError || !strings.Contains(string(e.Payload), `"forwarding loop: `+hw.worker.key.Fingerprint()+` is already on the path"`) {
		t.Fatalf("%s %s", e.Type, e.Payload)
	}
	hw.seen.mu.Lock()
	defer hw.seen.mu.Unlock()
	if hw.seen.via != nil {
		t.Fatal("the looping request reached the worker")
	}
}

// Forwarding checklist 29, 30: a claim over a token-resolved identity is never trusted, even when
// that identity is listed; an import token that keeps failing at the worker never blocks the
// hub's address there (the link is a peer: failures count per connection).
func TestForwardTokenTrustAndFailures(t *testing.T) {
	token, entry, err := auth.NewAPIKey([]string{"x"}, "hub import", time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hw := &hubAndWorker{set: call.NewPeerSet(), seen: newSeen()}
	hubKey, _ := identity.Generate()
	hw.clientKey, _ = identity.Generate()
	hw.worker = startNode(t, nodeOpts{regs: hw.seen.ops(), cfg: call.Limits{TrustForwardedFor: []string{entry.Prefix, "hub"}},
		dynamic: config.DynamicConfig{APIKeys: []auth.APIKeyEntry{entry}, Peers: []auth.PeerEntry{
			{PeerID: "hub", Fingerprints: []string{hubKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}}}})
	hw.hub = startNodeWithKey(t, hubKey, nodeOpts{peers: hw.set, dynamic: config.DynamicConfig{Peers: []auth.PeerEntry{
		{PeerID: "alice", Fingerprints: []string{hw.clientKey.Fingerprint()}, Scopes: []string{"x"}, Enabled: true}}}})
	link := hw.worker.dial(t, "quic", hubKey, hw.hub.d, call.ConnOptions{})
	good := core.NewCapabilities(map[string][]byte{"token:w1": []byte(token)})
	res, err := call.ImportFrom(tctx(t), link, call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true,
		Capabilities: good, AuthTokenCapability: "token:w1", AccessControl: &call.AccessControl{}})
	if err == nil {
		err = link.ReplaceImports(res.Registrations)
	}
	if err == nil {
		err = hw.set.Attach("w1", link)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := hw.hub.dial(t, "quic", hw.clientKey, nil, call.ConnOptions{})
	if _, err := c.Call(tctx(t), "w1/test/whoami", nil); err != nil {
		t.Fatal(err)
	}
	hw.seen.mu.Lock()
	id, ff := hw.seen.identity, hw.seen.forwardedFor
	hw.seen.mu.Unlock()
	if id != entry.Prefix || ff != "alice" {
		t.Fatalf("a listed token identity was trusted: identity %q, forwarded_for %q", id, ff)
	}
	// A wrong token, again and again, on a second link of the hub's key.
	bad := core.NewCapabilities(map[string][]byte{"token:w1": []byte("alk_" + strings.Repeat("x", 40))})
	link2 := hw.worker.dial(t, "tcp", hubKey, hw.hub.d, call.ConnOptions{})
	for range 10 {
		_, _ = call.ImportFrom(tctx(t), link2, call.ImportConfig{Peer: "w1", Capabilities: bad, AuthTokenCapability: "token:w1"})
	}
	other := hw.worker.dial(t, "quic", nil, nil, call.ConnOptions{})
	if _, err := other.Call(tctx(t), call.OpServicesList, js(`{}`)); err != nil {
		t.Fatalf("the hub's address was blocked at the worker: %v", err)
	}
	if _, err := c.Call(tctx(t), "w1/test/whoami", nil); err != nil {
		t.Fatalf("the good link suffered from the bad one: %v", err)
	}
}

// docs/http.md §2.4: Generation and Changed follow attach, refresh and detach; RootSpecs and
// RootSpec see the exposed imports after the core operations.
func TestPeerSetGeneration(t *testing.T) {
	hw := startHubAndWorker(t, []string{"read"}, call.Limits{}, call.Limits{})
	g0, changed := hw.set.Generation(), hw.set.Changed()
	if _, ok := hw.hub.d.RootSpec("w1/demo/echo"); ok {
		t.Fatal("an import before any link")
	}
	c, res := hw.link(t, "quic", call.ImportConfig{Peer: "w1", Prefix: "w1", KeepRemoteVisibility: true})
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed at attach")
	}
	g1 := hw.set.Generation()
	if g1 <= g0 {
		t.Fatalf("generation %d after attach, was %d", g1, g0)
	}
	if spec, ok := hw.hub.d.RootSpec("w1/demo/echo"); !ok || spec.Name != "w1/demo/echo" {
		t.Fatalf("RootSpec(w1/demo/echo) = %v, %v", spec, ok)
	}
	specs := hw.hub.d.RootSpecs()
	last := specs[len(specs)-1]
	if !strings.HasPrefix(last.Name, "w1/") || strings.HasPrefix(specs[0].Name, "w1/") {
		t.Fatalf("RootSpecs order: %v first, %v last", specs[0].Name, last.Name)
	}
	if err := c.ReplaceImports(res.Registrations); err != nil {
		t.Fatal(err)
	}
	if g2 := hw.set.Generation(); g2 <= g1 {
		t.Fatalf("generation %d after ReplaceImports, was %d", g2, g1)
	}
	changed = hw.set.Changed()
	_ = c.Close()
	select {
	case <-changed:
	case <-time.After(2 * time.Second):
		t.Fatal("Changed not closed within 2 s of the link's end")
	}
	if _, ok := hw.hub.d.RootSpec("w1/demo/echo"); ok {
		t.Fatal("RootSpec still finds a detached import")
	}
}
