package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/wire"
)

// blockOp blocks until release is closed (or its ctx ends) and reports when it started.
func blockOp(name string, started chan<- string, release <-chan struct{}) call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{Name: name, Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			if started != nil {
				started <- oc.RequestID
			}
			select {
			case <-release:
				return json.RawMessage(`"released"`), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
}

// Checklist 2, 6, 9: malformed frames close one stream (QUIC) or the connection (TCP+TLS).
func TestMalformedFrames(t *testing.T) {
	started := make(chan string, 1)
	release := make(chan struct{})
	defer close(release)
	n := startNode(t, nodeOpts{regs: append(demoRegs(), blockOp("test/block", started, release))})
	bad := map[string][]byte{
		"zero length":     nil,
		"invalid UTF-8":   []byte("{\"type\":\"call.requested\",\"id\":\"\xff\",\"payload\":{}}"),
		"invalid JSON":    []byte(`{"type":`),
		"non-object":      []byte(`[1]`),
		"missing type":    []byte(`{"id":"1","payload":{}}`),
		"missing id":      []byte(`{"type":"call.requested","payload":{}}`),
		"missing payload": []byte(`{"type":"call.requested","id":"1"}`),
		"oversized":       append([]byte{0x7f, 0, 0, 0}, make([]byte, 10)...),
	}
	for name, body := range bad {
		t.Run("quic/"+name, func(t *testing.T) {
			c := n.rawConn(t, "quic")
			good := openRaw(t, c)
			st := openRaw(t, c)
			if name == "oversized" {
				_, _ = st.s.Write(body)
			} else if body == nil {
				_, _ = st.s.Write([]byte{0, 0, 0, 0})
			} else {
				_ = st.w.WriteFrame(body)
			}
			// The node resets the stream with code 1 (protocol error) at once: no reply, and no
			// timeout standing in for the reset.
			e, err := st.next(5 * time.Second)
			var sce *conn.StreamCancelError
			if err == nil || !errors.As(err, &sce) || sce.Code != 1 || !sce.Remote {
				t.Fatalf("after a malformed frame: %+v, %v (want a reset with code 1 by the node)", e, err)
			}
			good.request("g", "/demo/echo", map[string]string{"text": "still"})
			if e := good.mustNext(); e.Type != wire.EventResponded {
				t.Fatalf("other stream: %+v", e)
			}
		})
	}
	// Single-stream: a malformed frame closes the connection and fails pending calls.
	c := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
	ctx := tctx(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "test/block", js(`{}`))
		errc <- err
	}()
	<-started
	raw := n.rawConn(t, "tcp")
	st := openRaw(t, raw)
	_ = st.w.WriteFrame([]byte(`not json`))
	if _, err := st.next(5 * time.Second); err == nil || errors.Is(err, conn.ErrTimeout) {
		t.Fatalf("single-stream connection after a malformed frame: %v (want it closed)", err)
	}
	// The client Conn above is another connection and unaffected; close our own side of a
	// Pipe pair to check pending calls fail with "connection closed".
	a, b := conn.Pipe(call.ALPN)
	cc := call.NewConn(a, nil, call.ConnOptions{})
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = cc.Run(context.Background()) }()
	bs, _ := b.AcceptStream(ctx)
	pending := make(chan error, 1)
	go func() {
		_, err := cc.Call(ctx, "x/y", js(`{}`))
		pending <- err
	}()
	_, _ = wire.NewFrameReader(bs, 0).ReadFrame() // the request arrived
	_ = wire.NewFrameWriter(bs, 0).WriteFrame([]byte(`garbage`))
	err := <-pending
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Code() != "INTERNAL" || ce.Message() != "connection closed" {
		t.Fatalf("pending call after a malformed frame: %v", err)
	}
	<-runDone
	_ = b.Close(0, "")
	select {
	case err := <-errc:
		t.Fatalf("the other connection's call ended: %v", err)
	default:
	}
}

// Checklist 13, 14, 15, 16: stream usage of a callee.
func TestCalleeStreams(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 4)
	regs := append(demoRegs(), blockOp("test/block", started, release))
	n := startNode(t, nodeOpts{regs: regs, cfg: call.Limits{StreamIdleTimeout: 300 * time.Millisecond}})
	c := n.rawConn(t, "quic")

	// 14: two requests pipelined, the first blocking until the second finishes.
	st := openRaw(t, c)
	st.request("first", "/test/block", nil)
	<-started
	st.request("second", "/demo/echo", map[string]string{"text": "2"})
	if e := st.mustNext(); e.ID != "second" || e.Type != wire.EventResponded {
		t.Fatalf("second: %+v", e)
	}
	close(release)
	if e := st.mustNext(); e.ID != "first" || string(e.Payload) != `{"output":"released"}` {
		t.Fatalf("first: %+v", e)
	}
	// 16: answered without our FIN; after our FIN and all terminal, the callee FINs.
	_ = st.s.CloseWrite()
	if _, err := st.next(5 * time.Second); err != io.EOF {
		t.Fatalf("callee did not FIN after all was terminal: %v", err)
	}
	// 16: an idle stream (nothing in flight) is closed after StreamIdleTimeout.
	idle := openRaw(t, c)
	idle.request("i", "/demo/echo", map[string]string{"text": "x"})
	_ = idle.mustNext()
	begin := time.Now()
	if _, err := idle.next(5 * time.Second); err == nil || time.Since(begin) > 2*time.Second {
		t.Fatalf("idle stream not closed in time: %v after %v", err, time.Since(begin))
	}
	// 15: 100 concurrent requests on one stream give 100 well-formed frames with the right ids.
	many := openRaw(t, c)
	for i := range 100 {
		many.request(fmt.Sprintf("m%d", i), "/demo/echo", map[string]string{"text": fmt.Sprint(i)})
	}
	seen := map[string]bool{}
	for range 100 {
		e := many.mustNext()
		var out struct {
			Output struct{ Text string } `json:"output"`
		}
		if e.Type != wire.EventResponded || json.Unmarshal(e.Payload, &out) != nil || "m"+out.Output.Text != e.ID {
			t.Fatalf("frame %+v", e)
		}
		seen[e.ID] = true
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct ids", len(seen))
	}
}

