package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// docs/http.md §3.5.2, §3.6.1, §2.1.2: the ingress hooks front ends use.
func TestIngressHooks(t *testing.T) {
	admin := constOp("in/admin", `1`)
	admin.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	d := buildDispatcher(t, nodeOpts{regs: append(demoRegs(), admin), cfg: call.Limits{RequestTimeout: 10 * time.Second}}, nil)
	ctx := context.Background()
	code := func(err error) string {
		var ce *call.Error
		if errors.As(err, &ce) {
			return ce.Code()
		}
		return fmt.Sprint(err)
	}

	t.Run("Timeout bounds a call", func(t *testing.T) {
		start := time.Now()
		_, err := d.Call(ctx, call.RootRequest{Operation: "demo/sleep", Input: js(`{"ms":5000}`), Timeout: 100 * time.Millisecond})
		if code(err) != "TIMEOUT" || time.Since(start) > 1100*time.Millisecond {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
	})
	t.Run("Timeout bounds a subscription", func(t *testing.T) {
		err := d.Subscribe(ctx, call.RootRequest{Operation: "demo/ticker", Input: js(`{"count":0,"interval_ms":10}`), Timeout: 100 * time.Millisecond},
			func(json.RawMessage) error { return nil })
		if code(err) != "TIMEOUT" {
			t.Fatal(err)
		}
	})
	t.Run("the front end's deadline is TIMEOUT", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := d.Call(dctx, call.RootRequest{Operation: "demo/sleep", Input: js(`{"ms":5000}`)})
		if code(err) != "TIMEOUT" {
			t.Fatal(err)
		}
	})
	t.Run("OnStart after the checks only", func(t *testing.T) {
		started := 0
		onStart := func() { started++ }
		_, _ = d.Call(ctx, call.RootRequest{Operation: "demo/add", Input: js(`{"a":"x"}`), OnStart: onStart})
		_ = d.Subscribe(ctx, call.RootRequest{Operation: "nope", OnStart: onStart}, func(json.RawMessage) error { return nil })
		if started != 0 {
			t.Fatalf("OnStart ran %d times for failed checks", started)
		}
		var items int
		err := d.Subscribe(ctx, call.RootRequest{Operation: "demo/ticker", Input: js(`{"count":2,"interval_ms":1}`), OnStart: func() {
			if items != 0 {
				t.Error("OnStart after an item")
			}
			started++
		}}, func(json.RawMessage) error { items++; return nil })
		if err != nil || started != 1 || items != 2 {
			t.Fatalf("%v started=%d items=%d", err, started, items)
		}
	})
	t.Run("TokenRejected names the key", func(t *testing.T) {
		_, err := d.Call(ctx, call.RootRequest{Operation: "in/admin", TokenRejected: true})
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != "FORBIDDEN" || ce.Message() != "unknown or revoked API key" {
			t.Fatal(err)
		}
	})
}

// docs/http.md §3.2: ingress roots take node-wide in-flight slots; front ends hold body bytes
// in the node-wide partial-frame budget.
func TestIngressBudgets(t *testing.T) {
	started := make(chan struct{})
	block := queryOp("in/block", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	d := buildDispatcher(t, nodeOpts{regs: append(demoRegs(), block), cfg: call.Limits{MaxInFlightTotal: 1, MaxFrameSize: 1024, MaxPartialFrameBytes: 2000}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = d.Call(ctx, call.RootRequest{Operation: "in/block"})
	}()
	<-started
	_, err := d.Call(context.Background(), call.RootRequest{Operation: "demo/add", Input: js(`{"a":1,"b":2}`)})
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || !ce.Retryable() || ce.Message() != "too many in-flight requests" {
		t.Fatalf("past the node-wide cap: %v", err)
	}
	cancel()
	<-done
	if _, err := d.Call(context.Background(), call.RootRequest{Operation: "demo/add", Input: js(`{"a":1,"b":2}`)}); err != nil {
		t.Fatalf("the slot was not released: %v", err)
	}
	if !d.HoldBytes(1200) || d.HoldBytes(1200) {
		t.Fatal("HoldBytes ignores the budget")
	}
	d.ReleaseBytes(1200)
	if d.PartialFrameBytes() != 0 || !d.HoldBytes(2000) {
		t.Fatalf("held %d after release", d.PartialFrameBytes())
	}
	d.ReleaseBytes(2000)
}
