package call_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/identity"

	"github.com/alkdev/alknet/call/internal/wire"
)

const testToken = "alk_test-token-do-not-use-000000000000000000"

// whoami reports the identity and forwarded_for a handler sees.
func whoami() call.HandlerRegistration {
	r := queryOp("id/whoami", func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		out := map[string]any{"id": nil, "forwarded_for": nil}
		if oc.Identity != nil {
			out["id"] = oc.Identity.ID
		}
		if oc.ForwardedFor != nil {
			out["forwarded_for"] = oc.ForwardedFor.ID
		}
		return json.Marshal(out)
	})
	return r
}

// Checklist 43, 44: auth_token per request, forwarded_for never used for access.
func TestRequestIdentity(t *testing.T) {
	clientKey, _ := identity.Generate()
	admin := constOp("id/admin", `"ok"`)
	admin.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{whoami(), admin}, dynamic: config.DynamicConfig{
		Peers:   []auth.PeerEntry{{PeerID: "alice", Fingerprints: []string{clientKey.Fingerprint()}, Scopes: []string{"user"}, Enabled: true}},
		APIKeys: []auth.APIKeyEntry{{Prefix: "alk_test", Hash: auth.HashToken(testToken), Scopes: []string{"admin"}}},
	}})
	for _, tr := range transports {
		c := n.dial(t, tr, clientKey, nil, call.ConnOptions{})
		ctx := tctx(t)
		who := func(opts ...call.CallOption) string {
			out, err := c.Call(ctx, "id/whoami", nil, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
		if got := who(); got != `{"forwarded_for":null,"id":"alice"}` {
			t.Fatalf("%s connection identity: %s", tr, got)
		}
		if got := who(call.WithAuthToken(testToken)); got != `{"forwarded_for":null,"id":"alk_test"}` {
			t.Fatalf("%s token identity: %s", tr, got)
		}
		// The token identity lasted one request only.
		if got := who(); got != `{"forwarded_for":null,"id":"alice"}` {
			t.Fatalf("%s after a token request: %s", tr, got)
		}
		if got := who(call.WithAuthToken("alk_nope-wrong")); got != `{"forwarded_for":null,"id":"alice"}` {
			t.Fatalf("%s invalid token must fall back: %s", tr, got)
		}
		// forwarded_for reaches the handler but never grants anything.
		fwd := &core.Identity{ID: "root", Scopes: []string{"admin"}}
		if got := who(call.WithForwardedFor(fwd)); got != `{"forwarded_for":"root","id":"alice"}` {
			t.Fatalf("%s forwarded_for: %s", tr, got)
		}
		_, err := c.Call(ctx, "id/admin", nil, call.WithForwardedFor(fwd))
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Message() != "missing required scope: admin" {
			t.Fatalf("%s forwarded_for granted access: %v", tr, err)
		}
		if _, err := c.Call(ctx, "id/admin", nil, call.WithAuthToken(testToken)); err != nil {
			t.Fatalf("%s admin token: %v", tr, err)
		}
	}
	// A malformed forwarded_for is dropped.
	st := openRaw(t, n.rawConn(t, "quic"))
	st.send(wire.EventRequested, "f", map[string]any{"operationId": "/id/whoami", "input": nil, "forwarded_for": map[string]any{"scopes": "nope"}})
	if e := st.mustNext(); string(e.Payload) != `{"output":{"forwarded_for":null,"id":null}}` {
		t.Fatalf("malformed forwarded_for: %s", e.Payload)
	}
}

// Checklist 61, 62.
func TestDiscovery(t *testing.T) {
	secret := constOp("disc/admin", `1`)
	secret.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	hidden := constOp("disc/internal", `1`)
	hidden.Spec.Visibility = call.VisibilityInternal
	d := buildDispatcher(t, nodeOpts{regs: append(demoRegs(), secret, hidden)}, nil)
	list := func(id *core.Identity) string {
		out, ce := ingressCall(t, d, call.RootRequest{Operation: "services/list", Input: js(`{}`), ConnIdentity: id})
		if ce != nil {
			t.Fatal(ce)
		}
		return string(out)
	}
	anon := list(nil)
	if strings.Contains(anon, "disc/admin") || strings.Contains(anon, "disc/internal") ||
		!strings.HasPrefix(anon, `{"operations":[{"name":"demo/add","namespace":"demo","op_type":"query"},`) {
		t.Fatalf("anonymous list: %s", anon)
	}
	if adm := list(&core.Identity{ID: "a", Scopes: []string{"admin"}}); !strings.Contains(adm, `{"name":"disc/admin","namespace":"disc","op_type":"query"}`) || strings.Contains(adm, "disc/internal") {
		t.Fatalf("admin list: %s", adm)
	}
	schema := func(in string, id *core.Identity) (string, *call.Error) {
		out, ce := ingressCall(t, d, call.RootRequest{Operation: "services/schema", Input: js(in), ConnIdentity: id})
		return string(out), ce
	}
	if _, ce := schema(`{}`, nil); ce == nil || ce.Code() != "INVALID_INPUT" || ce.Message() != "missing required field: name" {
		t.Fatalf("no name: %v", ce)
	}
	if _, ce := schema(`{"name":5}`, nil); ce == nil || ce.Code() != "INVALID_INPUT" {
		t.Fatalf("bad name: %v", ce)
	}
	for _, name := range []string{"disc/internal", "nope/nope", "disc/admin"} {
		if _, ce := schema(fmt.Sprintf(`{"name":%q}`, name), nil); ce == nil || ce.Code() != "NOT_FOUND" || ce.Message() != "operation not found: "+name {
			t.Fatalf("%s: %v", name, ce)
		}
	}
	out, ce := schema(`{"name":"/demo/sleep"}`, nil)
	if ce != nil {
		t.Fatal(ce)
	}
	want := `{"name":"demo/sleep","namespace":"demo","description":"Wait ms milliseconds (absent: until the call's context ends).","op_type":"query","visibility":"external",` +
		`"input_schema":{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},"additionalProperties":false},` +
		`"output_schema":{"type":"object","properties":{"slept_ms":{"type":"integer"}},"required":["slept_ms"],"additionalProperties":false},` +
		`"error_schemas":[],"access_control":{"required_scopes":[],"required_scopes_any":null,"resource_type":null,"resource_action":null}}`
	if out != want {
		t.Fatalf("schema\n got %s\nwant %s", out, want)
	}
	out, _ = schema(`{"name":"services/list"}`, nil)
	if !strings.Contains(out, `"input_schema":{}`) {
		t.Fatalf("services/list schema: %s", out)
	}
}

// Checklist 64, 65.
func TestCallLimits(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	limStarted := make(chan string, 8)
	block := blockOp("lim/block", limStarted, release)
	huge := queryOp("lim/huge", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(strings.Repeat("x", 4096))
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{block, huge}, cfg: call.Limits{MaxInFlight: 2, MaxFrameSize: 2048}})
	st := openRaw(t, n.rawConn(t, "tcp"))
	st.request("b1", "/lim/block", nil)
	st.request("b2", "/lim/block", nil)
	st.request("b3", "/lim/block", nil)
	if e := st.mustNext(); e.ID != "b3" || string(e.Payload) != `{"code":"INTERNAL","message":"too many in-flight requests","retryable":true}` {
		t.Fatalf("over MaxInFlight: %+v %s", e, e.Payload)
	}
	q := openRaw(t, n.rawConn(t, "quic"))
	q.request("h", "/lim/huge", nil)
	if e := q.mustNext(); string(e.Payload) != `{"code":"INTERNAL","message":"response exceeds maximum frame size","retryable":false}` {
		t.Fatalf("oversized response: %s", e.Payload)
	}
	// Outgoing: MaxPending.
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{MaxPending: 1})
	ctx := tctx(t)
	for len(limStarted) > 0 { // the wire requests above
		<-limStarted
	}
	go func() { _, _ = c.Call(ctx, "lim/block", nil) }()
	<-limStarted // the first call is pending (its handler runs)
	_, err := c.Call(ctx, "lim/block", nil)
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Message() != "too many pending requests" || !ce.Retryable() {
		t.Fatalf("over MaxPending: %v", err)
	}
	// A request over the frame limit fails locally.
	c2 := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
	_, err = c2.Call(ctx, "lim/block", js(`"`+strings.Repeat("y", overDefaultFrameSize)+`"`))
	if !errors.Is(err, call.ErrInternal) || !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("oversized request: %v", err)
	}
}

