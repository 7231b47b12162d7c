package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/internal/wire"
	"github.com/alkdev/alknet/core"
)

func queryOp(name string, fn call.Handler) call.HandlerRegistration {
	return call.HandlerRegistration{Spec: call.OperationSpec{Name: name, Type: call.OpQuery, Visibility: call.VisibilityExternal}, Handler: fn}
}

func constOp(name, out string) call.HandlerRegistration {
	return queryOp(name, func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return js(out), nil
	})
}

// Checklist 31.
func TestRegistryValidation(t *testing.T) {
	ok := constOp("a/b", `1`)
	tests := []struct {
		name string
		reg  call.HandlerRegistration
		want string
	}{
		{"kind mismatch", call.HandlerRegistration{Spec: call.OperationSpec{Name: "a/c", Type: call.OpSubscription, Visibility: call.VisibilityExternal}, Handler: ok.Handler}, "handler kind mismatch"},
		{"kind mismatch query", call.HandlerRegistration{Spec: call.OperationSpec{Name: "a/d", Type: call.OpQuery, Visibility: call.VisibilityExternal}}, "handler kind mismatch"},
		{"bad schema", call.HandlerRegistration{Spec: call.OperationSpec{Name: "a/e", Type: call.OpQuery, Visibility: call.VisibilityExternal, InputSchema: js(`{"type":"nope"}`)}, Handler: ok.Handler}, "input_schema"},
		{"external ref", call.HandlerRegistration{Spec: call.OperationSpec{Name: "a/f", Type: call.OpQuery, Visibility: call.VisibilityExternal, InputSchema: js(`{"$ref":"https://example.com/s.json"}`)}, Handler: ok.Handler}, "input_schema"},
		{"bad name", constOp("/a/b", `1`), "invalid name"},
		{"empty segment", constOp("a//b", `1`), "invalid name"},
		{"leaf with authority", call.HandlerRegistration{Spec: ok.Spec, Handler: ok.Handler, Provenance: call.ProvenanceFromCall, Authority: &call.CompositionAuthority{Label: "x"}}, "leaf"},
		{"external session op", call.HandlerRegistration{Spec: ok.Spec, Handler: ok.Handler, Provenance: call.ProvenanceSession}, "internal"},
		{"empty scopes any", call.HandlerRegistration{Spec: call.OperationSpec{Name: "a/g", Type: call.OpQuery, Visibility: call.VisibilityExternal, AccessControl: call.AccessControl{RequiredScopesAny: []string{}}}, Handler: ok.Handler}, "required_scopes_any"},
		{"protocol code as domain code", call.HandlerRegistration{Spec: call.OperationSpec{Name: "a/h", Type: call.OpQuery, Visibility: call.VisibilityExternal, ErrorSchemas: []call.ErrorDefinition{{Code: "NOT_FOUND"}}}, Handler: ok.Handler}, "protocol code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := call.NewRegistryBuilder()
			err := b.Register(tt.reg)
			if !errors.Is(err, call.ErrRegistration) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register: %v, want %q", err, tt.want)
			}
			if r, err := b.Build(); r != nil || err == nil {
				t.Fatal("Build succeeded after a failed Register")
			}
		})
	}
	b := call.NewRegistryBuilder()
	_ = b.Register(ok)
	if err := b.Register(ok); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := b.Build(); err == nil {
		t.Fatal("Build with a duplicate succeeded")
	}
}

// callErr runs op through the in-process ingress and returns its Error (nil on success).
func ingressCall(t *testing.T, d *call.Dispatcher, r call.RootRequest) (json.RawMessage, *call.Error) {
	t.Helper()
	out, err := d.Call(context.Background(), r)
	if err == nil {
		return out, nil
	}
	var ce *call.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *Error", err)
	}
	return nil, ce
}

