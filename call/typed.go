package call

import (
	"context"
	"encoding/json"
)

// Typed handlers: the input is decoded into a Go value and the output encoded with encoding/json
// by this package. Their outputs are trusted: encoding/json only ever writes valid JSON (it
// checks what a json.Marshaler or a json.RawMessage field returns), so the dispatcher skips its
// JSON validity scan for them; schema validation (Options.ValidateOutputs) still applies.
// Outputs a handler hands over as json.RawMessage keep the scan, and so does every forwarded
// output: the trust is bound to these constructors, not to bytes (performance issue, item 3).

// typedImpl is a typed registration's implementation. HandlerRegistration keeps it unexported:
// a registration gets it only from Typed or TypedStream, and setting Handler or Stream beside
// it is a registration error, so no other function can run under the trust.
type typedImpl struct {
	call   func(ctx context.Context, oc *OperationContext, input json.RawMessage) (json.RawMessage, error)
	stream func(ctx context.Context, oc *OperationContext, input json.RawMessage, emit func(json.RawMessage) error) error
}

// Typed registers a query or a mutation (spec.Type) whose input is decoded into In and whose
// result is encoded from Out with encoding/json. An input that does not decode into In is
// INVALID_INPUT.
func Typed[In, Out any](spec OperationSpec, fn func(ctx context.Context, oc *OperationContext, in In) (Out, error)) HandlerRegistration {
	return HandlerRegistration{Spec: spec, typed: &typedImpl{
		call: func(ctx context.Context, oc *OperationContext, input json.RawMessage) (json.RawMessage, error) {
			in, err := decodeTyped[In](input)
			if err != nil {
				return nil, err
			}
			out, err := fn(ctx, oc, in)
			if err != nil {
				return nil, err
			}
			return json.Marshal(out)
		},
	}}
}

// TypedStream registers a subscription whose input is decoded into In and whose items are
// encoded from Item with encoding/json.
func TypedStream[In, Item any](spec OperationSpec, fn func(ctx context.Context, oc *OperationContext, in In, emit func(Item) error) error) HandlerRegistration {
	return HandlerRegistration{Spec: spec, typed: &typedImpl{
		stream: func(ctx context.Context, oc *OperationContext, input json.RawMessage, emit func(json.RawMessage) error) error {
			in, err := decodeTyped[In](input)
			if err != nil {
				return err
			}
			return fn(ctx, oc, in, func(item Item) error {
				b, err := json.Marshal(item)
				if err != nil {
					return errInternal(msgInternal, err)
				}
				return emit(b)
			})
		},
	}}
}

func decodeTyped[In any](input json.RawMessage) (In, error) {
	var in In
	if len(input) == 0 || string(input) == "null" {
		return in, nil
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return in, Errorf(CodeInvalidInput, "invalid input: %v", err)
	}
	return in, nil
}
