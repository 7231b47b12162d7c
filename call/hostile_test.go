package call_test

// Regression tests for the hostile-peer defects of docs/security.md: each reproduces the
// attack through a real endpoint on loopback (or a pipe) and checks the node's answer.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"

	"github.com/alkdev/alknet/call/internal/wire"
)

// rawFrame is one frame: prefix and body.
func rawFrame(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func requestBody(id, op, input string, extra string) string {
	return fmt.Sprintf(`{"type":"call.requested","id":%q,"payload":{"operationId":%q,"input":%s%s}}`, id, op, input, extra)
}

// readEnvelope reads one frame from s and decodes its envelope loosely.
func readEnvelope(t testing.TB, s io.Reader) map[string]any {
	t.Helper()
	var p [4]byte
	if _, err := io.ReadFull(s, p[:]); err != nil {
		t.Fatalf("read prefix: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(p[:]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("envelope %s: %v", body, err)
	}
	return e
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Defect 1: a 16 MiB announcement followed by one byte costs the node about 64 KiB, not 16 MiB.
func TestAnnouncedFrameSizeNotAllocated(t *testing.T) {
	n := startNode(t, nodeOpts{regs: demoRegs()})
	before := heapInUse()
	const tcpConns, quicStreams = 20, 20
	announce := append(binary.BigEndian.AppendUint32(nil, 16<<20), '{')
	for range tcpConns {
		st, err := n.connect(t, "tcp", nil).AcceptStream(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(announce); err != nil {
			t.Fatal(err)
		}
	}
	qc := n.connect(t, "quic", nil)
	for range quicStreams {
		st, err := qc.OpenStream(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(announce); err != nil {
			t.Fatal(err)
		}
	}
	// Every partial frame is charged (64 KiB each) once the node has read its byte.
	want := int64((tcpConns + quicStreams) * 64 << 10)
	deadline := time.Now().Add(5 * time.Second)
	for n.d.PartialFrameBytes() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if held := n.d.PartialFrameBytes(); held != want {
		t.Fatalf("partial frames hold %d bytes, want %d (64 KiB each)", held, want)
	}
	growth := int64(heapInUse()) - int64(before)
	t.Logf("heap growth %d KiB for %d announced 16 MiB frames", growth>>10, tcpConns+quicStreams)
	// Generous: 40 × 64 KiB of buffers plus connection state; the old code took 40 × 16 MiB.
	if limit := int64(48 << 20); growth > limit {
		t.Fatalf("heap grew by %d MiB for %d bytes received", growth>>20, tcpConns+quicStreams)
	}
}

// Defect 1: past the node-wide budget the stream holding the largest partial frame is closed.
func TestPartialFrameBudget(t *testing.T) {
	const frameMax = 256 << 10
	d := buildDispatcher(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{MaxFrameSize: frameMax, MaxPartialFrameBytes: frameMax}}, nil)
	type peer struct {
		st     conn.Stream
		closed chan struct{}
	}
	var peers []peer
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for i := range 4 {
		a, b := pipe()
		srv := call.NewConn(a, d, call.ConnOptions{})
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Run(context.Background()) }()
		t.Cleanup(func() { _ = b.Close(0, ""); _ = a.Close(0, "") })
		st, err := b.AcceptStream(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		p := peer{st: st, closed: make(chan struct{})}
		go func() { _, _ = io.Copy(io.Discard, st); close(p.closed) }()
		// Peer i announces a 200 KiB frame and sends (i+1) × 20 KiB of it: the node holds
		// buffers of 64 or 128 KiB each, 384 KiB in all, over the 256 KiB budget.
		if _, err := st.Write(binary.BigEndian.AppendUint32(nil, 200<<10)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(bytes.Repeat([]byte{' '}, (i+1)*20<<10)); err != nil && i != 3 {
			t.Fatal(err) // the last peer's write may fail: the node closes it on the way
		}
		peers = append(peers, p)
	}
	select {
	case <-peers[3].closed: // the largest holder (80 KiB received, a 128 KiB buffer)
	case <-time.After(5 * time.Second):
		t.Fatalf("no stream was closed; %d bytes held", d.PartialFrameBytes())
	}
	if held := d.PartialFrameBytes(); held > frameMax {
		t.Fatalf("held %d bytes after the eviction, budget %d", held, frameMax)
	}
	for i := range 3 {
		select {
		case <-peers[i].closed:
			t.Fatalf("peer %d closed; only the largest holder should be", i)
		default:
		}
	}
}

// Defect 4: a frame that takes longer than StreamIdleTimeout to arrive is read whole while its
// bytes flow, on QUIC (stream deadline) and TCP+TLS (connection idle timeout).
func TestSlowFrameWithinInactivity(t *testing.T) {
	const idle = 400 * time.Millisecond // the frame below takes 1 s: 2.5 idle timeouts
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			n := startNode(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{StreamIdleTimeout: idle},
				limits: config.Limits{SingleStreamIdleTimeout: idle}})
			c := n.connect(t, tr, nil)
			st, err := conn.Open(tctx(t), c) // a new QUIC stream, or the TCP+TLS connection's one
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Repeat("a", 20000)
			frame := rawFrame(requestBody("slow", "demo/echo", `{"text":"`+text+`"}`, ""))
			piece := len(frame)/10 + 1
			for i := 0; i < len(frame); i += piece {
				if _, err := st.Write(frame[i:min(len(frame), i+piece)]); err != nil {
					t.Fatalf("write at %d: %v", i, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			e := readEnvelope(t, st)
			if e["type"] != "call.responded" || !strings.Contains(fmt.Sprint(e["payload"]), text) {
				t.Fatalf("answer: %v", e["type"])
			}
		})
	}
}

// Defect 5: an idle TCP+TLS connection, or one holding a partial frame without progress, is
// closed after SingleStreamIdleTimeout; one with a call in flight is not.
func TestSingleStreamIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	release := make(chan struct{})
	slow := queryOp("test/slow", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return js(`{}`), nil
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{slow}, limits: config.Limits{SingleStreamIdleTimeout: idle}})
	open := func(first []byte) (conn.Stream, chan struct{}) {
		st, err := n.connect(t, "tcp", nil).AcceptStream(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if first != nil {
			if _, err := st.Write(first); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, st); close(done) }()
		return st, done
	}
	start := time.Now()
	_, idleDone := open(nil)
	_, partialDone := open([]byte{0, 0, 1, 0, '{'})
	_, busyDone := open(rawFrame(requestBody("busy", "test/slow", "{}", "")))
	for name, ch := range map[string]chan struct{}{"idle": idleDone, "partial": partialDone} {
		select {
		case <-ch:
		case <-time.After(idle*2 + time.Second):
			t.Fatalf("%s connection still open after %v", name, time.Since(start))
		}
	}
	select {
	case <-busyDone:
		t.Fatal("a connection with a call in flight was closed as idle")
	case <-time.After(idle * 3):
	}
	close(release)
}

// Defect 5 (slow peers): a peer that stops reading cannot hold a writer: past WriteTimeout the
// QUIC stream is reset or the TCP+TLS connection closed, and the subscription's handler ends.
func TestWriteTimeoutStalledReader(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ended := make(chan struct{})
			flood := streamOp("test/flood", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
				defer close(ended)
				pad, _ := json.Marshal(strings.Repeat("x", 4096))
				for {
					if err := emit(append(append(js(`{"pad":`), pad...), '}')); err != nil {
						return err
					}
				}
			})
			n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{flood}, limits: config.Limits{WriteTimeout: 300 * time.Millisecond}})
			c := n.connect(t, tr, nil)
			st, err := conn.Open(tctx(t), c) // a new QUIC stream, or the TCP+TLS connection's one
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(rawFrame(requestBody("s", "test/flood", "{}", ""))); err != nil {
				t.Fatal(err)
			}
			// Never read: flow-control windows or socket buffers fill, the node's write stalls.
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the subscription is still writing to a peer that stopped reading")
			}
			waitIdle(t, n.d)
		})
	}
}

