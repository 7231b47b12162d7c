package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/wire"
)

func streamOp(name string, fn call.StreamingHandler) call.HandlerRegistration {
	return call.HandlerRegistration{Spec: call.OperationSpec{Name: name, Type: call.OpSubscription, Visibility: call.VisibilityExternal}, Stream: fn}
}

// Checklist 22, 24.
func TestSubscriptionOutcomes(t *testing.T) {
	oneThenError := streamOp("test/oneerr", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		if err := emit(js(`1`)); err != nil {
			return err
		}
		return call.NewError("INVALID_INPUT", "bad second")
	})
	long := streamOp("test/long", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		_, hasDeadline := ctx.Deadline()
		time.Sleep(300 * time.Millisecond) // past RequestTimeout below
		if hasDeadline {
			return call.NewError("INTERNAL", "subscription root has a deadline")
		}
		return emit(js(`"late"`))
	})
	n := startNode(t, nodeOpts{regs: append(demoRegs(), oneThenError, long), cfg: call.Limits{RequestTimeout: 100 * time.Millisecond}})
	st := openRaw(t, n.rawConn(t, "quic"))
	st.request("s", "/test/oneerr", nil)
	if e := st.mustNext(); e.Type != wire.EventResponded {
		t.Fatalf("%+v", e)
	}
	if e := st.mustNext(); e.Type != wire.EventError || string(e.Payload) != `{"code":"INVALID_INPUT","message":"bad second","retryable":false}` {
		t.Fatalf("%+v %s", e, e.Payload)
	}
	_ = st.s.CloseWrite()
	if e, err := st.next(2 * time.Second); err != io.EOF {
		t.Fatalf("after call.error: %+v %v (no call.completed may follow)", e, err)
	}
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	// A caller without a deadline: the subscription has none on the node either (§13),
	// though it runs past RequestTimeout.
	noDeadline, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(noDeadline, "test/long", nil)
	if err != nil {
		t.Fatal(err)
	}
	if it, err := sub.Recv(); err != nil || string(it) != `"late"` {
		t.Fatalf("long subscription: %s %v", it, err)
	}
	if _, err := sub.Recv(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	// A caller with a deadline sends it (timeout_ms): the handler's ctx carries it.
	sub, err = c.Subscribe(tctx(t), "test/long", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); !errors.Is(err, call.ErrInternal) || !strings.Contains(err.Error(), "has a deadline") {
		t.Fatalf("subscription under a caller's deadline: %v", err)
	}
}

// Checklist 25: on a dedicated stream a pausing consumer loses nothing; emit blocks meanwhile.
func TestSubscriptionBackPressureDedicated(t *testing.T) {
	var emitted atomic.Int64
	flood := streamOp("test/flood", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		pad, _ := json.Marshal(string(make([]byte, 1024)))
		for i := range 2000 {
			if err := emit(append(append(js(`{"i":`), []byte(jsonInt(i))...), append(js(`,"pad":`), append(pad, '}')...)...)); err != nil {
				return err
			}
			emitted.Add(1)
		}
		return nil
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{flood}})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{SubscriptionBuffer: 4})
	sub, err := c.Subscribe(tctx(t), "test/flood", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the consumer pauses
	t.Logf("%d of 2000 items emitted while the consumer paused", emitted.Load())
	if e := emitted.Load(); e >= 2000 {
		t.Fatalf("emit did not block: %d items emitted while the consumer paused", e)
	}
	for i := range 2000 {
		it, err := sub.Recv()
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		var v struct{ I int }
		if json.Unmarshal(it, &v) != nil || v.I != i {
			t.Fatalf("item %d is %s", i, it[:20])
		}
	}
	if _, err := sub.Recv(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

// Checklist 26: on a shared stream a lagging consumer gets its items, then "consumer too
// slow"; the callee receives call.aborted.
func TestSubscriptionBackPressureShared(t *testing.T) {
	aborted := make(chan struct{})
	flood := streamOp("test/flood", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		for i := 0; ; i++ {
			if err := emit(js(jsonInt(i))); err != nil {
				close(aborted)
				return err
			}
		}
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{flood}})
	c := n.dial(t, "tcp", nil, nil, call.ConnOptions{SubscriptionBuffer: 8})
	sub, err := c.Subscribe(tctx(t), "test/flood", nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-aborted:
	case <-time.After(5 * time.Second):
		t.Fatal("the callee was not aborted")
	}
	var got int
	for {
		_, err := sub.Recv()
		if err != nil {
			var ce *call.Error
			if !errors.As(err, &ce) || ce.Message() != "subscription consumer too slow" {
				t.Fatalf("terminal error %v", err)
			}
			break
		}
		got++
	}
	if got != 8 {
		t.Fatalf("got %d buffered items, want the 8 buffered", got)
	}
	// The shared stream still serves.
	if _, err := c.Call(tctx(t), "services/list", js(`{}`)); err != nil {
		t.Fatal(err)
	}
}

// Checklist 59, 60: Abort, connection close.
func TestAbortAndClose(t *testing.T) {
	started := make(chan string, 4)
	release := make(chan struct{})
	defer close(release)
	n := startNode(t, nodeOpts{regs: append(demoRegs(), blockOp("test/block", started, release))})
	for _, tr := range transports {
		c := n.dial(t, tr, nil, nil, call.ConnOptions{})
		ctx := tctx(t)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, "test/block", js(`{}`), call.WithRequestID("sleep-1"))
			errc <- err
		}()
		<-started // the handler runs: the abort finds the request in flight
		if err := c.Abort("sleep-1"); err != nil {
			t.Fatal(err)
		}
		err := <-errc
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Message() != "request cancelled" || !errors.Is(err, call.ErrAborted) {
			t.Fatalf("%s aborted call: %v", tr, err)
		}
		sub, err := c.Subscribe(ctx, "demo/ticker", js(`{"count":0,"interval_ms":5}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = sub.Recv()
		_ = c.Abort(sub.ID())
		for {
			_, err := sub.Recv()
			if err == nil {
				continue
			}
			if err == io.EOF || !errors.Is(err, call.ErrAborted) {
				t.Fatalf("%s aborted subscription ended with %v", tr, err)
			}
			break
		}
	}
	// Connection close fails pending calls with "connection closed".
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	ctx := tctx(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "test/block", js(`{}`))
		errc <- err
	}()
	<-started
	_ = c.Connection().Close(conn.CodeNormal, "")
	err := <-errc
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || (ce.Message() != "connection closed" && ce.Message() != "stream closed before response") {
		t.Fatalf("pending call on close: %v", err)
	}
}
