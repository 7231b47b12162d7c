package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call"
)

type greetIn struct {
	Name string `json:"name"`
}

type greetOut struct {
	Greeting string          `json:"greeting"`
	Extra    json.RawMessage `json:"extra,omitempty"`
}

// badMarshaler writes what it holds, valid JSON or not.
type badMarshaler []byte

func (b badMarshaler) MarshalJSON() ([]byte, error) { return b, nil }

// Typed and TypedStream (performance issue, item 3): decoded input, encoded output; a bad input
// is INVALID_INPUT; an output encoding/json refuses (an invalid json.RawMessage field, a
// Marshaler writing invalid JSON) is INTERNAL, never an invalid frame; the rules that keep the
// trust bound to the constructors.
func TestTypedHandlers(t *testing.T) {
	var raw json.RawMessage
	b := call.NewRegistryBuilder()
	for _, r := range []call.HandlerRegistration{
		call.Typed(call.OperationSpec{Name: "t/greet", Type: call.OpQuery, Visibility: call.VisibilityExternal},
			func(_ context.Context, _ *call.OperationContext, in greetIn) (greetOut, error) {
				if in.Name == "nobody" {
					return greetOut{}, call.Errorf(call.CodeNotFound, "no one to greet")
				}
				return greetOut{Greeting: "hello, " + in.Name, Extra: raw}, nil
			}),
		call.Typed(call.OperationSpec{Name: "t/bad", Type: call.OpMutation, Visibility: call.VisibilityExternal},
			func(context.Context, *call.OperationContext, struct{}) (badMarshaler, error) {
				return badMarshaler(`{"open":`), nil
			}),
		call.TypedStream(call.OperationSpec{Name: "t/count", Type: call.OpSubscription, Visibility: call.VisibilityExternal},
			func(_ context.Context, _ *call.OperationContext, n int, emit func(map[string]int) error) error {
				for i := range n {
					if err := emit(map[string]int{"i": i}); err != nil {
						return err
					}
				}
				return nil
			}),
	} {
		if err := b.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := call.NewDispatcher(reg, call.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, stop := serve(d)
	defer stop()
	ctx := tctx(t)

	out, err := c.Call(ctx, "t/greet", js(`{"name":"ada"}`))
	if err != nil || string(out) != `{"greeting":"hello, ada"}` {
		t.Fatalf("greet: %s %v", out, err)
	}
	var ce *call.Error
	if _, err := c.Call(ctx, "t/greet", js(`{"name":5}`)); !errors.As(err, &ce) || ce.Code() != call.CodeInvalidInput {
		t.Fatalf("an input that does not decode: %v", err)
	}
	if _, err := c.Call(ctx, "t/greet", js(`{"name":"nobody"}`)); !errors.As(err, &ce) || ce.Code() != call.CodeNotFound || ce.Message() != "no one to greet" {
		t.Fatalf("a domain error: %v", err)
	}
	raw = json.RawMessage(`{"not":json}`)
	if _, err := c.Call(ctx, "t/greet", js(`{"name":"x"}`)); !errors.As(err, &ce) || ce.Code() != call.CodeInternal {
		t.Fatalf("an invalid RawMessage field: %v", err)
	}
	raw = nil
	if _, err := c.Call(ctx, "t/bad", nil); !errors.As(err, &ce) || ce.Code() != call.CodeInternal {
		t.Fatalf("a Marshaler writing invalid JSON: %v", err)
	}
	sub, err := c.Subscribe(ctx, "t/count", js(`3`))
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for {
		item, err := sub.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, string(item))
	}
	if strings.Join(items, " ") != `{"i":0} {"i":1} {"i":2}` {
		t.Fatalf("items %v", items)
	}
}

// The trust cannot be moved to another function: a typed registration with a Handler or Stream
// set beside it, or of the wrong kind, is refused.
func TestTypedRegistrationRules(t *testing.T) {
	q := call.Typed(call.OperationSpec{Name: "t/q", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		func(context.Context, *call.OperationContext, struct{}) (int, error) { return 1, nil })
	withHandler := q
	withHandler.Handler = func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"not":json}`), nil
	}
	asStream := q
	asStream.Spec.Type = call.OpSubscription
	s := call.TypedStream(call.OperationSpec{Name: "t/s", Type: call.OpQuery, Visibility: call.VisibilityExternal},
		func(context.Context, *call.OperationContext, struct{}, func(int) error) error { return nil })
	for name, r := range map[string]call.HandlerRegistration{"Handler beside Typed": withHandler, "Typed as a subscription": asStream, "TypedStream as a query": s} {
		if _, err := call.NewRegistration(r); !errors.Is(err, call.ErrRegistration) || !strings.Contains(err.Error(), "handler kind mismatch") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := call.NewRegistration(q); err != nil {
		t.Fatal(err)
	}
}
