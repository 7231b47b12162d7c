// Package demo holds the demo operations of a dev node (`alknet serve --dev`, README). They
// double as fixtures for tests, the benchmark and the Node binding.
package demo

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/alkdev/alknet/call"
)

// Options adjust the demo operations.
type Options struct {
	// OnComposeDone, if set, is called when a demo/compose level's context is done (level 1 is
	// the outermost), so tests and the benchmark can observe the abort cascade.
	OnComposeDone func(level int, requestID string, cause error)
	// OnComposeBlocked, if set, is called when the deepest level of a blocking demo/compose
	// starts to wait, so tests know every level is running before they abort.
	OnComposeBlocked func(level int, requestID string)
}

// Names of the demo operations.
const (
	Echo    = "demo/echo"
	Add     = "demo/add"
	Ticker  = "demo/ticker"
	Sleep   = "demo/sleep"
	Compose = "demo/compose"
)

// Registrations returns every demo operation.
func Registrations(o Options) []call.HandlerRegistration {
	return []call.HandlerRegistration{echo(), add(), ticker(), sleep(), compose(o)}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func echo() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: Echo, Type: call.OpQuery, Visibility: call.VisibilityExternal,
			Description:  "Return the text it is given.",
			InputSchema:  raw(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`),
			OutputSchema: raw(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`),
		},
		Handler: func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			// The input schema admits exactly {"text": string}, already checked by the
			// dispatcher: the input is the output, byte for byte what the caller sent.
			return in, nil
		},
	}
}

func add() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: Add, Type: call.OpQuery, Visibility: call.VisibilityExternal,
			Description:  "Add two numbers (as float64).",
			InputSchema:  raw(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"],"additionalProperties":false}`),
			OutputSchema: raw(`{"type":"object","properties":{"sum":{"type":"number"}},"required":["sum"],"additionalProperties":false}`),
		},
		Handler: func(_ context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var req struct{ A, B float64 }
			if err := json.Unmarshal(in, &req); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]float64{"sum": req.A + req.B})
		},
	}
}

// tickerInput is demo/ticker's input.
type tickerInput struct {
	Count      *int `json:"count"`
	IntervalMS *int `json:"interval_ms"`
	Pad        int  `json:"pad"`
}

// ticker is the streaming benchmark's fixture. Its items are built by hand from a pad encoded
// once, and so take the dispatcher's JSON validity scan (≈ 0.3 µs per 1 KiB item): as a typed
// subscription (call.TypedStream, trusted, no scan) encoding/json escaped the 1,000-byte pad
// byte by byte on every item, ≈ 2.7 µs and 38 % of the server's CPU in that benchmark
// (docs/performance.md, "Second set").
func ticker() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: Ticker, Type: call.OpSubscription, Visibility: call.VisibilityExternal,
			Description: "Emit {\"tick\": i} count times (0 = until aborted) every interval_ms.",
			InputSchema: raw(`{"type":"object","properties":{` +
				`"count":{"type":"integer","minimum":0,"maximum":100000},` +
				`"interval_ms":{"type":"integer","minimum":0,"maximum":60000},` +
				`"pad":{"type":"integer","minimum":0,"maximum":65536}},"additionalProperties":false}`),
			OutputSchema: raw(`{"type":"object","properties":{"tick":{"type":"integer"},"pad":{"type":"string"}},"required":["tick"],"additionalProperties":false}`),
		},
		Stream: func(ctx context.Context, _ *call.OperationContext, in json.RawMessage, emit func(json.RawMessage) error) error {
			var req tickerInput
			if len(in) > 0 && string(in) != "null" {
				if err := json.Unmarshal(in, &req); err != nil {
					return call.Errorf(call.CodeInvalidInput, "invalid input: %v", err)
				}
			}
			count, interval := 3, 100
			if req.Count != nil {
				count = *req.Count
			}
			if req.IntervalMS != nil {
				interval = *req.IntervalMS
			}
			var pad []byte // `,"pad":"xx…x"`, encoded once
			if req.Pad > 0 {
				pad = append(append([]byte(`,"pad":"`), strings.Repeat("x", req.Pad)...), '"')
			}
			var t *time.Ticker
			if interval > 0 {
				t = time.NewTicker(time.Duration(interval) * time.Millisecond)
				defer t.Stop()
			}
			for i := 0; count == 0 || i < count; i++ {
				if i > 0 && t != nil {
					select {
					case <-t.C:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				out := strconv.AppendInt(append(make([]byte, 0, len(pad)+24), `{"tick":`...), int64(i), 10)
				if err := emit(append(append(out, pad...), '}')); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func sleep() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: Sleep, Type: call.OpQuery, Visibility: call.VisibilityExternal,
			Description:  "Wait ms milliseconds (absent: until the call's context ends).",
			InputSchema:  raw(`{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},"additionalProperties":false}`),
			OutputSchema: raw(`{"type":"object","properties":{"slept_ms":{"type":"integer"}},"required":["slept_ms"],"additionalProperties":false}`),
		},
		Handler: func(ctx context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var req struct {
				MS *int64 `json:"ms"`
			}
			if len(in) > 0 && string(in) != "null" {
				if err := json.Unmarshal(in, &req); err != nil {
					return nil, err
				}
			}
			start := time.Now()
			if req.MS == nil {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			t := time.NewTimer(time.Duration(*req.MS) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return json.Marshal(map[string]int64{"slept_ms": time.Since(start).Milliseconds()})
		},
	}
}

func compose(o Options) call.HandlerRegistration {
	scope := call.NewScopedEnv(Compose)
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: Compose, Type: call.OpQuery, Visibility: call.VisibilityExternal,
			Description:  "Invoke itself depth-1 more times through the env; with block the deepest level waits until its context ends.",
			InputSchema:  raw(`{"type":"object","properties":{"depth":{"type":"integer","minimum":1,"maximum":8},"block":{"type":"boolean"}},"required":["depth"],"additionalProperties":false}`),
			OutputSchema: raw(`{"type":"object","properties":{"levels":{"type":"integer"}},"required":["levels"],"additionalProperties":false}`),
		},
		Authority: &call.CompositionAuthority{Label: Compose},
		ScopedEnv: &scope,
		Handler: func(ctx context.Context, oc *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
			var req struct {
				Depth int  `json:"depth"`
				Block bool `json:"block"`
			}
			if err := json.Unmarshal(in, &req); err != nil {
				return nil, err
			}
			level := oc.Depth() + 1
			if o.OnComposeDone != nil {
				stop := context.AfterFunc(ctx, func() { o.OnComposeDone(level, oc.RequestID, context.Cause(ctx)) })
				defer func() {
					if stop() { // the hook has not run: report how this level ended
						var cause error
						if ctx.Err() != nil {
							cause = context.Cause(ctx)
						}
						o.OnComposeDone(level, oc.RequestID, cause)
					}
				}()
			}
			if req.Depth <= 1 {
				if req.Block {
					if o.OnComposeBlocked != nil {
						o.OnComposeBlocked(level, oc.RequestID)
					}
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return raw(`{"levels":1}`), nil
			}
			next, _ := json.Marshal(map[string]any{"depth": req.Depth - 1, "block": req.Block})
			out, err := oc.Env.Invoke(ctx, oc, Compose, next)
			if err != nil {
				return nil, err
			}
			var inner struct{ Levels int }
			if err := json.Unmarshal(out, &inner); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]int{"levels": inner.Levels + 1})
		},
	}
}
