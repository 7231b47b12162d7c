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
		t.Run(tr, func(t *testing.T) {
			c := n.dial(t, tr, nil, nil, call.ConnOptions{})
			out, err := c.Call(tctx(t), "demo/echo", json.RawMessage(in))
			if err != nil || string(out) != in {
				t.Fatalf("%s: %d bytes back, %v", tr, len(out), err)
			}
		})
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
		t.Run(tr, func(t *testing.T) {
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
		})
	}
}

// ConnOptions.StreamReuse pipelines calls over at most N long-lived streams (§4.1.4); results,
// errors, aborts and timeouts behave as with a stream per call, and idle streams are retired.
func TestStreamReuse(t *testing.T) {
	obs := &streamCounter{}
	n := startNode(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{StreamIdleTimeout: 400 * time.Millisecond},
		dopts: call.Options{Observer: obs}})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{StreamReuse: 2, StreamCap: 50, CallTimeout: 2 * time.Second})
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

// Checklist 71: by default a Go caller pools its queries and mutations (at most 4 streams for
// 200 concurrent calls, each under the cap of 64), and each subscription gets its own stream.
func TestCallerPoolsByDefault(t *testing.T) {
	obs := &streamCounter{}
	n := startNode(t, nodeOpts{regs: demoRegs(), dopts: call.Options{Observer: obs}})
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	ctx := tctx(t)
	var items []call.BatchItem
	for i := range 200 {
		items = append(items, call.BatchItem{Op: "demo/echo", Input: js(`{"text":"` + jsonInt(i) + `"}`)})
	}
	for i, r := range c.Batch(ctx, items) {
		if r.Err != nil || string(r.Output) != `{"text":"`+jsonInt(i)+`"}` {
			t.Fatalf("item %d: %s %v", i, r.Output, r.Err)
		}
	}
	if got := obs.opened.Load(); got > int64(call.DefaultStreamReuse) {
		t.Fatalf("200 calls opened %d streams; the default pool is %d", got, call.DefaultStreamReuse)
	}
	before := obs.opened.Load()
	sub, err := c.Subscribe(ctx, "demo/ticker", js(`{"count":1,"interval_ms":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); err != nil {
		t.Fatal(err)
	}
	if obs.opened.Load() != before+1 {
		t.Fatal("the subscription did not get a stream of its own")
	}
}

type streamCounter struct{ opened atomic.Int64 }

func (s *streamCounter) CallDone(string, string, time.Duration) {}
func (s *streamCounter) StreamOpened()                          { s.opened.Add(1) }
func (s *streamCounter) StreamClosed()                          {}
