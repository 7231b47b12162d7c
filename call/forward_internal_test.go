package call

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/call/internal/wire"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/conn"
)

// Forwarding checklist 22 (the caller-side golden transcript): a forwarder's call.requested
// carries a fresh id, the end caller as forwarded_for, via with this node last, and timeout_ms
// (the budget less the margin), in that order, last.
func TestForwarderRequestBytes(t *testing.T) {
	hubFP := "ed25519:" + strings.Repeat("ab", 32)
	d, err := NewDispatcher(nil, Options{NodeFingerprint: hubFP, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := conn.Pipe(ALPN)
	c := NewConn(a, d, ConnOptions{Logger: slog.New(slog.DiscardHandler)})
	c.Start(context.Background())
	defer c.Close()
	defer b.Close(0, "")
	frames := make(chan []byte, 1)
	go func() {
		st, err := b.AcceptStream(context.Background())
		if err != nil {
			return
		}
		frame, err := wire.NewFrameReader(st, 0).ReadFrame()
		if err != nil {
			return
		}
		frames <- append([]byte(nil), frame...)
		e, err := wire.DecodeEnvelope(frame)
		if err != nil {
			return
		}
		resp := `{"type":"call.responded","id":"` + e.ID + `","payload":{"output":{"ok":true}}}`
		_ = wire.NewFrameWriter(st, 0).WriteFrame([]byte(resp))
	}()
	f := newForwarder(c, ImportConfig{Peer: "w1"}.withDefaults())
	hr, err := f.registration("w1/t/x", "t/x", OpQuery, json.RawMessage(`{}`), []string{"ed25519:remote"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	oc := &OperationContext{RequestID: "the-callers-id", Origin: &core.Identity{ID: "alice"}, via: []string{"ed25519:first"}}
	out, err := hr.Handler(ctx, oc, json.RawMessage(`{"a":1}`))
	if err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("forwarded call: %s %v", out, err)
	}
	frame := <-frames
	want := regexp.MustCompile(`^\{"type":"call\.requested","id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","payload":\{"operationId":"/t/x","input":\{"a":1\},` +
		`"forwarded_for":\{"id":"alice","scopes":\[\],"resources":\{\}\},"via":\["ed25519:first","` + hubFP + `"\],"timeout_ms":1[89]\d\d\}\}$`)
	if !want.Match(frame) {
		t.Fatalf("the forwarder's request:\n%s", frame)
	}
}
