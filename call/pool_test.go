package call_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/internal/wire"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
)

// rawCallee is a test callee speaking alknet/call by hand: serial answers every stream's
// requests one at a time, in order (as a Rust callee does); with oneThenFIN it answers the
// first request of the first stream (of every stream with finAll), then FINs and reads that
// stream no more (a callee closing a stream early).
// "t/slow" waits for release; every other operation echoes its input.
type rawCallee struct {
	oneThenFIN bool
	finAll     bool
	release    chan struct{}
	mu         sync.Mutex
	seen       map[string]int // request id → times answered
	streams    atomic.Int32
}

func (*rawCallee) ALPN() string { return call.ALPN }

func (h *rawCallee) Handle(ctx context.Context, c conn.Connection, _ auth.Context) error {
	for {
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return nil
		}
		first := h.streams.Add(1) == 1
		go h.serve(st, h.oneThenFIN && (first || h.finAll))
	}
}

func (h *rawCallee) serve(st conn.Stream, finAfterOne bool) {
	r := wire.NewFrameReader(st, 0)
	for {
		body, err := r.ReadFrame()
		if err != nil {
			_ = st.Close()
			return
		}
		e, err := wire.DecodeEnvelope(body)
		if err != nil || e.Type != wire.EventRequested {
			continue
		}
		req := wire.DecodeRequested(e.Payload)
		switch req.OperationID {
		case "/t/slow":
			<-h.release
		case "/t/doom": // reset the stream, both ways
			st.Cancel(7)
			return
		}
		h.mu.Lock()
		h.seen[e.ID]++
		h.mu.Unlock()
		out := fmt.Sprintf(`{"type":"call.responded","id":%q,"payload":{"output":%s}}`, e.ID, req.Input)
		if _, err := st.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(out))), out...)); err != nil {
			st.Cancel(0)
			return
		}
		if finAfterOne {
			_ = st.CloseWrite() // FIN, and read no more: what was written after this request is never read
			return
		}
	}
}

// Pooled streams against a callee that serves a stream's requests one at a time: correct, and
// once the pooled streams are at their cap a call opens a stream of its own instead of waiting
// behind the slow ones (docs/protocol.md §4.1.2).
func TestPoolOverflowPastTheCap(t *testing.T) {
	h := &rawCallee{release: make(chan struct{}), seen: map[string]int{}}
	n := startNode(t, nodeOpts{handler: h})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 1, StreamCap: 2, CallTimeout: 10 * time.Second})
	ctx := tctx(t)
	slow := make(chan error, 2)
	for range 2 { // the one pooled stream reaches its cap of 2
		go func() { _, err := c.Call(ctx, "t/slow", js(`{"s":1}`)); slow <- err }()
	}
	waitFor(t, "the pooled stream", func() bool { return h.streams.Load() >= 1 })
	time.Sleep(50 * time.Millisecond) // both slow requests written
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	out, err := c.Call(fctx, "t/fast", js(`{"f":2}`))
	cancel()
	if err != nil || string(out) != `{"f":2}` {
		t.Fatalf("a call past the cap waited behind the slow ones: %s %v", out, err)
	}
	if got := h.streams.Load(); got != 2 {
		t.Fatalf("streams %d, want the pooled one and the overflow's own", got)
	}
	close(h.release)
	for range 2 {
		if err := <-slow; err != nil {
			t.Fatal(err)
		}
	}
	// Serial, but correct: 20 calls over the pool all get their own answers.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := fmt.Sprintf(`{"n":%d}`, i)
			if out, err := c.Call(ctx, "t/echo", js(in)); err != nil || string(out) != in {
				t.Errorf("call %d: %s %v", i, out, err)
			}
		}()
	}
	wg.Wait()
}

// A pooled stream the callee FINs (and stops reading) after one request: the requests written
// behind it got no event, were never read, and are sent once more on another stream; each runs
// exactly once (docs/protocol.md §4.1.6, checklist 71).
func TestPoolResendsAfterTheCalleesFIN(t *testing.T) {
	h := &rawCallee{oneThenFIN: true, release: make(chan struct{}), seen: map[string]int{}}
	close(h.release)
	n := startNode(t, nodeOpts{handler: h})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 1, StreamCap: 16, CallTimeout: 10 * time.Second})
	ctx := tctx(t)
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = fmt.Sprintf("req-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := fmt.Sprintf(`{"n":%d}`, i)
			out, err := c.Call(ctx, "t/echo", js(in), call.WithRequestID(ids[i]))
			if err != nil || string(out) != in {
				t.Errorf("call %d: %s %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if h.seen[id] != 1 {
			t.Errorf("%s answered %d times, want once", id, h.seen[id])
		}
	}
}

