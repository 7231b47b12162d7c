package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/wire"
)

// Checklist 4: a 64 KiB string input round-trips byte for byte through an echo op.
func TestLargeEcho(t *testing.T) {
	n := startNode(t, nodeOpts{regs: demoRegs()})
	// Every byte value that JSON allows unescaped, plus escapes the encoder must keep as sent.
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(`abc<>&é\u00e9\n\"` + "\u2028")
	}
	in := `{"text":"` + b.String() + `"}`
	for _, tr := range transports {
		c := n.dial(t, tr, nil, nil, call.ConnOptions{})
		out, err := c.Call(tctx(t), "demo/echo", json.RawMessage(in))
		if err != nil || string(out) != in {
			t.Fatalf("%s: %d bytes back, %v", tr, len(out), err)
		}
	}
}

// Checklist 5: a truncated response frame fails the Go caller at once with "stream closed before response".
func TestTruncatedResponse(t *testing.T) {
	a, b := quicPair(t)
	cc := call.NewConn(a, nil, call.ConnOptions{CallTimeout: 10 * time.Second})
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = cc.Run(context.Background()) }()
	ctx := tctx(t)
	go func() {
		s, err := b.AcceptStream(ctx)
		if err != nil {
			return
		}
		_, _ = wire.NewFrameReader(s, 0).ReadFrame()
		_, _ = s.Write([]byte{0, 0, 0, 50, '{', '"'}) // a prefix promising 50 bytes, then FIN
		_ = s.CloseWrite()
	}()
	begin := time.Now()
	_, err := cc.Call(ctx, "x/y", nil)
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Message() != "stream closed before response" || time.Since(begin) > 2*time.Second {
		t.Fatalf("truncated response: %v after %v", err, time.Since(begin))
	}
	_ = a.Close(0, "")
	<-runDone
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
		c := n.dial(t, tr, nil, nil, call.ConnOptions{})
		_, err := c.Call(tctx(t), "n/panic", nil)
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || ce.Message() != "internal error" {
			t.Fatalf("%s panic: %v", tr, err)
		}
		if _, err := c.Call(tctx(t), "n/input", js(`1`)); err != nil {
			t.Fatalf("%s after a panic: %v", tr, err)
		}
	}
}

// Checklist 60 (callee side): closing the connection cancels inbound handler contexts.
func TestCloseCancelsInbound(t *testing.T) {
	cancelled := make(chan struct{}, 2)
	started := make(chan struct{}, 2)
	wait := queryOp("n/wait", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- struct{}{}
		return nil, ctx.Err()
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{wait}})
	for _, tr := range transports {
		c := n.dial(t, tr, nil, nil, call.ConnOptions{})
		go func() { _, _ = c.Call(context.Background(), "n/wait", nil) }()
		<-started
		_ = c.Connection().Close(conn.CodeNormal, "")
		select {
		case <-cancelled:
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: the inbound handler was not cancelled", tr)
		}
	}
}