// waitIdle waits until d has nothing in flight and holds no partial frame.
func waitIdle(t testing.TB, d *call.Dispatcher) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for d.InFlight() != 0 || d.PartialFrameBytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in flight, %d bytes held in partial frames", d.InFlight(), d.PartialFrameBytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Slow peers: a request sent one byte per write is read whole on both transports.
func TestByteAtATimeFrames(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			n := startNode(t, nodeOpts{regs: demoRegs()})
			c := n.connect(t, tr, nil)
			st, err := conn.Open(tctx(t), c) // a new QUIC stream, or the TCP+TLS connection's one
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range rawFrame(requestBody("b", "demo/add", `{"a":40,"b":2}`, "")) {
				if _, err := st.Write([]byte{b}); err != nil {
					t.Fatal(err)
				}
			}
			if e := readEnvelope(t, st); e["type"] != "call.responded" || !strings.Contains(fmt.Sprint(e["payload"]), "42") {
				t.Fatalf("answer: %v", e)
			}
		})
	}
}

// Slow peers: a QUIC peer that vanishes (every datagram lost from then on) is dropped after
// the connection idle timeout; its handlers are aborted and nothing stays in flight.
func TestHalfOpenQUICPeer(t *testing.T) {
	var ledger handlerLedger
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{ledger.waitOp("test/wait")},
		limits: config.Limits{IdleTimeout: time.Second, KeepAlivePeriod: 200 * time.Millisecond}})
	proxy, err := newLossyProxy(n.quic, 2, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := (&client.Dialer{}).DialQUIC(ctx, proxy.Addr(), call.ALPN, tlsconf.ConnectionCredentials{RemotePin: n.key.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.Close(0, "")
	st, err := qc.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(rawFrame(requestBody("w", "test/wait", "{}", ""))); err != nil {
		t.Fatal(err)
	}
	for ledger.started.Load() == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	proxy.blackhole()
	start := time.Now()
	for ledger.ended.Load() == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if ledger.ended.Load() != 1 || ledger.cancelled.Load() != 1 {
		t.Fatalf("the handler of a vanished peer did not end (%v)", time.Since(start))
	}
	t.Logf("handler aborted %v after the peer vanished (idle timeout 1 s)", time.Since(start).Round(10*time.Millisecond))
	waitIdle(t, n.d)
}

// Defect 6: on TCP+TLS, aborting a subscription whose client stopped reading reaches the
// handler at once; the connection's only reader never waits on the blocked write.
func TestAbortWhileWriteBlocked(t *testing.T) {
	cancelled := make(chan struct{})
	var emitting atomic.Bool
	flood := streamOp("test/flood", func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
		context.AfterFunc(ctx, func() { close(cancelled) })
		pad, _ := json.Marshal(strings.Repeat("x", 4096))
		for ctx.Err() == nil {
			emitting.Store(true)
			if err := emit(append(append(js(`{"pad":`), pad...), '}')); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{flood}}) // default write timeout: 30 s
	st, err := n.connect(t, "tcp", nil).AcceptStream(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(rawFrame(requestBody("s", "test/flood", "{}", ""))); err != nil {
		t.Fatal(err)
	}
	// Let the queue and the socket buffers fill (nothing is read).
	deadline := time.Now().Add(5 * time.Second)
	for !emitting.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := st.Write(rawFrame(`{"type":"call.aborted","id":"s","payload":{}}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("the abort did not reach the handler while its write was blocked; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// Defect 7: MaxInFlightTotal bounds in-flight requests across connections.
func TestNodeWideInFlight(t *testing.T) {
	started := make(chan string, 8)
	release := make(chan struct{})
	defer close(release)
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{blockOp("test/block", started, release)},
		cfg: call.Limits{MaxInFlightTotal: 2}})
	a := n.dial(t, "quic", nil, nil, call.ConnOptions{})
	b := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
	for _, c := range []*call.Conn{a, b} {
		go func() { _, _ = c.Call(context.Background(), "test/block", js(`{}`)) }()
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("handlers did not start")
		}
	}
	for _, c := range []*call.Conn{a, b} {
		_, err := c.Call(tctx(t), "test/block", js(`{}`))
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != call.CodeInternal || !ce.Retryable() || ce.Message() != "too many in-flight requests" {
			t.Fatalf("third request: %v", err)
		}
	}
}

// recordingObserver records the operation labels and codes it is given.
type recordingObserver struct {
	mu    sync.Mutex
	ops   map[string]int
	codes map[string]int // "op code"
}

func (r *recordingObserver) CallDone(op, code string, _ time.Duration) {
	r.mu.Lock()
	r.ops[op]++
	if r.codes != nil {
		r.codes[op+" "+code]++
	}
	r.mu.Unlock()
}

// waitCalls waits until the observer has heard of n calls (it hears after the answer is written).
func (r *recordingObserver) waitCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		total := 0
		for _, v := range r.ops {
			total += v
		}
		r.mu.Unlock()
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the observer heard of %d calls, want %d", total, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Calls the caller gave up on are ABORTED and calls past their deadline TIMEOUT, never INTERNAL.
func TestObserverCodes(t *testing.T) {
	obs := &recordingObserver{ops: map[string]int{}, codes: map[string]int{}}
	n := startNode(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{RequestTimeout: 200 * time.Millisecond}, dopts: call.Options{Observer: obs}})
	for _, tr := range []string{"quic", "tcp"} {
		c := n.dial(t, tr, nil, nil, call.ConnOptions{})
		// The caller gives up (its ctx is cancelled): ABORTED.
		ctx, cancel := context.WithCancel(tctx(t))
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := c.Call(ctx, "demo/sleep", js(`{}`)); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: cancelled call: %v", tr, err)
		}
		// The caller's own timeout is shorter than the node's: it travels as timeout_ms, so
		// the node times the call out itself (or, by a hair, receives the abort first).
		if _, err := c.Call(tctx(t), "demo/sleep", js(`{}`), call.WithTimeout(50*time.Millisecond)); !errors.Is(err, call.ErrTimeout) {
			t.Fatalf("%s: client timeout: %v", tr, err)
		}
		// The node's deadline passes first.
		if _, err := c.Call(tctx(t), "demo/sleep", js(`{}`), call.WithTimeout(5*time.Second)); !errors.Is(err, call.ErrTimeout) {
			t.Fatalf("%s: node deadline: %v", tr, err)
		}
		// A subscription cancelled by its caller.
		ctx, cancel = context.WithCancel(tctx(t))
		sub, err := c.Subscribe(ctx, "demo/ticker", js(`{"count":0,"interval_ms":1}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := c.Call(tctx(t), "demo/add", js(`{"a":1}`)); !errors.Is(err, call.ErrInvalidInput) {
			t.Fatalf("%s: invalid input: %v", tr, err)
		}
	}
	obs.waitCalls(t, 10)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// The client-timeout calls: TIMEOUT, or ABORTED when the abort won the race.
	raced := obs.codes["demo/sleep TIMEOUT"] + obs.codes["demo/sleep ABORTED"] - 2 - 2
	if raced != 2 || obs.codes["demo/sleep TIMEOUT"] < 2 || obs.codes["demo/sleep ABORTED"] < 2 {
		t.Fatalf("codes: %v", obs.codes)
	}
	delete(obs.codes, "demo/sleep TIMEOUT")
	delete(obs.codes, "demo/sleep ABORTED")
	want := map[string]int{"demo/ticker ABORTED": 2, "demo/add INVALID_INPUT": 2}
	if diff := cmp.Diff(want, obs.codes); diff != "" {
		t.Fatalf("codes (-want +got):\n%s", diff)
	}
}
func (*recordingObserver) StreamOpened() {}
func (*recordingObserver) StreamClosed() {}

// Defect 2: only operations that resolved to a registration are labelled; the rest are "other".
func TestObserverLabelsRegisteredOperationsOnly(t *testing.T) {
	obs := &recordingObserver{ops: map[string]int{}}
	internal := constOp("test/internal", `{}`)
	internal.Spec.Visibility = call.VisibilityInternal
	n := startNode(t, nodeOpts{regs: append(demoRegs(), internal), dopts: call.Options{Observer: obs}})
	c := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
	for i := range 200 {
		_, _ = c.Call(tctx(t), fmt.Sprintf("nope/%d%s", i, strings.Repeat("x", 1000)), js(`{}`))
	}
	_, _ = c.Call(tctx(t), "test/internal", js(`{}`))
	_, _ = c.Call(tctx(t), "node/reload", js(`{}`)) // registered? not here: other
	if _, err := c.Call(tctx(t), "demo/add", js(`{"a":1,"b":2}`)); err != nil {
		t.Fatal(err)
	}
	// The observer hears of a call after its answer is written: wait for all 203.
	deadline := time.Now().Add(5 * time.Second)
	for {
		obs.mu.Lock()
		total := obs.ops["other"] + obs.ops["demo/add"]
		obs.mu.Unlock()
		if total >= 203 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.ops) != 2 || obs.ops["other"] != 202 || obs.ops["demo/add"] != 1 {
		t.Fatalf("labels: %v", obs.ops)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Defect 3: per-request token failures are attributed to the connection's address, limited per
// IP on anonymous connections (the IP is then refused), and per connection on a known peer's
// (closed past the limit, its IP never blocked). Item 9: the error says why.
func TestRequestTokenFailuresLimited(t *testing.T) {
	token, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	peerKey, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	admin := constOp("test/admin", `{"ok":true}`)
	admin.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	logs := &syncBuffer{}
	dyn := config.DynamicConfig{
		APIKeys:    []auth.APIKeyEntry{{Prefix: token[:8], Hash: hash, Scopes: []string{"admin"}}},
		Peers:      []auth.PeerEntry{{PeerID: "hub", Fingerprints: []string{peerKey.Fingerprint()}, Scopes: []string{"read"}, Enabled: true}},
		RateLimits: auth.RateLimits{FailuresPerMinute: 1, FailureBurst: 3},
	}
	n := startNode(t, nodeOpts{regs: []call.HandlerRegistration{admin}, dynamic: dyn,
		log: slog.New(slog.NewTextHandler(logs, nil))})

	t.Run("known peer: per connection", func(t *testing.T) {
		c := n.dial(t, "quic", peerKey, nil, call.ConnOptions{})
		for i := range 3 {
			_, err := c.Call(tctx(t), "test/admin", js(`{}`), call.WithAuthToken("alk_wrongwrongwrongwrong"))
			var ce *call.Error
			// The third failure uses up the burst: the node closes the connection, possibly
			// before its answer.
			if i < 2 && (!errors.As(err, &ce) || ce.Code() != call.CodeForbidden) {
				t.Fatalf("wrong token on a peer connection: %v", err)
			}
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the peer connection was not closed past its failure limit")
		}
		// The IP is not blocked: an anonymous connection with the valid token works.
		a := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
		if _, err := a.Call(tctx(t), "test/admin", js(`{}`), call.WithAuthToken(token)); err != nil {
			t.Fatalf("valid token from the same IP after a peer's failures: %v", err)
		}
	})

	t.Run("anonymous: per IP", func(t *testing.T) {
		c := n.dial(t, "tcp", nil, nil, call.ConnOptions{})
		for i := range 3 {
			_, err := c.Call(tctx(t), "test/admin", js(`{}`), call.WithAuthToken("alk_wrongwrongwrongwrong"))
			var ce *call.Error
			if !errors.As(err, &ce) || ce.Code() != call.CodeForbidden || ce.Message() != "unknown or revoked API key" {
				t.Fatalf("wrong token %d: %v", i, err)
			}
		}
		// Blocked: even the valid token is refused now, and the audit says so.
		_, err := c.Call(tctx(t), "test/admin", js(`{}`), call.WithAuthToken(token))
		var ce *call.Error
		if !errors.As(err, &ce) || ce.Code() != call.CodeForbidden {
			t.Fatalf("valid token from a blocked IP: %v", err)
		}
		// A new connection from the blocked IP is refused (at the handshake, or closed at once).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cn, err := (&client.Dialer{}).DialTCP(ctx, n.tcp, call.ALPN, tlsconf.ConnectionCredentials{RemotePin: n.key.Fingerprint()})
		if err == nil {
			defer cn.Close(0, "")
			st, err := cn.AcceptStream(ctx)
			if err == nil {
				_, err = io.Copy(io.Discard, st)
			}
			if ctx.Err() != nil {
				t.Fatal("a new connection from a blocked IP was kept open")
			}
		}
	})
	out := logs.String()
	if t.Failed() {
		t.Log(out)
	}
	for _, want := range []string{
		`msg=auth remote_addr=127.0.0.1 fingerprint="" peer_id="" alpn=alknet/call result=reject`,
		`msg=auth remote_addr=127.0.0.1 fingerprint=` + peerKey.Fingerprint() + ` peer_id="" alpn=alknet/call result=reject`,
		`msg=auth remote_addr=127.0.0.1 fingerprint="" peer_id="" alpn=alknet/call result=blocked`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no audit line %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) || strings.Contains(out, "wrongwrong") {
		t.Error("a token appears in the log")
	}
}

// hostileCallee answers every request with the start of a 1 MiB frame, then resets the stream.
type hostileCallee struct{}

func (hostileCallee) ALPN() string { return call.ALPN }

func (hostileCallee) Handle(ctx context.Context, c conn.Connection, _ auth.Context) error {
	for {
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return nil
		}
		go func() {
			if _, err := wire.NewFrameReader(st, 0).ReadFrame(); err != nil {
				return
			}
			_, _ = st.Write(binary.BigEndian.AppendUint32(nil, 1<<20))
			_, _ = st.Write(bytes.Repeat([]byte{' '}, 200<<10))
			time.Sleep(100 * time.Millisecond)
			st.Cancel(0)
		}()
	}
}

// A caller's partial response frames are charged to its budget while they arrive and released
// when the stream ends (QUIC streams it opened, one per call and pooled).
func TestCallerReleasesPartialFrames(t *testing.T) {
	n := startNode(t, nodeOpts{handler: hostileCallee{}})
	for _, reuse := range []int{0, 2} {
		t.Run(fmt.Sprintf("reuse=%d", reuse), func(t *testing.T) {
			d := buildDispatcher(t, nodeOpts{}, nil)
			c := n.dial(t, "quic", nil, d, call.ConnOptions{StreamReuse: reuse})
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := c.Call(tctx(t), "x/y", js(`{}`)); err == nil {
						t.Error("a call answered by a reset stream succeeded")
					}
				}()
			}
			wg.Wait()
			waitIdle(t, d)
		})
	}
}

// Defect 1: an eviction by the partial-frame budget is attributed to the peer's address (QUIC
// and TCP+TLS alike).
func TestPartialFrameBudgetLogsAddress(t *testing.T) {
	const frameMax = 256 << 10
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			logs := &syncBuffer{}
			n := startNode(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{MaxFrameSize: frameMax, MaxPartialFrameBytes: frameMax},
				log: slog.New(slog.NewTextHandler(logs, nil))})
			for range 3 { // three partial frames of 128 KiB buffers each: over the 256 KiB budget
				st, err := conn.Open(tctx(t), n.connect(t, tr, nil))
				if err != nil {
					t.Fatal(err)
				}
				_, _ = st.Write(binary.BigEndian.AppendUint32(nil, 200<<10))
				_, _ = st.Write(bytes.Repeat([]byte{' '}, 100<<10))
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), "partial frame budget exceeded") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if out := logs.String(); !strings.Contains(out, "partial frame budget exceeded") || !strings.Contains(out, "remote_addr=127.0.0.1") {
				t.Fatalf("no attributed eviction line:\n%s", out)
			}
		})
	}
}