// Checklist 28, 29, 30, 32, 33, 34, 37, 45.
func TestErrorMapping(t *testing.T) {
	var ran atomic.Int32
	count := func(fn call.Handler) call.Handler {
		return func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			ran.Add(1)
			return fn(ctx, oc, in)
		}
	}
	internal := constOp("t/internal", `1`)
	internal.Spec.Visibility = call.VisibilityInternal
	internal.Handler = count(internal.Handler)
	strict := queryOp("t/strict", count(func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		return in, nil
	}))
	strict.Spec.InputSchema = js(`{"type":"integer"}`)
	domain := queryOp("t/domain", func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		var code string
		_ = json.Unmarshal(in, &code)
		return nil, call.NewError(code, "domain failure").WithDetails(js(`{"k":1}`))
	})
	domain.Spec.ErrorSchemas = []call.ErrorDefinition{{Code: "QUOTA_EXCEEDED", Description: "over quota", Schema: js(`{"type":"object"}`)}}
	panics := queryOp("t/panic", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) { panic("boom") })
	plain := queryOp("t/plain", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return nil, errors.New("secret database password in this text")
	})
	badOut := queryOp("t/badout", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return js(`"str"`), nil
	})
	badOut.Spec.OutputSchema = js(`{"type":"integer"}`)
	admin := constOp("t/admin", `1`)
	admin.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	admin.Handler = count(admin.Handler)
	d := buildDispatcher(t, nodeOpts{regs: []call.HandlerRegistration{internal, strict, domain, panics, plain, badOut, admin}, cfg: call.Limits{ValidateOutputs: true}}, nil)

	check := func(name string, r call.RootRequest, code, msg string) *call.Error {
		t.Helper()
		_, ce := ingressCall(t, d, r)
		if ce == nil || ce.Code() != code || (msg != "" && ce.Message() != msg) {
			t.Fatalf("%s: %v, want %s %q", name, ce, code, msg)
		}
		return ce
	}
	check("internal op from the outside", call.RootRequest{Operation: "t/internal"}, "NOT_FOUND", "operation not found: t/internal")
	check("schema violation", call.RootRequest{Operation: "t/strict", Input: js(`"x"`)}, "INVALID_INPUT", "")
	if ran.Load() != 0 {
		t.Fatal("a handler ran for a refused call")
	}
	// 30: a number beyond float64 precision passes {"type":"integer"} and reaches the handler unchanged.
	out, ce := ingressCall(t, d, call.RootRequest{Operation: "t/strict", Input: js(`18446744073709551617`)})
	if ce != nil || string(out) != "18446744073709551617" {
		t.Fatalf("big integer: %s %v", out, ce)
	}
	// 32: declared domain code passes with details; undeclared becomes INTERNAL with original_code.
	ce = check("declared", call.RootRequest{Operation: "t/domain", Input: js(`"QUOTA_EXCEEDED"`)}, "QUOTA_EXCEEDED", "domain failure")
	if string(ce.Details()) != `{"k":1}` {
		t.Fatalf("details %s", ce.Details())
	}
	ce = check("undeclared", call.RootRequest{Operation: "t/domain", Input: js(`"WHATEVER"`)}, "INTERNAL", "domain failure")
	if string(ce.Details()) != `{"original_code":"WHATEVER","original_details":{"k":1}}` || ce.Retryable() {
		t.Fatalf("undeclared details %s", ce.Details())
	}
	check("panic", call.RootRequest{Operation: "t/panic"}, "INTERNAL", "internal error")
	ce = check("plain error", call.RootRequest{Operation: "t/plain"}, "INTERNAL", "internal error")
	if strings.Contains(ce.Error(), "password") || len(ce.Details()) != 0 {
		t.Fatal("a plain error's text was sent")
	}
	check("output schema", call.RootRequest{Operation: "t/badout"}, "INTERNAL", "output does not match schema")
	check("forbidden", call.RootRequest{Operation: "t/admin"}, "FORBIDDEN", "authentication required")
	// docs/protocol.md §9.2: a refused token that leaves the caller anonymous says so.
	check("forbidden, refused token", call.RootRequest{Operation: "t/admin", AuthToken: "alk_nonsense0000"}, "FORBIDDEN", "unknown or revoked API key")
	if ran.Load() != 1 {
		t.Fatalf("handlers ran %d times, want only the big-integer call", ran.Load())
	}
}

