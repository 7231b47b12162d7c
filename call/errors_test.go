package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/alkdev/alknet/call"
)

// The error type: getters, code sentinels through wrapping, ErrAborted, IsRemote for errors
// decoded from the peer, Unwrap for local causes, and its JSON form.
func TestErrorType(t *testing.T) {
	e := call.Errorf("QUOTA_EXCEEDED", "%d calls left", 0).WithDetails(json.RawMessage(`{"limit":10}`)).WithRetryable(true)
	if e.Code() != "QUOTA_EXCEEDED" || e.Message() != "0 calls left" || !e.Retryable() || string(e.Details()) != `{"limit":10}` || e.IsRemote() {
		t.Fatalf("getters: %v %q %v %s %v", e.Code(), e.Message(), e.Retryable(), e.Details(), e.IsRemote())
	}
	if e.Error() != "QUOTA_EXCEEDED: 0 calls left" {
		t.Fatal(e.Error())
	}
	if b, _ := json.Marshal(e); string(b) != `{"code":"QUOTA_EXCEEDED","message":"0 calls left","retryable":true,"details":{"limit":10}}` {
		t.Fatalf("JSON: %s", b)
	}
	wrapped := fmt.Errorf("doing x: %w", call.NewError(call.CodeNotFound, "operation not found: x/y"))
	for sentinel, want := range map[error]bool{call.ErrNotFound: true, call.ErrForbidden: false, call.ErrAborted: false} {
		if errors.Is(wrapped, sentinel) != want {
			t.Errorf("errors.Is(NOT_FOUND, %v) = %v", sentinel, !want)
		}
	}
	var ce *call.Error
	if !errors.As(wrapped, &ce) || ce.Code() != call.CodeNotFound {
		t.Fatal("errors.As through wrapping")
	}

	// From the peer: IsRemote, the code's sentinel; locally raised: not remote, with a cause.
	n := startNode(t, nodeOpts{regs: demoRegs()})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	_, err := c.Call(tctx(t), "demo/nope", js(`{}`))
	if !errors.As(err, &ce) || !ce.IsRemote() || !errors.Is(err, call.ErrNotFound) {
		t.Fatalf("remote NOT_FOUND: %v (remote %v)", err, ce != nil && ce.IsRemote())
	}
	ctx, cancel := context.WithCancel(tctx(t))
	cancel()
	_, err = c.Call(ctx, "demo/echo", js(`{"text":"x"}`))
	if !errors.As(err, &ce) || ce.IsRemote() || !errors.Is(err, call.ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("local cancellation: %v", err)
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
