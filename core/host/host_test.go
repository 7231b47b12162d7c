package host_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/internal/testnode"

	"go.uber.org/goleak"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A host on port 0 serves QUIC and TCP+TLS on one port number, and its ticket reaches both.
func TestHostSamePortAndTicket(t *testing.T) {
	h, err := host.New(host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(testnode.NewEcho("alknet/echo")); err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())
	q, tc := h.QUICAddrs()[0].(*net.UDPAddr), h.TCPAddrs()[0].(*net.TCPAddr)
	if q.Port != tc.Port || q.Port == 0 {
		t.Fatalf("QUIC on %v, TCP on %v: want one port number", q, tc)
	}
	tk := h.Ticket()
	s, err := tk.Encode()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := identity.ParseTicket(s)
	if err != nil || parsed.Fingerprint != h.Fingerprint() || parsed.QUIC[0] != q.String() || parsed.TCP[0] != tc.String() {
		t.Fatalf("ticket %+v (%v)", parsed, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, dial := range []func() (conn.Connection, error){
		func() (conn.Connection, error) {
			return (&client.Dialer{}).DialQUIC(ctx, q.String(), "alknet/echo", h.Credentials(nil))
		},
		func() (conn.Connection, error) {
			return (&client.Dialer{}).DialTCP(ctx, tc.String(), "alknet/echo", h.Credentials(nil))
		},
	} {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		st, err := conn.Open(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = st.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo over %s: %q %v", c.Transport(), buf, err)
		}
		_ = c.Close(0, "")
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-h.Done()
	if err := h.Shutdown(ctx); err != nil || h.Err() != nil {
		t.Fatalf("second shutdown: %v, Err %v", err, h.Err())
	}
}
