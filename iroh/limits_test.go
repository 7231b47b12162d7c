//go:build cgo && !noiroh

package iroh

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
)

// A per-IP limit of 1: the second live connection from the same address is refused before
// the handshake and counted (spec iroh.md §5.2).
func TestPerIPLimitBeforeHandshake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := Bind(ctx, Options{Key: newKey(t, nil), ALPNs: []string{testALPN}, BindAddrs: []string{"127.0.0.1:0"},
		Limits: config.Limits{MaxConnectionsPerIP: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_ = serveEcho(ctx, srv)
	first := bindLoopback(t, newKey(t, bytes.Repeat([]byte{11}, 32)))
	second := bindLoopback(t, newKey(t, bytes.Repeat([]byte{12}, 32)))
	c, err := first.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, ctx, c, []byte("one"))
	before := NativeStats().RefusedLimitIP
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	c2, err := second.DialEndpoint(dctx, srv.Fingerprint(), srv.Addr(), testALPN)
	dcancel()
	var de *client.DialError
	if err == nil || !errors.As(err, &de) || de.Kind != client.DialConnect {
		if c2 != nil {
			_ = c2.Close(0, "")
		}
		t.Fatalf("second connection from 127.0.0.1: %v, want a refusal (DialConnect)", err)
	}
	if NativeStats().RefusedLimitIP <= before {
		t.Fatal("the refusal was not counted as limit_ip")
	}
	// Once the first connection ends, the address may connect again.
	_ = c.Close(0, "")
	<-c.Done()
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c3, err := second.DialEndpoint(dctx, srv.Fingerprint(), srv.Addr(), testALPN)
		dcancel()
		if err == nil {
			_ = c3.Close(0, "")
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the slot never came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 100 dial/echo/close cycles leak no threads, file descriptors or native handles (spec iroh.md
// §10.3); the seed never reaches iroh's log, even at trace level (§12.5).
func TestCyclesLeakNothing(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("needs /proc")
	}
	seed := bytes.Repeat([]byte{0xC4, 0x7A}, 16) // the canary
	var logs syncBuffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The runtime and the poller start with the first bind and live on: start them first.
	warm := bindLoopback(t, newKey(t, bytes.Repeat([]byte{14}, 32)))
	_ = warm.Close()
	fds0 := count(t, "/proc/self/fd")
	srv, err := Bind(ctx, Options{Key: newKey(t, seed), ALPNs: []string{testALPN}, BindAddrs: []string{"127.0.0.1:0"}, LogLevel: "trace", Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	_ = serveEcho(sctx, srv)
	cli, err := Bind(ctx, Options{Key: newKey(t, bytes.Repeat([]byte{13}, 32)), BindAddrs: []string{"127.0.0.1:0"}, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	var tasks10 int
	for i := range 100 {
		c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		echo(t, ctx, c, []byte("cycle"))
		_ = c.Close(0, "")
		<-c.Done()
		if i == 9 {
			tasks10 = count(t, "/proc/self/task")
		}
	}
	if tasks := count(t, "/proc/self/task"); tasks > tasks10+4 {
		t.Errorf("threads: %d at cycle 100, %d at cycle 10", tasks, tasks10)
	}
	scancel()
	_ = cli.Close()
	_ = srv.Close()
	if fds := count(t, "/proc/self/fd"); fds > fds0+2 {
		t.Errorf("file descriptors: %d after, %d before", fds, fds0)
	}
	for range 100 { // handles of the last closes are released by the poller's callbacks
		if s := NativeStats(); s.Handles == 0 && s.Tokens == 0 && s.ChunkBytes == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := NativeStats(); s.Handles != 0 || s.Tokens != 0 || s.ChunkBytes != 0 {
		t.Errorf("native state left after Close: %+v", s)
	}
	if text := logs.String(); strings.Contains(strings.ToLower(text), hex.EncodeToString(seed)) || !strings.Contains(text, "iroh") {
		t.Errorf("the canary seed is in the log, or the trace log is empty (%d bytes)", len(text))
	}
	cLogLevel(2) // back to warn for the other tests
}

func count(t *testing.T, dir string) int {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

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

// A reader that stops reading stalls the remote writer within the stream window (1 MiB, spec
// iroh.md §5.1), and streams past MaxIncomingStreams wait for one to end (§12.8).
func TestFlowControlBounds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := Bind(ctx, Options{Key: newKey(t, nil), ALPNs: []string{testALPN}, BindAddrs: []string{"127.0.0.1:0"},
		Limits: config.Limits{MaxIncomingStreams: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	accepted := make(chan conn.Stream, 8)
	go func() { // accepts streams and never reads them
		c, err := srv.Source().Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close(0, "")
		for {
			s, err := c.AcceptStream(ctx)
			if err != nil {
				return
			}
			accepted <- s
		}
	}()
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{15}, 32)))
	c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(0, "")
	s1, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	written := 0
	for written < 8<<20 {
		_ = s1.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := s1.Write(chunk)
		written += n
		if errors.Is(err, conn.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatalf("write after %d bytes: %v", written, err)
		}
	}
	if written > 1<<20+256<<10 {
		t.Fatalf("the writer got %d bytes past a reader that reads nothing, want at most the 1 MiB window and a chunk", written)
	}
	s2, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-accepted:
		case <-ctx.Done():
			t.Fatal("the first two streams did not arrive")
		}
	}
	// A third stream waits: the open does not complete while two are live.
	octx, ocancel := context.WithTimeout(ctx, 300*time.Millisecond)
	s3, err := c.OpenStream(octx)
	if err == nil {
		_, err = s3.Write([]byte("y"))
		if err == nil {
			select {
			case <-accepted:
				t.Fatal("a third stream past MaxIncomingStreams reached the server")
			case <-octx.Done():
			}
		}
		s3.Cancel(0)
		_ = s3.Close()
	}
	ocancel()
	s2.Cancel(0)
	_ = s2.Close()
	s1.Cancel(0)
	_ = s1.Close()
}

// Relay mode disabled with a loopback bind opens no IP socket beyond loopback and names no relay
// (spec iroh.md §12.10): every UDP and TCP socket the bind added is bound to 127.0.0.1.
func TestDisabledOpensOnlyLoopback(t *testing.T) {
	warm := bindLoopback(t, newKey(t, bytes.Repeat([]byte{16}, 32))) // the runtime's own fds first
	_ = warm.Close()
	before := socketInodes(t)
	tr := bindLoopback(t, newKey(t, nil), testALPN)
	if a := tr.Addr(); a.RelayURL != "" {
		t.Fatalf("relay %q with relays disabled", a.RelayURL)
	}
	for _, ap := range tr.BoundSockets() {
		if !ap.Addr().IsLoopback() {
			t.Errorf("bound %v", ap)
		}
	}
	added := 0
	for inode := range socketInodes(t) {
		if before[inode] {
			continue
		}
		local, ok := ipSockets(t)[inode]
		if !ok {
			continue // not an IP socket (netlink for the network monitor, eventfds)
		}
		added++
		if !strings.HasPrefix(local, "0100007F:") { // 127.0.0.1 in /proc/net's little-endian hex
			t.Errorf("an IP socket bound to %s (hex), not loopback", local)
		}
	}
	if added == 0 {
		t.Fatal("the bind added no IP socket: the check saw nothing")
	}
}

// socketInodes are the inodes of this process's sockets.
func socketInodes(t *testing.T) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("needs /proc")
	}
	out := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// ipSockets maps the inodes of the UDP and TCP sockets in /proc/self/net to their local address.
func ipSockets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"udp", "udp6", "tcp", "tcp6"} {
		data, err := os.ReadFile("/proc/self/net/" + f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 9 {
				out[fields[9]] = fields[1]
			}
		}
	}
	return out
}

// A backlog that Go does not drain refuses the overflow: a finished connection that finds the
// backlog full is closed with code 4 "limit" and counted; the waiting one is still accepted
// (spec iroh.md §5.2, §12.8).
func TestBacklogOverflowRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := Bind(ctx, Options{Key: newKey(t, nil), ALPNs: []string{testALPN}, BindAddrs: []string{"127.0.0.1:0"},
		Backlog: 1, Limits: config.Limits{MaxConnectionsPerIP: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	before := NativeStats().RefusedBacklog
	var conns []conn.Connection
	var keys []string
	defer func() {
		for _, c := range conns {
			_ = c.Close(0, "")
		}
	}()
	for i := range 2 { // nobody accepts: the first waits in the backlog, the second overflows it
		cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{byte(40 + i)}, 32)))
		c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns, keys = append(conns, c), append(keys, cli.Fingerprint())
	}
	select {
	case <-conns[1].Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection past the backlog was kept")
	}
	_, err = conns[1].AcceptStream(ctx)
	var ce *conn.CloseError
	if !errors.As(err, &ce) || ce.Code != 4 || ce.Reason != "limit" || !ce.Remote {
		t.Fatalf("overflow closed with %v, want code 4 limit", err)
	}
	if NativeStats().RefusedBacklog <= before {
		t.Fatal("the overflow was not counted as backlog")
	}
	ac, err := srv.Source().Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close(0, "")
	if ac.RemoteFingerprint() != keys[0] {
		t.Fatalf("accepted %s, want the first client %s", ac.RemoteFingerprint(), keys[0])
	}
}
