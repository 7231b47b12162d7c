package call_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/alkdev/alknet/call"

	"github.com/alkdev/alknet/call/internal/wire"
)

// BenchmarkUnaryCall is one demo/echo round trip, client and server in this process.
func BenchmarkUnaryCall(b *testing.B) {
	in := js(`{"text":"hello"}`)
	run := func(b *testing.B, c *call.Conn) {
		b.ReportAllocs()
		ctx := tctx(b)
		for b.Loop() {
			if _, err := c.Call(ctx, "demo/echo", in); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("pipe", func(b *testing.B) {
		d := buildDispatcher(b, nodeOpts{regs: demoRegs()}, nil)
		a, p := pipe()
		srv := call.NewConn(a, d, call.ConnOptions{})
		cli := call.NewConn(p, nil, call.ConnOptions{})
		done := make(chan struct{}, 2)
		go func() { _ = srv.Run(b.Context()); done <- struct{}{} }()
		go func() { _ = cli.Run(b.Context()); done <- struct{}{} }()
		run(b, cli)
		_ = a.Close(0, "")
		<-done
		<-done
	})
	n := startNode(b, nodeOpts{regs: demoRegs()})
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) { run(b, n.dial(b, tr, nil, nil, call.ConnOptions{})) })
	}
}

// BenchmarkFrameEncodeDecode is the envelope path of one request: encode, frame, read, decode.
func BenchmarkFrameEncodeDecode(b *testing.B) {
	b.ReportAllocs()
	env := wire.Envelope{Type: wire.EventRequested, ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Payload: js(`{"operationId":"/demo/echo","input":{"text":"hello"}}`)}
	var buf bytes.Buffer
	w := wire.NewFrameWriter(&buf, 0)
	for b.Loop() {
		buf.Reset()
		if err := w.WriteFrame(wire.AppendEnvelope(nil, env)); err != nil {
			b.Fatal(err)
		}
		body, err := wire.NewFrameReader(&buf, 0).ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wire.DecodeEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDispatch is the callee pipeline alone: lookup, access, schema validation, handler
// and error mapping through the in-process Ingress, no transport.
func BenchmarkDispatch(b *testing.B) {
	d := buildDispatcher(b, nodeOpts{regs: demoRegs()}, nil)
	req := call.RootRequest{Operation: "demo/echo", Input: js(`{"text":"hello"}`)}
	ctx := tctx(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Call(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubscription is one demo/ticker subscription of 10,000 × 1 KiB items per op.
func BenchmarkSubscription(b *testing.B) {
	n := startNode(b, nodeOpts{regs: demoRegs()})
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			c := n.dial(b, tr, nil, nil, call.ConnOptions{SubscriptionBuffer: 20000})
			ctx := tctx(b)
			b.ReportAllocs()
			for b.Loop() {
				sub, err := c.Subscribe(ctx, "demo/ticker", js(`{"count":10000,"interval_ms":0,"pad":1000}`))
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := sub.Recv(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
