//go:build cgo && !noiroh

package iroh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/tlsconf"
)

var watchedSignals = []syscall.Signal{syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGPIPE, syscall.SIGCHLD, syscall.SIGINT, syscall.SIGURG}

// sigsAtStart holds each watched signal's handler as TestMain found it (Go's).
var sigsAtStart map[syscall.Signal]uintptr

func sigHandlers() map[syscall.Signal]uintptr {
	m := map[syscall.Signal]uintptr{}
	for _, s := range watchedSignals {
		m[s] = cSigHandler(int(s))
	}
	return m
}

// After a bind (the runtime's threads started, iroh's sockets open), sigaction for SIGSEGV,
// SIGBUS, SIGPIPE, SIGCHLD, SIGINT and SIGURG still names Go's handlers (spec iroh.md §10.2).
func TestSignalHandlersSurviveBind(t *testing.T) {
	_ = bindLoopback(t, newKey(t, nil), testALPN)
	if sigsAtStart[syscall.SIGSEGV] == 0 || sigsAtStart[syscall.SIGSEGV] == 1 {
		t.Fatalf("SIGSEGV had no Go handler at start: %#x", sigsAtStart[syscall.SIGSEGV])
	}
	for s, h := range sigHandlers() {
		if h != sigsAtStart[s] {
			t.Errorf("%v: handler %#x after bind, %#x at start", s, h, sigsAtStart[s])
		}
	}
}

// A runtime worker writing (vectored, as rustls does) to a TCP socket its peer reset gets
// EPIPE or ECONNRESET and the process lives on: the worker blocks SIGPIPE (the fault checks its
// mask first and answers INTERNAL when SIGPIPE is not blocked), spec §4.3.
func TestSIGPIPEOnARuntimeThread(t *testing.T) {
	_ = bindLoopback(t, newKey(t, nil)) // the runtime and the poller run
	cp, _, o := issue(func(tok uint64, _ *completion) int32 { return cTestFault(tok, 4) })
	if o != nil {
		cp = await(context.Background(), 0, o)
	}
	msg := cMessage(cp.detail)
	if cp.status != stTransport || !strings.Contains(msg, "Broken pipe") && !strings.Contains(msg, "reset") {
		t.Fatalf("the write to a reset socket: status %d %q", cp.status, msg)
	}
}

// Cancels racing opens, accepts and reads leave no handle behind, and a completion nobody
// reads releases what it carries (§12.3).
func TestCancelRacesLeaveNoHandles(t *testing.T) {
	srv := bindLoopback(t, newKey(t, nil), testALPN)
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{31}, 32)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	accepted := serveEcho(ctx, srv)
	c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(0, "")
	sc := <-accepted
	base := NativeStats().Handles
	for i := range 300 {
		octx, ocancel := context.WithTimeout(ctx, time.Duration(i%4)*200*time.Microsecond)
		if s, err := c.OpenStream(octx); err == nil {
			_ = s.SetReadDeadline(time.Now().Add(time.Duration(i%3) * 100 * time.Microsecond))
			_, _ = s.Read(make([]byte, 8))
			s.Cancel(0)
			_ = s.Close()
		}
		if s, err := sc.AcceptStream(octx); err == nil { // streams the echo loop did not take
			_ = s.Close()
		}
		ocancel()
	}
	echo(t, ctx, c, []byte("still fine"))
	waitHandles(t, base)
	// A completion nobody awaits releases its handle.
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := s.(*stream).h
	s.(*stream).h = 0 // the adapter forgets it, as if its owner were gone
	abandon(completion{status: stOK, value: h})
	if st := cRelease(h); st != stHandle {
		t.Fatalf("the abandoned stream handle is still live (release: %d)", st)
	}
	waitHandles(t, base)
}

