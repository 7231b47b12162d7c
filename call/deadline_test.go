package call_test

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/internal/wire"
)

// deadlineOp reports how long its ctx had left when it started (-1: no deadline).
func deadlineOp() call.HandlerRegistration {
	return queryOp("test/deadline", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return js(`-1`), nil
		}
		return json.Marshal(time.Until(dl).Milliseconds())
	})
}

// Forwarding §5.2: a Go caller sends its budget as timeout_ms; the callee's deadline is the
// smaller of it and its own RequestTimeout.
func TestDeadlineOnTheWire(t *testing.T) {
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{deadlineOp()}, cfg: call.Limits{RequestTimeout: 5 * time.Second}})
	for _, tr := range transports {
		c := n.dial(t, tr, nil, nil, call.ConnOptions{})
		left := func(opts ...call.CallOption) int64 {
			t.Helper()
			out, err := c.Call(context.Background(), "test/deadline", nil, opts...)
			if err != nil {
				t.Fatal(err)
			}
			var ms int64
			_ = json.Unmarshal(out, &ms)
			return ms
		}
		// Bounds, not speed: the budget minus transit, never more than the budget.
		if ms := left(call.WithTimeout(2 * time.Second)); ms > 2000 || ms < 1000 {
			t.Fatalf("%s: caller budget 2s, handler had %d ms", tr, ms)
		}
		if ms := left(call.WithTimeout(time.Minute)); ms > 5000 || ms < 4000 {
			t.Fatalf("%s: node's RequestTimeout 5s below the caller's 1m, handler had %d ms", tr, ms)
		}
	}
}

// A Go caller's call.requested ends with timeout_ms (the caller-side half of the golden
// transcripts): digits only, the call's timeout in milliseconds.
func TestCallerSendsTimeoutMS(t *testing.T) {
	a, b := pipe()
	cl := call.NewConn(a, nil, call.ConnOptions{})
	go func() { _ = cl.Run(context.Background()) }()
	defer a.Close(0, "")
	defer b.Close(0, "")
	go func() {
		_, _ = cl.Call(context.Background(), "demo/echo", js(`{"text":"x"}`), call.WithTimeout(1500*time.Millisecond))
	}()
	st, err := b.AcceptStream(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	frame, err := wire.NewFrameReader(st, 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"payload":\{"operationId":"/demo/echo","input":\{"text":"x"\},"timeout_ms":1[45]\d\d\}\}$`).Match(frame) {
		t.Fatalf("request frame %s", frame)
	}
}