// Early aborts (docs/protocol.md §4.2.3): an abort for an id not in flight keeps a later request
// with that id from running; at most 1,024 are kept per connection (oldest forgotten first) and
// ids over 128 bytes are not kept at all.
func TestEarlyAbortsBounded(t *testing.T) {
	n := startNode(t, nodeOpts{regs: demoRegs()})
	c := n.connect(t, "quic", nil)
	ctx := tctx(t)
	long := strings.Repeat("L", 129)
	aborts, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var frames []byte
	frames = append(frames, rawFrame(fmt.Sprintf(`{"type":"call.aborted","id":%q,"payload":{}}`, long))...)
	for i := range 1100 {
		frames = append(frames, rawFrame(fmt.Sprintf(`{"type":"call.aborted","id":"x%d","payload":{}}`, i))...)
	}
	if _, err := aborts.Write(frames); err != nil {
		t.Fatal(err)
	}
	if err := aborts.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, aborts); err != nil { // the callee FINs once it read them all
		t.Fatal(err)
	}
	// request sends one echo request on a fresh stream and reports whether it was answered.
	request := func(id string) bool {
		st, err := c.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(rawFrame(requestBody(id, "demo/echo", `{"text":"x"}`, ""))); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseWrite()
		b, err := io.ReadAll(st)
		if err != nil {
			t.Fatal(err)
		}
		return len(b) > 0
	}
	for id, answered := range map[string]bool{
		"x1099": false, // remembered: the caller gave up on it
		"x100":  false,
		"x0":    true, // forgotten: 1,100 aborts passed the 1,024 kept
		long:    true, // too long to keep
		"fresh": true,
	} {
		if got := request(id); got != answered {
			t.Errorf("request %.12s answered = %v, want %v", id, got, answered)
		}
	}
}
