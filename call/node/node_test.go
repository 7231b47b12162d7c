package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/conn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A node serves built-in, discovery and demo operations on QUIC and TCP+TLS on one port; clients
// reach it by ticket on either transport and by address and pin; new limits reach new
// connections; closing a client ends its Conn.
func TestNodeServesAndDials(t *testing.T) {
	n, err := node.Start(node.Options{Demo: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	q, tc := n.QUICAddrs()[0].(*net.UDPAddr), n.TCPAddrs()[0].(*net.TCPAddr)
	if q.Port != tc.Port {
		t.Fatalf("QUIC %v and TCP %v on different ports", q, tc)
	}
	ctx := context.Background()
	for _, tr := range []conn.Transport{conn.TransportQUIC, conn.TransportTCPTLS} {
		t.Run(string(tr), func(t *testing.T) {
			c, err := node.Dial(ctx, n.TicketString(), node.DialOptions{Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.Connection().Transport(); got != tr {
				t.Fatalf("dialled %s, got %s", tr, got)
			}
			for op, in := range map[string]string{"node/info": `{}`, "services/list": `{}`, "demo/echo": `{"text":"x"}`} {
				if _, err := c.Call(ctx, op, json.RawMessage(in)); err != nil {
					t.Fatalf("%s: %v", op, err)
				}
			}
		})
	}
	c, err := node.DialAddr(ctx, tc.String(), n.Fingerprint(), node.DialOptions{Transport: conn.TransportTCPTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SetLimits(call.Limits{MaxInFlight: 7}, call.ConnOptions{}); err != nil || n.Dispatcher().Limits().MaxInFlight != 7 {
		t.Fatalf("SetLimits: %v", err)
	}
	_ = c.Close()
	if _, err := c.Call(ctx, "node/health", nil); !errors.Is(err, call.ErrInternal) {
		t.Fatalf("a call on a closed Conn: %v", err)
	}
	if _, err := node.Dial(ctx, "alk1nonsense", node.DialOptions{}); err == nil {
		t.Fatal("a bad ticket dialled")
	}
}