// Checklist 56 (other requests): aborting r1 leaves a concurrent r2 running.
func TestAbortLeavesOthers(t *testing.T) {
	blocked := make(chan string, 2)
	regs := append(demo.Registrations(demo.Options{OnComposeBlocked: func(_ int, id string) { blocked <- id }}),
		builtin.Registrations(builtin.NodeInfo{Version: "test", Started: time.Now()})...)
	n := startNode(t, nodeOpts{regs: regs})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	ctx1, cancel1 := context.WithCancel(tctx(t))
	ctx2, cancel2 := context.WithCancel(tctx(t))
	r1, r2 := make(chan error, 1), make(chan error, 1)
	go func() { _, err := c.Call(ctx1, "demo/compose", js(`{"depth":3,"block":true}`)); r1 <- err }()
	go func() { _, err := c.Call(ctx2, "demo/compose", js(`{"depth":3,"block":true}`)); r2 <- err }()
	<-blocked // both requests run all their levels
	<-blocked
	cancel1()
	if err := <-r1; !errors.Is(err, call.ErrAborted) {
		t.Fatalf("r1: %v", err)
	}
	select {
	case err := <-r2:
		t.Fatalf("r2 ended with r1's abort: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel2()
	<-r2
}

// Batch runs items concurrently, returns results in input order, and items fail independently.
func TestBatch(t *testing.T) {
	// b/meet returns only once two calls are inside it: a sequential batch would time out.
	arrived := make(chan struct{}, 2)
	meet := queryOp("b/meet", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		arrived <- struct{}{}
		for len(arrived) < 2 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		return js(`"met"`), nil
	})
	n := startNode(t, nodeOpts{regs: append(demoRegs(), meet)})
	for _, tr := range transports {
		for len(arrived) > 0 {
			<-arrived
		}
		c := n.dial(t, tr, nil, nil, call.ConnOptions{CallTimeout: 5 * time.Second})
		res := c.Batch(tctx(t), []call.BatchItem{
			{Op: "b/meet", Input: js(`{}`)},
			{Op: "demo/echo", Input: js(`{"text":"b"}`)},
			{Op: "demo/nope", Input: js(`{}`)},
			{Op: "b/meet", Input: js(`{}`)},
		})
		var ce *call.Error
		if res[0].Err != nil || string(res[1].Output) != `{"text":"b"}` || !errors.As(res[2].Err, &ce) || ce.Code() != "NOT_FOUND" || res[3].Err != nil {
			t.Fatalf("%s: %+v", tr, res)
		}
	}
}

// ConnOptions.StreamReuse pipelines calls over at most N long-lived streams (§4.1.4); results,
// errors, aborts and timeouts behave as with a stream per call, and idle streams are retired.
func TestStreamReuse(t *testing.T) {
	obs := &streamCounter{}
	n := startNode(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{StreamIdleTimeout: 400 * time.Millisecond},
		dopts: call.Options{Observer: obs}})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 2, CallTimeout: 2 * time.Second})
	ctx := tctx(t)
	res := c.Batch(ctx, func() []call.BatchItem {
		var items []call.BatchItem
		for i := range 50 {
			items = append(items, call.BatchItem{Op: "demo/echo", Input: js(`{"text":"` + jsonInt(i) + `"}`)})
		}
		return items
	}())
	for i, r := range res {
		if r.Err != nil || string(r.Output) != `{"text":"`+jsonInt(i)+`"}` {
			t.Fatalf("item %d: %s %v", i, r.Output, r.Err)
		}
	}
	if got := obs.opened.Load(); got > 2 {
		t.Fatalf("50 calls opened %d streams; StreamReuse is 2", got)
	}
	if _, err := c.Call(ctx, "demo/nope", nil); err == nil {
		t.Fatal("NOT_FOUND expected")
	}
	_, err := c.Call(ctx, "demo/sleep", js(`{"ms":2000}`), call.WithTimeout(100*time.Millisecond))
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != "TIMEOUT" {
		t.Fatalf("timeout over a reused stream: %v", err)
	}
	// Longer than the callee's idle close: the caller must have retired the stream first.
	time.Sleep(600 * time.Millisecond)
	for range 5 {
		if out, err := c.Call(ctx, "demo/echo", js(`{"text":"after idle"}`)); err != nil || string(out) != `{"text":"after idle"}` {
			t.Fatalf("after idle: %s %v", out, err)
		}
	}
	sub, err := c.Subscribe(ctx, "demo/ticker", js(`{"count":2,"interval_ms":0}`))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := sub.Recv(); err != nil {
			t.Fatal(err)
		}
	}
}

type streamCounter struct{ opened atomic.Int64 }

func (s *streamCounter) CallDone(string, string, time.Duration) {}
func (s *streamCounter) StreamOpened()                          { s.opened.Add(1) }
func (s *streamCounter) StreamClosed()                          {}