// Checklist 17: under the stream-per-call strategy (ConnOptions.StreamPerCall) a Go caller opens
// one new stream per call and FINs right after the request.
func TestCallerStreamPerCall(t *testing.T) {
	type seen struct {
		frames int
		eof    bool
	}
	results := make(chan seen, 8)
	// A raw callee: reads one stream fully (expects FIN), answers, counts streams.
	a, b := quicPair(t)
	cc := call.NewConn(a, nil, call.ConnOptions{StreamPerCall: true})
	go func() { _ = cc.Run(context.Background()) }()
	ctx := tctx(t)
	go func() {
		for {
			s, err := b.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				r := wire.NewFrameReader(s, 0)
				var got seen
				var id string
				for {
					body, err := r.ReadFrame()
					if err == io.EOF {
						got.eof = true
						break
					}
					if err != nil {
						break
					}
					e, _ := wire.DecodeEnvelope(body)
					id = e.ID
					got.frames++
				}
				_ = wire.NewFrameWriter(s, 0).WriteFrame(wire.AppendEnvelope(nil, wire.Envelope{Type: wire.EventResponded, ID: id, Payload: js(`{"output":1}`)}))
				_ = s.CloseWrite()
				results <- got
			}()
		}
	}()
	for range 3 {
		if out, err := cc.Call(ctx, "x/y", js(`{}`)); err != nil || string(out) != "1" {
			t.Fatalf("call: %s %v", out, err)
		}
		if r := <-results; r.frames != 1 || !r.eof {
			t.Fatalf("stream carried %d frames, FIN %v", r.frames, r.eof)
		}
	}
}

// Checklist 18, 20: calls in both directions over one connection, QUIC and TCP+TLS.
func TestBothDirections(t *testing.T) {
	d := buildDispatcher(t, nodeOpts{regs: demoRegs()}, nil)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			n := startNode(t, nodeOpts{regs: append(demoRegs(), callbackOp())})
			cli := n.dial(t, tr, nil, d, call.ConnOptions{})
			ctx := tctx(t)
			// The dialling side serves demo ops too: the node calls back over the same connection.
			out, err := cli.Call(ctx, "test/callback", js(`{"text":"back"}`))
			if err != nil || string(out) != `{"text":"back"}` {
				t.Fatalf("callback: %s %v", out, err)
			}
			var wg sync.WaitGroup
			var failures atomic.Int32
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					op := "demo/echo"
					if i%2 == 0 {
						op = "test/callback"
					}
					if _, err := cli.Call(ctx, op, js(`{"text":"x"}`)); err != nil {
						failures.Add(1)
						t.Log(err)
					}
				}()
			}
			wg.Wait()
			if failures.Load() != 0 {
				t.Fatalf("%d calls failed", failures.Load())
			}
		})
	}
}

// callbackOp calls demo/echo on the caller, over the connection the request came on.
// callbackOp calls demo/echo back on the connection its request came on.
func callbackOp() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "test/callback", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			c, ok := call.ConnFromContext(ctx)
			if !ok {
				return nil, errors.New("no connection in ctx")
			}
			return c.Call(ctx, "demo/echo", in)
		},
	}
}

// Checklist 19: a duplicate in-flight id is refused; the first request completes.
func TestDuplicateID(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 1)
	n := startNode(t, nodeOpts{regs: append(demoRegs(), blockOp("test/block", started, release))})
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			st := openRaw(t, n.rawConn(t, tr))
			st.request("dup", "/test/block", nil)
			<-started
			st.request("dup", "/demo/echo", map[string]string{"text": "x"})
			e := st.mustNext()
			if e.ID != "dup" || e.Type != wire.EventError || !strings.Contains(string(e.Payload), `"code":"INVALID_INPUT","message":"duplicate request id"`) {
				t.Fatalf("%s duplicate: %+v %s", tr, e, e.Payload)
			}
			release <- struct{}{}
			if e := st.mustNext(); e.ID != "dup" || e.Type != wire.EventResponded {
				t.Fatalf("%s first: %+v", tr, e)
			}
		})
	}
}

// Regression: frames queued behind another writer must be written before the callee's FIN
// (found when subscription items were batched: the FIN overtook queued frames).
func TestFINAfterQueuedFrames(t *testing.T) {
	n := startNode(t, nodeOpts{regs: demoRegs()})
	for range 5 {
		st := openRaw(t, n.rawConn(t, "quic"))
		for i := range 200 {
			st.request(fmt.Sprintf("q%d", i), "/demo/echo", map[string]string{"text": strings.Repeat("y", 512)})
		}
		st.request("sub", "/demo/ticker", map[string]any{"count": 3000, "interval_ms": 0, "pad": 1000})
		_ = st.s.CloseWrite()
		got := 0
		for {
			_, err := st.next(10 * time.Second)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d frames: %v", got, err)
			}
			got++
		}
		if got != 200+3000+1 {
			t.Fatalf("%d frames before FIN, want 3201", got)
		}
	}
}
