package node_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/node"
)

// A node serving one operation over QUIC and TCP+TLS, on one free loopback port.
func ExampleStart() {
	n, err := node.Start(node.Options{
		Registrations: []call.HandlerRegistration{{
			Spec: call.OperationSpec{Name: "greet/hello", Type: call.OpQuery, Visibility: call.VisibilityExternal},
			Handler: func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
				var req struct{ Name string }
				_ = json.Unmarshal(in, &req)
				return json.Marshal("hello, " + req.Name)
			},
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Shutdown(context.Background())
	// A real program prints the ticket and waits for a signal; here a client calls at once.
	c, _ := node.Dial(context.Background(), n.TicketString(), node.DialOptions{})
	defer c.Close()
	out, err := c.Call(context.Background(), "greet/hello", json.RawMessage(`{"name":"ada"}`))
	fmt.Println(string(out), err)
	// Output: "hello, ada" <nil>
}

// A program calling an operation on a node it knows by its ticket (here, a demo node).
func ExampleDial() {
	server, _ := node.Start(node.Options{Demo: true})
	defer server.Shutdown(context.Background())
	ticket := server.TicketString() // what `alknet serve` prints and writes to node.ticket

	ctx := context.Background()
	c, err := node.Dial(ctx, ticket, node.DialOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	out, err := c.Call(ctx, "demo/add", json.RawMessage(`{"a":1,"b":2}`))
	fmt.Println(string(out), err)
	// Output: {"sum":3} <nil>
}
