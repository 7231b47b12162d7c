package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
)

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