// Checklist 38-42: access control messages, exactly.
func TestAccessControl(t *testing.T) {
	op := func(name string, ac call.AccessControl, path string) call.HandlerRegistration {
		r := constOp(name, `"ok"`)
		r.Spec.AccessControl = ac
		r.Spec.ResourceIDPath = path
		return r
	}
	regs := []call.HandlerRegistration{
		op("ac/open", call.AccessControl{}, ""),
		op("ac/admin", call.AccessControl{RequiredScopes: []string{"admin"}}, ""),
		op("ac/any", call.AccessControl{RequiredScopesAny: []string{"a", "b"}}, ""),
		op("ac/res", call.AccessControl{ResourceType: "doc", ResourceAction: "read"}, ""),
		op("ac/restype", call.AccessControl{ResourceType: "doc"}, ""),
		op("ac/action", call.AccessControl{ResourceAction: "write"}, ""),
		op("ac/owned", call.AccessControl{ResourceType: "container", ResourceAction: "exec"}, "$.containerId"),
	}
	own := &fakeOwnership{owner: map[string]string{"c1": "alice"}}
	// Static resources apply without an ownership provider; with one, it decides (§9.2.5).
	static := buildDispatcher(t, nodeOpts{regs: regs}, nil)
	owned := buildDispatcher(t, nodeOpts{regs: regs, dopts: call.Options{Ownership: own}}, nil)
	user := &core.Identity{ID: "bob", Scopes: []string{"user"}}
	c := &core.Identity{ID: "carol", Scopes: []string{"c"}, Resources: map[string][]string{"doc": {"write"}}}
	tests := []struct {
		op    string
		id    *core.Identity
		input string
		want  string // "" = allowed
	}{
		{"ac/open", nil, "", ""},
		{"ac/admin", nil, "", "authentication required"},
		{"ac/admin", user, "", "missing required scope: admin"},
		{"ac/any", c, "", "missing required scope (any of: a, b)"},
		{"ac/res", c, "", "missing resource: doc/read"},
		{"ac/restype", user, "", "missing resource: doc"},
		{"ac/restype", c, "", ""},
		{"ac/action", user, "", "missing resource action: write"},
		{"ac/action", c, "", ""},
		{"ac/owned", user, `{"containerId":"c1"}`, "not owner of resource: container/c1"},
		{"ac/owned", &core.Identity{ID: "alice"}, `{"containerId":"c1"}`, ""},
		{"ac/owned", user, `{}`, "no owned resources of type: container"},
		{"ac/owned", &core.Identity{ID: "alice"}, `{"containerId":5}`, ""}, // non-string id → OwnsAny
	}
	for _, tt := range tests {
		d := static
		if tt.op == "ac/owned" {
			d = owned
		}
		_, ce := ingressCall(t, d, call.RootRequest{Operation: tt.op, ConnIdentity: tt.id, Input: js(orEmpty(tt.input))})
		switch {
		case tt.want == "" && ce != nil:
			t.Errorf("%s as %v: %v", tt.op, tt.id, ce)
		case tt.want != "" && (ce == nil || ce.Code() != "FORBIDDEN" || ce.Message() != tt.want):
			t.Errorf("%s as %v: %v, want FORBIDDEN %q", tt.op, tt.id, ce, tt.want)
		}
	}
	if own.anyCalls.Load() == 0 {
		t.Fatal("OwnsAny was never asked")
	}
}

func orEmpty(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

type fakeOwnership struct {
	owner    map[string]string
	anyCalls atomic.Int32
}

func (f *fakeOwnership) Owns(_ context.Context, id *core.Identity, _, rid, _ string) (bool, error) {
	return id != nil && f.owner[rid] == id.ID, nil
}

func (f *fakeOwnership) OwnsAny(_ context.Context, id *core.Identity, _ string) (bool, error) {
	f.anyCalls.Add(1)
	for _, o := range f.owner {
		if id != nil && o == id.ID {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeOwnership) OwnedResources(context.Context, *core.Identity, string) ([]string, error) {
	return nil, nil
}

// Checklist 5: MaxFrameSize is settable from 1 KiB to the 64 MiB cap; more or less fails at
// start-up.
func TestConfigFrameSizeBounds(t *testing.T) {
	for _, max := range []int{call.MaxFrameSizeCap + 1, call.MinMaxFrameSize - 1} {
		if err := (call.Limits{MaxFrameSize: max}).Validate(); !errors.Is(err, call.ErrConfig) {
			t.Fatalf("MaxFrameSize %d accepted", max)
		}
	}
	if err := (call.Limits{MaxFrameSize: call.MaxFrameSizeCap}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// Checklist 12 (input): a request without input reaches the handler as null. Checklist 33 over
// the wire: a panic gives INTERNAL "internal error" and the connection keeps serving.
func TestNullInputAndPanic(t *testing.T) {
	got := queryOp("n/input", func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(string(in))
	})
	boom := queryOp("n/panic", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) { panic("boom") })
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{got, boom}})
	st := openRaw(t, n.rawConn(t, "quic"))
	st.send(wire.EventRequested, "1", map[string]any{"operationId": "/n/input"})
	if e := st.mustNext(); string(e.Payload) != `{"output":"null"}` {
		t.Fatalf("missing input: %s", e.Payload)
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := n.dial(t, tr, nil, nil, call.ConnOptions{})
			_, err := c.Call(tctx(t), "n/panic", nil)
			var ce *call.Error
			if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || ce.Message() != "internal error" {
				t.Fatalf("%s panic: %v", tr, err)
			}
			if _, err := c.Call(tctx(t), "n/input", js(`1`)); err != nil {
				t.Fatalf("%s after a panic: %v", tr, err)
			}
		})
	}
}
