// Package call implements alknet/call: schema-described, access-controlled operations that
// machines call on each other by identity, over the connections of package core
// (github.com/alkdev/alknet/core). The protocol is described in docs/protocol.md; section
// references (§n) in this package's comments and tests are to that file.
//
// The pieces, in the order a request meets them:
//
//   - A Registry holds the node's operations: an OperationSpec (name, type, schemas, access
//     control, visibility) and its Handler or StreamingHandler, built once with a
//     RegistryBuilder and immutable afterwards.
//   - A Dispatcher runs operations of a registry for every front end: it resolves per-request
//     tokens through a core.IdentityProvider (pass the core Authenticator, so attempts are
//     limited and audited), checks access, validates inputs and outputs, applies deadlines
//     and limits (Limits), and cascades aborts through every call a request caused.
//   - A Conn speaks the protocol over one core.Connection, in both directions: it serves the
//     peer's requests against its Dispatcher and issues calls of its own (Call, Subscribe,
//     Batch). ProtocolHandler plugs Conns into a core endpoint, one per accepted connection.
//   - Handlers reach other operations through their OperationContext's Env, a composite of
//     layers (the node's registry, operations a peer connection imported, session overlays),
//     narrowed by a ScopedEnv.
//   - Front ends that are not alknet/call connections (HTTP, MCP, the Node binding, tests)
//     enter the same pipeline through the Ingress interface that Dispatcher implements.
//
// A node serving one operation:
//
//	b := call.NewRegistryBuilder()
//	_ = b.Register(call.HandlerRegistration{
//		Spec: call.OperationSpec{Name: "demo/echo", Type: call.OpQuery, Visibility: call.External},
//		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
//			return in, nil
//		},
//	})
//	reg, _ := b.Build()
//	d, _ := call.NewDispatcher(reg, call.Options{Identities: authenticator})
//	registry, _ := endpoint.NewRegistry(call.NewProtocolHandler(d, call.ConnOptions{}))
//
// and a client calling it over a connection dialled with core's client package:
//
//	c := call.NewConn(connection, nil, call.ConnOptions{})
//	go c.Run(ctx)
//	out, err := c.Call(ctx, "demo/echo", json.RawMessage(`{"text":"hi"}`))
//
// The wire format (frames, envelopes, event payloads), the JSON scanner and the schema
// machinery live in internal packages: call/internal/wire, call/internal/jsonscan and
// call/internal/schema.
package call
