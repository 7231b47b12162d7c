package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/alkdev/alknet/call/internal/jsonscan"
)

// RunRegistration runs reg as a composed child of parent (§11.3): depth and abort checks, the
// child context (authority switch), access control, kind check, input validation, handler and
// error mapping. It returns no later than ctx's deadline (TIMEOUT) or cancellation ("request
// cancelled"), without waiting for the child. Overlay layers in other modules call it.
func RunRegistration(ctx context.Context, parent *OperationContext, reg *Registration, input json.RawMessage, p AbortPolicy) (json.RawMessage, error) {
	d := dispatcherOf(parent)
	if parent.depth+1 > d.cfg.MaxCompositionDepth {
		return nil, errInternal(msgDepthExceeded, nil)
	}
	if parent.node.abortedUp() || ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return nil, errDeadline()
		}
		return nil, errCancelled(ctx.Err())
	}
	child := ChildContext(parent, reg, p)
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	if ce := checkAccess(ctx, &reg.Spec, child.Identity, child.Ownership, input, d.log.Warn); ce != nil {
		return nil, ce
	}
	if reg.Spec.Type == OpSubscription {
		return nil, &Error{code: CodeInvalidOperationType, message: msgComposeSub}
	}
	if ce := validateInput(reg, input); ce != nil {
		return nil, ce
	}
	childCtx, cancelChild := ctx, context.CancelFunc(func() {})
	if p == ContinueRunning {
		// Runs to completion if its ancestor is aborted; keeps the deadline.
		childCtx = context.WithoutCancel(ctx)
		if dl, ok := ctx.Deadline(); ok {
			childCtx, cancelChild = context.WithDeadline(childCtx, dl)
		}
	}
	type result struct {
		out json.RawMessage
		err *Error
	}
	done := make(chan result, 1)
	go func() {
		defer cancelChild()
		if p == ContinueRunning && parent.node.abortedUp() {
			done <- result{err: errCancelled(nil)} // not yet started: refused
			return
		}
		out, ce := d.runHandler(childCtx, child, reg, input)
		done <- result{out, ce}
	}()
	select {
	case r := <-done:
		if errors.Is(childCtx.Err(), context.DeadlineExceeded) {
			return nil, errDeadline() // the deadline passed first (§7.3.6)
		}
		if r.err != nil {
			return nil, r.err
		}
		return r.out, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errDeadline()
		}
		return nil, errCancelled(ctx.Err())
	}
}

// dispatcherOf finds the dispatcher that built the root of oc's tree (its limits and logger
// apply to the children); contexts built outside a dispatcher get the defaults.
func dispatcherOf(oc *OperationContext) *Dispatcher {
	if c, ok := oc.Env.(*composite); ok {
		return c.d
	}
	return defaultDispatcher()
}

func validateInput(reg *Registration, input json.RawMessage) *Error {
	if err := reg.input.Validate(input); err != nil {
		return &Error{code: CodeInvalidInput, message: "invalid input: " + err.Error()}
	}
	return nil
}

// runHandler calls a query/mutation handler with panic recovery and maps its result (§7.3).
func (d *Dispatcher) runHandler(ctx context.Context, oc *OperationContext, reg *Registration, input json.RawMessage) (out json.RawMessage, ce *Error) {
	defer func() {
		if v := recover(); v != nil {
			d.log.Error("handler panic", "op", reg.Spec.Name, "request_id", oc.RequestID, "value", fmt.Sprint(v), "stack", string(debug.Stack()))
			out, ce = nil, errInternal(msgInternal, fmt.Errorf("panic: %v", v))
		}
	}()
	start := time.Now()
	var err error
	trusted := reg.typed != nil // encoded by this package: valid JSON by construction (typed.go)
	if trusted {
		out, err = reg.typed.call(ctx, oc, input)
	} else {
		out, err = reg.Handler(ctx, oc, input)
	}
	if err != nil {
		return nil, d.mapError(reg, oc, err)
	}
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	if !trusted && !jsonscan.Valid(out) {
		d.log.Error("handler returned invalid JSON", "op", reg.Spec.Name, "request_id", oc.RequestID)
		return nil, errInternal(msgInternal, errors.New("output is not valid JSON"))
	}
	if d.cfg.ValidateOutputs {
		if err := reg.output.Validate(out); err != nil {
			d.log.Error("output does not match schema", "op", reg.Spec.Name, "err", err)
			return nil, errInternal(msgOutputMismatch, err)
		}
	}
	if d.cfg.SlowHandlerLog > 0 && time.Since(start) > d.cfg.SlowHandlerLog {
		d.log.Debug("slow handler", "op", reg.Spec.Name, "duration", time.Since(start))
	}
	return out, nil
}

// mapError maps a handler error (§7.3): protocol or declared codes pass unchanged, undeclared
// codes become INTERNAL with original_code, anything else INTERNAL "internal error" (logged).
func (d *Dispatcher) mapError(reg *Registration, oc *OperationContext, err error) *Error {
	var ce *Error
	if !errors.As(err, &ce) {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			level = slog.LevelDebug // aborted or timed out: the result is discarded anyway
		}
		d.log.Log(context.Background(), level, "handler error", "op", reg.Spec.Name, "request_id", oc.RequestID, "err", err)
		return errInternal(msgInternal, err)
	}
	if IsProtocolCode(ce.code) {
		return ce
	}
	if _, ok := reg.Spec.declares(ce.code); ok {
		if d.cfg.ValidateOutputs && len(ce.details) > 0 {
			if verr := reg.errSchemas[ce.code].Validate(ce.details); verr != nil {
				d.log.Error("error details do not match schema", "op", reg.Spec.Name, "code", ce.code, "err", verr)
				return errInternal(msgOutputMismatch, verr)
			}
		}
		return ce
	}
	details, _ := marshalNoEscape(struct {
		OriginalCode    string          `json:"original_code"`
		OriginalDetails json.RawMessage `json:"original_details,omitempty"`
	}{ce.code, ce.details})
	return &Error{code: CodeInternal, message: ce.message, details: details, cause: ce}
}

// logger returns l or the default logger.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