// Checklist 36: an unknown code is INTERNAL, not retryable, with the original code kept.
func TestUnknownRemoteCode(t *testing.T) {
	weird := queryOp("x/weird", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return nil, call.NewError("QUOTA", "over").WithRetryable(true)
	})
	weird.Spec.ErrorSchemas = []call.ErrorDefinition{{Code: "QUOTA"}}
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{weird}})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	_, err := c.Call(tctx(t), "x/weird", nil)
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || ce.Retryable() || ce.OriginalCode() != "QUOTA" {
		t.Fatalf("unknown code: %+v", ce)
	}
	_, err = c.Call(tctx(t), "x/weird", nil, call.WithKnownCodes("QUOTA"))
	if !errors.As(err, &ce) || ce.Code() != "QUOTA" || !ce.Retryable() {
		t.Fatalf("known code: %+v", ce)
	}
}

// Checklist 66: logs never show an auth_token past its prefix; capabilities never print.
func TestSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	caps := core.NewCapabilities(map[string][]byte{"api_key:svc": []byte("sk-very-secret")})
	leaky := queryOp("s/leaky", func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		return nil, fmt.Errorf("failed with %v", oc.Capabilities)
	})
	leaky.Capabilities = caps
	d := buildDispatcher(t, nodeOpts{regs: []call.HandlerRegistration{leaky}, dopts: call.Options{Logger: log}}, nil)
	cli, _ := connPair(t, d, nil)
	_, err := cli.Call(tctx(t), "s/leaky", nil, call.WithAuthToken(testToken))
	if err == nil {
		t.Fatal("expected an error")
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	if strings.Contains(text, "sk-very-secret") || strings.Contains(text, testToken) || strings.Contains(err.Error(), "sk-very-secret") {
		t.Fatalf("a secret leaked:\n%s\n%v", text, err)
	}
	if !strings.Contains(text, "[REDACTED]") {
		t.Fatalf("the handler error was not logged: %s", text)
	}
	if _, err := json.Marshal(caps); err == nil {
		t.Fatal("capabilities marshalled")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Checklist 68: the ingress gives the wire's outcomes, and cancelling its ctx cascades.
func TestIngress(t *testing.T) {
	hidden := constOp("in/hidden", `1`)
	hidden.Spec.Visibility = call.VisibilityInternal
	admin := constOp("in/admin", `1`)
	admin.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	slow := queryOp("in/slow", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		time.Sleep(500 * time.Millisecond)
		return js(`1`), nil
	})
	var d call.Ingress = buildDispatcher(t, nodeOpts{regs: append(demoRegs(), hidden, admin, slow), cfg: call.Limits{RequestTimeout: 100 * time.Millisecond}}, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		op, in, code string
	}{
		{"in/hidden", `{}`, "NOT_FOUND"},
		{"in/admin", `{}`, "FORBIDDEN"},
		{"demo/echo", `{}`, "INVALID_INPUT"},
		{"in/slow", `{}`, "TIMEOUT"},
	} {
		_, err := d.Call(ctx, call.RootRequest{Operation: tc.op, Input: js(tc.in), Ingress: "test"})
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != tc.code {
			t.Fatalf("%s: %v, want %s", tc.op, err, tc.code)
		}
		err = d.Subscribe(ctx, call.RootRequest{Operation: tc.op, Input: js(tc.in)}, func(json.RawMessage) error { return nil })
		if !errors.As(err, &ce) || (tc.code != "TIMEOUT" && ce.Code() != tc.code) {
			t.Fatalf("subscribe %s: %v", tc.op, err)
		}
	}
	// Cancelling ctx aborts the subscription with cascade.
	sctx, cancel := context.WithCancel(ctx)
	var items int
	err := d.Subscribe(sctx, call.RootRequest{Operation: "demo/ticker", Input: js(`{"count":0,"interval_ms":1}`)}, func(json.RawMessage) error {
		items++
		if items == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, call.ErrAborted) {
		t.Fatalf("cancelled subscription: %v", err)
	}
	out, err := d.Call(ctx, call.RootRequest{Operation: "demo/echo", Input: js(`{"text":"in"}`)})
	if err != nil || string(out) != `{"text":"in"}` {
		t.Fatalf("%s %v", out, err)
	}
	if vis := d.Visible(ctx, nil); len(vis) == 0 || vis[0].Name != "demo/add" {
		t.Fatalf("Visible: %v", vis)
	}
}

// overDefaultFrameSize reaches the client's default 16 MiB frame limit.
const overDefaultFrameSize = call.DefaultMaxFrameSize
