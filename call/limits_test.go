package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call"

	"github.com/alkdev/alknet/call/internal/wire"
)

// Checklist 64, 65.
func TestCallLimits(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	limStarted := make(chan string, 8)
	block := blockOp("lim/block", limStarted, release)
	huge := queryOp("lim/huge", func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(strings.Repeat("x", 4096))
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{block, huge}, cfg: call.Limits{MaxInFlight: 2, MaxFrameSize: 2048}})
	st := openRaw(t, n.rawConn(t, "tcp"))
	st.request("b1", "/lim/block", nil)
	st.request("b2", "/lim/block", nil)
	st.request("b3", "/lim/block", nil)
	if e := st.mustNext(); e.ID != "b3" || string(e.Payload) != `{"code":"INTERNAL","message":"too many in-flight requests","retryable":true}` {
		t.Fatalf("over MaxInFlight: %+v %s", e, e.Payload)
	}
	q := openRaw(t, n.rawConn(t, "quic"))
	q.request("h", "/lim/huge", nil)
	if e := q.mustNext(); string(e.Payload) != `{"code":"INTERNAL","message":"response exceeds maximum frame size","retryable":false}` {
		t.Fatalf("oversized response: %s", e.Payload)
	}
	// Outgoing: MaxPending.
	c := n.dial(t, "quic", nil, nil, call.ConnOptions{MaxPending: 1})
	ctx := tctx(t)
	for len(limStarted) > 0 { // the wire requests above
		<-limStarted
	}
	go func() { _, _ = c.Call(ctx, "lim/block", nil) }()
	<-limStarted // the first call is pending (its handler runs)
	_, err := c.Call(ctx, "lim/block", nil)
	var ce *call.Error
	if !errors.As(err, &ce) || ce.Message() != "too many pending requests" || !ce.Retryable() {
		t.Fatalf("over MaxPending: %v", err)
	}
	// A request over the frame limit fails locally.
	c2 := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
	_, err = c2.Call(ctx, "lim/block", js(`"`+strings.Repeat("y", overDefaultFrameSize)+`"`))
	if !errors.Is(err, call.ErrInternal) || !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("oversized request: %v", err)
	}
}

// overDefaultFrameSize reaches the client's default 16 MiB frame limit.
const overDefaultFrameSize = call.DefaultMaxFrameSize