// A request resent once and then refused again fails instead of looping.
func TestPoolResendsOnlyOnce(t *testing.T) {
	h := &rawCallee{oneThenFIN: true, finAll: true, release: make(chan struct{}), seen: map[string]int{}}
	close(h.release)
	n := startNode(t, nodeOpts{handler: h})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 1, StreamCap: 16, CallTimeout: 5 * time.Second})
	ctx := tctx(t)
	errs := make(chan error, 30)
	for i := range 30 {
		go func() { _, err := c.Call(ctx, "t/echo", js(fmt.Sprintf(`{"n":%d}`, i))); errs <- err }()
	}
	for range 30 {
		var ce *call.Error
		if err := <-errs; err != nil && (!errors.As(err, &ce) || ce.Code() != call.CodeInternal) {
			t.Fatalf("a call failed other than INTERNAL: %v", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, k := range h.seen {
		if k != 1 {
			t.Errorf("%s ran %d times", id, k)
		}
	}
}

// A pooled stream the callee resets fails exactly the calls sent on it; a call on another pooled
// stream completes (docs/protocol.md §4.1.6).
func TestPoolResetFailsOnlyItsCalls(t *testing.T) {
	h := &rawCallee{release: make(chan struct{}), seen: map[string]int{}}
	n := startNode(t, nodeOpts{handler: h})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 2, StreamCap: 1, CallTimeout: 10 * time.Second})
	ctx := tctx(t)
	slow := make(chan error, 1)
	go func() { _, err := c.Call(ctx, "t/slow", js(`{"s":1}`)); slow <- err }() // holds the first stream
	waitFor(t, "the pooled stream", func() bool { return h.streams.Load() >= 1 })
	_, err := c.Call(ctx, "t/doom", js(`{}`)) // the second stream, reset by the callee
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != call.CodeInternal || ce.Message() != "stream closed before response" {
		t.Fatalf("the call on the reset stream: %v", err)
	}
	close(h.release)
	if err := <-slow; err != nil {
		t.Fatalf("the call on the other pooled stream: %v", err)
	}
}

// Aborting a pooled call (its context ends) leaves the pooled stream in service: the next calls
// use it, and no stream is opened for them.
func TestPoolAbortKeepsTheStream(t *testing.T) {
	obs := &streamCounter{}
	n := startNode(t, nodeOpts{regs: demoRegs(), dopts: call.Options{Observer: obs}})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 1})
	ctx := tctx(t)
	if _, err := c.Call(ctx, "demo/echo", js(`{"text":"first"}`)); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := c.Call(actx, "demo/sleep", js(`{"ms":5000}`))
	cancel()
	if err == nil {
		t.Fatal("the aborted call succeeded")
	}
	for i := range 5 {
		if out, err := c.Call(ctx, "demo/echo", js(`{"text":"after"}`)); err != nil || string(out) != `{"text":"after"}` {
			t.Fatalf("call %d after the abort: %s %v", i, out, err)
		}
	}
	// One pooled stream, plus the aborts' own fresh stream (§4.2).
	if got := obs.opened.Load(); got > 2 {
		t.Fatalf("%d streams opened; the pooled stream did not survive the abort", got)
	}
}

// failingWrites wraps a connection whose streams' writes fail once fail is set.
type failingWrites struct {
	conn.Connection
	fail *atomic.Bool
}

func (f failingWrites) OpenStream(ctx context.Context) (conn.Stream, error) {
	st, err := f.Connection.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return failingStream{st, f.fail}, nil
}

type failingStream struct {
	conn.Stream
	fail *atomic.Bool
}

func (s failingStream) Write(p []byte) (int, error) {
	if s.fail.Load() {
		return 0, errors.New("injected write failure")
	}
	return s.Stream.Write(p)
}

// With several calls in flight on a pooled stream a request yields to share a write, and may
// be written by another caller after its own writer returned. When a write fails, every call
// on the stream ends at once (not at its timeout) and the callee's handlers are aborted.
func TestPoolBatchedWriteFailureEndsTheStreamsCalls(t *testing.T) {
	var ledger handlerLedger
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{ledger.waitOp("test/wait")}})
	fail := new(atomic.Bool)
	c := call.NewConn(failingWrites{n.connect(t, "quic", nil), fail}, nil,
		call.ConnOptions{StreamReuse: 1, StreamCap: 64, CallTimeout: 20 * time.Second})
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = c.Run(context.Background()) }()
	t.Cleanup(func() { _ = c.Close(); <-runDone })
	ctx := tctx(t)
	ended := make(chan error, 6)
	call1 := func() {
		_, err := c.Call(ctx, "test/wait", js(`{}`))
		ended <- err
	}
	for range 4 {
		go call1()
	}
	waitFor(t, "4 handlers running", func() bool { return ledger.started.Load() == 4 })
	fail.Store(true)
	start := time.Now()
	for range 2 { // 5th and 6th in flight on the stream: their writes are shared
		go call1()
	}
	for range 6 {
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("a call on the broken stream succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("calls still waiting %v after the failed write", time.Since(start))
		}
	}
	waitFor(t, "the callee's handlers aborted", func() bool { return ledger.cancelled.Load() == 4 })
}
