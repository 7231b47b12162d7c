package call

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/alkdev/alknet/core"
)

// Ingress is how front ends that are not alknet/call connections (HTTP, MCP, the Node
// binding, tests) enter the same pipeline as a wire call.requested (§15.7).
type Ingress interface {
	Resolve(ctx context.Context, conn *core.Identity, token string) *core.Identity
	Visible(ctx context.Context, id *core.Identity) []OperationSpec
	Call(ctx context.Context, r RootRequest) (json.RawMessage, error)
	Subscribe(ctx context.Context, r RootRequest, emit func(json.RawMessage) error) error
}

// RootRequest is one request from an in-process front end.
type RootRequest struct {
	ID, Operation string // ID "" → fresh UUID v4
	Input         json.RawMessage
	ConnIdentity  *core.Identity // e.g. from a TLS client certificate
	AuthToken     string         // resolved as auth_token (§15.6)
	// TokenRejected: the front end already resolved (and rejected) a token for this request
	// and sends AuthToken "": an anonymous FORBIDDEN then reads "unknown or revoked API key".
	TokenRejected bool
	// Timeout is the caller's budget (e.g. HTTP Alknet-Timeout-Ms): the deadline is arrival +
	// min(Timeout, RequestTimeout), for a subscription arrival + Timeout. 0: §13's defaults.
	Timeout time.Duration
	// OnStart, if set, is called once after every check passed, just before the handler runs
	// (a front end then commits to a streamed answer; earlier failures are plain errors).
	OnStart func()
	// A front end with a transport address puts it in ctx (auth.NewContext with RemoteAddr and
	// ALPN): tokens are then limited and audited per address as on the wire (docs/security.md).
	Ingress string // "http", "mcp", "napi", …: audit logs only
}

var _ Ingress = (*Dispatcher)(nil)

func (d *Dispatcher) ingressRoot(ctx context.Context, r RootRequest) (*root, *Error) {
	if r.ID == "" {
		r.ID = newUUID()
	}
	// An ingress root counts against the node-wide in-flight budget as a wire request does.
	if !d.reserveInFlight() {
		return nil, &Error{code: CodeInternal, message: "too many in-flight requests", retryable: true}
	}
	rt, ce := d.ingressRootReserved(ctx, r)
	if ce != nil {
		d.inflight.Add(-1)
		return nil, ce
	}
	release := rt.cancel
	rt.cancel = func() { release(); d.inflight.Add(-1) }
	return rt, nil
}

func (d *Dispatcher) ingressRootReserved(ctx context.Context, r RootRequest) (*root, *Error) {
	id, rejected := d.resolveRequest(ctx, r.ConnIdentity, r.AuthToken, r.AuthToken != "")
	in := rootInput{id: r.ID, op: r.Operation, input: r.Input, identity: id, tokenRejected: rejected || r.TokenRejected}
	if r.Timeout <= 0 {
		return d.startRoot(ctx, in)
	}
	ms := max(r.Timeout.Milliseconds(), 1)
	rctx, cancel := d.requestContext(ctx, d.rootRegistration(r.Operation), ms)
	in.ownCtx = true
	rt, ce := d.startRoot(rctx, in)
	if ce != nil {
		cancel()
		return nil, ce
	}
	rt.cancel = cancel
	return rt, nil
}

// ingressErr is the error of an ingress root whose context ended: TIMEOUT when a deadline
// passed (the root's own or the front end's, e.g. an HTTP client's budget), else cancelled.
func ingressErr(ctx, rctx context.Context) *Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return errDeadline()
	}
	return errCancelled(ctx.Err())
}

// Call runs a query or mutation root. Cancelling ctx aborts it with cascade; errors are *Error.
func (d *Dispatcher) Call(ctx context.Context, r RootRequest) (json.RawMessage, error) {
	rt, ce := d.ingressRoot(ctx, r)
	if ce != nil {
		return nil, ce
	}
	defer rt.cancel()
	if rt.reg.Spec.Type == OpSubscription {
		return nil, &Error{code: CodeInvalidOperationType, message: "operation is a subscription: use Subscribe"}
	}
	type result struct {
		out json.RawMessage
		err *Error
	}
	if r.OnStart != nil {
		r.OnStart()
	}
	done := make(chan result, 1)
	go func() {
		out, ce := d.runHandler(rt.ctx, rt.oc, rt.reg, rt.input)
		done <- result{out, ce}
	}()
	select {
	case res := <-done:
		if rt.ctx.Err() != nil {
			return nil, ingressErr(ctx, rt.ctx) // the deadline or cancel came first (§7.3.6)
		}
		if res.err != nil {
			return nil, res.err
		}
		return res.out, nil
	case <-rt.ctx.Done():
		rt.oc.node.aborted.Store(true)
		return nil, ingressErr(ctx, rt.ctx)
	}
}

// Subscribe runs a subscription root; emit blocks (back-pressure). nil means completed.
func (d *Dispatcher) Subscribe(ctx context.Context, r RootRequest, emit func(json.RawMessage) error) error {
	rt, ce := d.ingressRoot(ctx, r)
	if ce != nil {
		return ce
	}
	defer rt.cancel()
	if rt.reg.Spec.Type != OpSubscription {
		return &Error{code: CodeInvalidOperationType, message: "operation is not a subscription: use Call"}
	}
	if r.OnStart != nil {
		r.OnStart()
	}
	if ce := d.runStream(rt.ctx, rt.oc, rt.reg, rt.input, emit); ce != nil {
		if rt.ctx.Err() != nil {
			rt.oc.node.aborted.Store(true)
			return ingressErr(ctx, rt.ctx)
		}
		return ce
	}
	if rt.ctx.Err() != nil {
		return ingressErr(ctx, rt.ctx)
	}
	return nil
}
