//go:build cgo && !noiroh

package iroh

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

const testALPN = "alknet/test"

func newKey(t *testing.T, seed []byte) *identity.NodeKey {
	t.Helper()
	if seed == nil {
		seed = make([]byte, 32)
		for i := range seed {
			seed[i] = byte(i*7 + len(t.Name()))
		}
	}
	k, err := identity.NewNodeKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func bindLoopback(t *testing.T, k *identity.NodeKey, alpns ...string) *Transport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := Bind(ctx, Options{Key: k, ALPNs: alpns, BindAddrs: []string{"127.0.0.1:0"}, Relay: RelayDisabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// The RFC 8032 TEST 1 seed gives EndpointId d75a…511a, the same fingerprint as on QUIC.
func TestBindRFC8032Key(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	k := newKey(t, seed)
	tr := bindLoopback(t, k, testALPN)
	want := "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	if tr.Fingerprint() != want || k.Fingerprint() != want {
		t.Fatalf("fingerprint %s (key %s), want %s", tr.Fingerprint(), k.Fingerprint(), want)
	}
	if a := tr.Addr(); len(a.Addrs) == 0 || a.RelayURL != "" {
		t.Fatalf("addr %+v: want loopback addresses and no relay", a)
	}
}

// serveEcho accepts connections on tr and echoes every stream until ctx ends; the first
// accepted connection is sent on the channel (nil if Accept failed first).
func serveEcho(ctx context.Context, tr *Transport) <-chan conn.Connection {
	accepted := make(chan conn.Connection, 1)
	go func() {
		for first := true; ; first = false {
			c, err := tr.Source().Accept(ctx)
			if err != nil {
				if first {
					accepted <- nil
				}
				return
			}
			if first {
				accepted <- c
			}
			go func() {
				for {
					s, err := c.AcceptStream(ctx)
					if err != nil {
						return
					}
					go func() {
						defer func() { _ = s.Close() }()
						_, _ = io.Copy(s, s)
						_ = s.CloseWrite()
					}()
				}
			}()
		}
	}()
	return accepted
}

// echo sends msg on a new stream of c and checks it comes back.
func echo(t *testing.T, ctx context.Context, c conn.Connection, msg []byte) {
	t.Helper()
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	go func() { _, _ = s.Write(msg); _ = s.CloseWrite() }()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes: got %d, err %v", len(msg), len(got), err)
	}
}

// Two transports echo over a stream; errors and EOF follow spec §6.6.
func TestEcho(t *testing.T) {
	srv := bindLoopback(t, newKey(t, nil), testALPN)
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{9}, 32)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := serveEcho(ctx, srv)
	c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteFingerprint() != srv.Fingerprint() || c.ALPN() != testALPN || c.Transport() != conn.TransportIroh || c.RemoteAddr() != nil {
		t.Fatalf("conn: %s %s %s", c.RemoteFingerprint(), c.ALPN(), c.Transport())
	}
	sc := <-accepted
	if sc == nil || sc.RemoteFingerprint() != cli.Fingerprint() {
		t.Fatal("server side did not accept the client's key")
	}
	for _, size := range []int{1, 1000, 200 << 10} {
		echo(t, ctx, c, bytes.Repeat([]byte("x"), size))
	}
	// A read deadline ends a pending read with a timeout and leaves the stream usable.
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := s.Read(make([]byte, 10)); !errors.Is(err, conn.ErrTimeout) {
		t.Fatalf("deadline: %v", err)
	}
	_ = s.SetReadDeadline(time.Time{})
	if _, err := s.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("after deadline: %q %v", buf, err)
	}
	_ = s.Close()
	// Closing the connection reaches the peer as a remote CloseError.
	_ = c.Close(7, "bye")
	select {
	case <-sc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server side not closed")
	}
	_, err = sc.AcceptStream(ctx)
	var ce *conn.CloseError
	if !errors.As(err, &ce) || ce.Code != 7 || ce.Reason != "bye" || !ce.Remote {
		t.Fatalf("after close: %v", err)
	}
}

// Wrong key, unknown ALPN and a silent address give spec §6.2's kinds.
func TestDialErrors(t *testing.T) {
	srv := bindLoopback(t, newKey(t, nil), testALPN)
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{3}, 32)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	other := newKey(t, bytes.Repeat([]byte{4}, 32)).Fingerprint()
	for _, tc := range []struct {
		name string
		fp   string
		addr identity.IrohAddr
		alpn string
		kind client.DialKind
		is   error
	}{
		{"unknown ALPN", srv.Fingerprint(), srv.Addr(), "alknet/none", client.DialHandshake, client.ErrALPNNotNegotiated},
		{"wrong key", other, srv.Addr(), testALPN, client.DialHandshake, tlsconf.ErrPinMismatch},
		{"silent address", srv.Fingerprint(), identity.IrohAddr{Addrs: []string{"127.0.0.1:9"}}, testALPN, client.DialConnect, nil},
		{"not a key", "ed25519:zz", srv.Addr(), testALPN, client.DialConfig, nil},
		{"no address", srv.Fingerprint(), identity.IrohAddr{}, testALPN, client.DialConfig, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
			defer dcancel()
			dialer := cli
			if tc.name == "silent address" { // a fresh endpoint: cli already knows srv's address
				dialer = bindLoopback(t, newKey(t, bytes.Repeat([]byte{5}, 32)))
			}
			c, err := dialer.DialEndpoint(dctx, tc.fp, tc.addr, tc.alpn)
			if c != nil {
				_ = c.Close(0, "")
			}
			var de *client.DialError
			if !errors.As(err, &de) || de.Kind != tc.kind {
				t.Fatalf("err %v, want kind %v", err, tc.kind)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err %v is not %v", err, tc.is)
			}
		})
	}
}

// Panics in the crate's synchronous path and in a runtime task become INTERNAL / nothing, and
// neither ends the process nor a sibling connection; an endpoint iroh loses closes its
// connections (spec iroh.md §4.3, §6.8, §10.2).
func TestNativeFaults(t *testing.T) {
	srv := bindLoopback(t, newKey(t, nil), testALPN)
	cli := bindLoopback(t, newKey(t, bytes.Repeat([]byte{6}, 32)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = serveEcho(ctx, srv)
	c, err := cli.DialEndpoint(ctx, srv.Fingerprint(), srv.Addr(), testALPN)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, ctx, c, []byte("before"))
	if st := cTestFault(0, 1); st != stInternal {
		t.Fatalf("synchronous panic: status %d, want INTERNAL", st)
	}
	if st := cTestFault(0, 2); st != stOK {
		t.Fatalf("task panic: status %d", st)
	}
	if st := cTestFault(c.(*connection).h, 9); st != stArg {
		t.Fatalf("unknown fault kind: status %d, want ARG", st)
	}
	echo(t, ctx, c, []byte("after the panics"))
	if st := cTestFault(srv.ep(), 3); st != stOK { // the server's endpoint is lost under it
		t.Fatalf("kill endpoint: status %d", st)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the client's connection outlived the lost endpoint")
	}
	if _, err := c.OpenStream(ctx); !errors.Is(err, conn.ErrConnectionClosed) {
		t.Fatalf("open after the peer's endpoint was lost: %v", err)
	}
	// The server re-binds on the same key (and port, now free) and serves again (§6.8).
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c2, err := cli.DialEndpoint(dctx, srv.Fingerprint(), srv.Addr(), testALPN)
		dcancel()
		if err == nil {
			echo(t, ctx, c2, []byte("after the re-bind"))
			_ = c2.Close(0, "")
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no re-bind: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