func waitHandles(t *testing.T, want uint64) {
	t.Helper()
	for range 200 {
		if NativeStats().Handles <= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("native handles: %d, want %d", NativeStats().Handles, want)
}

// Close racing a blocked Read (the stream's, then the connection's) ends the Read with an
// error; nothing crashes and no handle is left (§6.5: no handle is released while in use).
func TestCloseRacingReads(t *testing.T) {
	srv := bindLoopback(t, newKey(t, nil), testALPN)
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{32}, 32)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = serveEcho(ctx, srv)
	base := NativeStats().Handles
	for i := range 20 {
		c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			s, err := c.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Read(make([]byte, 16)) // blocks: the echo has nothing to send
				if err == nil || errors.Is(err, io.EOF) && i%2 == 1 {
					return // a connection close may reach a read as EOF of the reset stream
				}
			}()
			go func() {
				time.Sleep(time.Duration(i) * 100 * time.Microsecond)
				if i%2 == 0 {
					_ = s.Close()
				}
			}()
		}
		if i%2 == 1 {
			time.Sleep(time.Duration(i) * 100 * time.Microsecond)
			_ = c.Close(0, "racing reads")
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("cycle %d: a read outlived its close", i)
		}
		_ = c.Close(0, "")
	}
	waitHandles(t, base)
}

type echoHandler struct{ alpn string }

func (e echoHandler) ALPN() string { return e.alpn }

func (e echoHandler) Handle(ctx context.Context, c conn.Connection, _ auth.Context) error {
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return nil
		}
		go func() { defer s.Close(); _, _ = io.Copy(s, s); _ = s.CloseWrite() }()
	}
}

// An iroh endpoint killed under a node while QUIC calls run (§9, §10.2): its connections end
// within 1 s, every QUIC round trip succeeds, the node's Run keeps going, and the re-bound
// endpoint serves iroh again on the same key.
func TestKilledEndpointUnderQUICCalls(t *testing.T) {
	key := newKey(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := Bind(ctx, Options{Key: key, ALPNs: []string{testALPN}, BindAddrs: []string{"127.0.0.1:0"}, Relay: RelayDisabled})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	a := tr.Addr()
	h, err := host.New(host.Options{Key: key, Logger: slog.New(slog.DiscardHandler), Sources: []endpoint.Source{tr.Source()}, Iroh: &a, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(echoHandler{testALPN}); err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{33}, 32)))
	ic, err := cli.DialEndpoint(ctx, tr.Fingerprint(), tr.Addr(), testALPN)
	if err != nil {
		t.Fatal(err)
	}
	qc, err := (&client.Dialer{}).DialQUIC(ctx, h.QUICAddrs()[0].String(), testALPN, tlsconf.ConnectionCredentials{RemotePin: key.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.Close(0, "")
	stopCalls := make(chan struct{})
	quicErr := make(chan error, 1)
	calls := 0
	go func() {
		defer close(quicErr)
		for {
			select {
			case <-stopCalls:
				return
			default:
			}
			if err := roundTrip(ctx, qc, []byte("quic")); err != nil {
				quicErr <- err
				return
			}
			calls++
		}
	}()
	time.Sleep(50 * time.Millisecond)
	killed := time.Now()
	if st := cTestFault(tr.ep(), 3); st != stOK {
		t.Fatalf("kill: %d", st)
	}
	select {
	case <-ic.Done():
		if d := time.Since(killed); d > time.Second {
			t.Errorf("the iroh connection ended %v after the endpoint was lost, want within 1 s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the iroh connection outlived its endpoint")
	}
	// The re-bound endpoint serves again while QUIC keeps going.
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c2, err := cli.DialEndpoint(dctx, tr.Fingerprint(), tr.Addr(), testALPN)
		dcancel()
		if err == nil {
			if err := roundTrip(ctx, c2, []byte("iroh again")); err != nil {
				t.Fatal(err)
			}
			_ = c2.Close(0, "")
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no re-bind: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stopCalls)
	if err := <-quicErr; err != nil {
		t.Fatalf("a QUIC call failed after %d while iroh was lost: %v", calls, err)
	}
	select {
	case <-h.Done():
		t.Fatalf("the node stopped: %v", h.Err())
	default:
	}
	if calls == 0 {
		t.Fatal("no QUIC call ran")
	}
}

func roundTrip(ctx context.Context, c conn.Connection, msg []byte) error {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Write(msg); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs")
	}
	return nil
}
