package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/conn"
)

// serve runs a Conn for one end of an in-memory connection pair and returns the other end's
// running Conn and a function that closes both.
func serve(d *call.Dispatcher) (*call.Conn, func()) {
	a, b := conn.Pipe(call.ALPN)
	server, client := call.NewConn(a, d, call.ConnOptions{}), call.NewConn(b, nil, call.ConnOptions{})
	done := make(chan struct{}, 2)
	go func() { _ = server.Run(context.Background()); done <- struct{}{} }()
	go func() { _ = client.Run(context.Background()); done <- struct{}{} }()
	return client, func() { _ = a.Close(0, ""); _ = b.Close(0, ""); <-done; <-done }
}

// An operation served over a connection and called from the other end.
func Example() {
	b := call.NewRegistryBuilder()
	_ = b.Register(call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: "greet/hello", Type: call.OpQuery, Visibility: call.VisibilityExternal,
			InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`),
		},
		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var req struct{ Name string }
			if err := json.Unmarshal(in, &req); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]string{"greeting": "hello, " + req.Name})
		},
	})
	reg, _ := b.Build()
	d, _ := call.NewDispatcher(reg, call.Options{})
	c, stop := serve(d)
	defer stop()

	out, err := c.Call(context.Background(), "greet/hello", json.RawMessage(`{"name":"ada"}`))
	fmt.Println(string(out), err)
	_, err = c.Call(context.Background(), "greet/hello", json.RawMessage(`{}`))
	fmt.Println(errors.Is(err, call.ErrInvalidInput))
	// Output:
	// {"greeting":"hello, ada"} <nil>
	// true
}

// A subscription read item by item and then aborted: the handler's context ends, on this node
// and on every node its calls reached.
func ExampleConn_Subscribe() {
	ended := make(chan error, 1)
	b := call.NewRegistryBuilder()
	_ = b.Register(call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "clock/ticks", Type: call.OpSubscription, Visibility: call.VisibilityExternal},
		Stream: func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage, emit func(json.RawMessage) error) error {
			for i := 0; ; i++ {
				if err := emit(json.RawMessage(fmt.Sprintf(`{"tick":%d}`, i))); err != nil {
					ended <- ctx.Err()
					return err
				}
			}
		},
	})
	reg, _ := b.Build()
	d, _ := call.NewDispatcher(reg, call.Options{})
	c, stop := serve(d)
	defer stop()

	sub, _ := c.Subscribe(context.Background(), "clock/ticks", nil)
	for range 3 {
		item, _ := sub.Recv()
		fmt.Println(string(item))
	}
	_ = sub.Close() // aborts the subscription on the node
	fmt.Println("handler ended:", <-ended)
	// Output:
	// {"tick":0}
	// {"tick":1}
	// {"tick":2}
	// handler ended: context canceled
}

// An operation composed of another through its Env: it may call only what its ScopedEnv
// lists, and the call is checked against its own authority, not the caller's identity.
func ExampleOperationEnv() {
	b := call.NewRegistryBuilder()
	_ = b.Register(call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "math/add", Type: call.OpQuery, Visibility: call.VisibilityInternal,
			AccessControl: call.AccessControl{RequiredScopes: []string{"math"}}},
		Handler: func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var p struct{ A, B int }
			_ = json.Unmarshal(in, &p)
			return json.Marshal(p.A + p.B)
		},
	})
	scope := call.NewScopedEnv("math/add")
	_ = b.Register(call.HandlerRegistration{
		Spec:      call.OperationSpec{Name: "math/double", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		Authority: &call.CompositionAuthority{Label: "math/double", Scopes: []string{"math"}},
		ScopedEnv: &scope,
		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var n int
			_ = json.Unmarshal(in, &n)
			return oc.Env.Invoke(ctx, oc, "math/add", json.RawMessage(fmt.Sprintf(`{"a":%d,"b":%d}`, n, n)))
		},
	})
	reg, _ := b.Build()
	d, _ := call.NewDispatcher(reg, call.Options{})
	c, stop := serve(d)
	defer stop()

	out, _ := c.Call(context.Background(), "math/double", json.RawMessage(`21`))
	fmt.Println(string(out))
	_, err := c.Call(context.Background(), "math/add", json.RawMessage(`{"a":1,"b":2}`))
	fmt.Println(err) // internal operations are not reachable from the wire
	// Output:
	// 42
	// NOT_FOUND: operation not found: math/add
}

// Access control is declared with the operation and checked before its input and its handler.
func ExampleAccessControl() {
	b := call.NewRegistryBuilder()
	_ = b.Register(call.HandlerRegistration{
		Spec: call.OperationSpec{Name: "admin/wipe", Type: call.OpMutation, Visibility: call.VisibilityExternal,
			AccessControl: call.AccessControl{RequiredScopes: []string{"admin"}}},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`"wiped"`), nil
		},
	})
	reg, _ := b.Build()
	d, _ := call.NewDispatcher(reg, call.Options{})
	c, stop := serve(d) // an anonymous peer: no identity on the connection
	defer stop()

	_, err := c.Call(context.Background(), "admin/wipe", nil)
	var ce *call.Error
	if errors.As(err, &ce) {
		fmt.Println(ce.Code(), ce.Message(), ce.IsRemote())
	}
	// Output:
	// FORBIDDEN authentication required true
}
