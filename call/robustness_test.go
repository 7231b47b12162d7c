package call_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
)

// TestRobustness sends 10,000 calls over 50 connections (QUIC and TCP+TLS) with random aborts,
// random deadlines and some connections killed mid-flight. Every call must end in exactly one
// outcome (response, error or abort), goroutines must not leak (TestMain), and the node must
// keep serving.
func TestRobustness(t *testing.T) {
	const (
		conns       = 50
		callsPer    = 200
		workersPer  = 10
		killedConns = 5
	)
	n := startNode(t, nodeOpts{regs: demoRegs(), cfg: call.Limits{RequestTimeout: 300 * time.Millisecond}})
	var (
		responses, errorsSeen, aborts, timeouts, closed atomic.Int64
		wrongOutput                                     atomic.Int64
		ended                                           atomic.Int64
	)
	var wg sync.WaitGroup
	for ci := range conns {
		tr := transports[ci%2]
		c := n.dial(t, tr, nil, nil, call.ConnOptions{CallTimeout: 2 * time.Second})
		kill := ci < killedConns
		if kill {
			go func() {
				time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
				_ = c.Connection().Close(0, "")
			}()
		}
		for w := range workersPer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(ci), uint64(w)))
				for k := range callsPer / workersPer {
					ctx, cancel := context.WithCancel(context.Background())
					var opts []call.CallOption
					op, in := "demo/echo", fmt.Sprintf(`{"text":"c%d-w%d-k%d"}`, ci, w, k)
					switch rng.IntN(6) {
					case 0: // slow: finishes, or hits the server's 300 ms deadline
						op, in = "demo/sleep", fmt.Sprintf(`{"ms":%d}`, rng.IntN(400))
					case 1: // aborted by the caller after a random delay
						op, in = "demo/sleep", `{}`
						d := time.Duration(rng.IntN(30)) * time.Millisecond
						time.AfterFunc(d, cancel)
					case 2: // a short client deadline
						op, in = "demo/sleep", `{"ms":100}`
						opts = append(opts, call.WithTimeout(time.Duration(1+rng.IntN(80))*time.Millisecond))
					}
					out, err := c.Call(ctx, op, json.RawMessage(in), opts...)
					cancel()
					ended.Add(1)
					var ce *call.Error
					switch {
					case err == nil:
						responses.Add(1)
						if op == "demo/echo" && string(out) != in {
							wrongOutput.Add(1)
						}
					case !errors.As(err, &ce):
						t.Errorf("error %v is not a *Error", err)
					case errors.Is(err, call.ErrAborted):
						aborts.Add(1)
					case ce.Code() == call.CodeTimeout:
						timeouts.Add(1)
					case ce.Message() == "connection closed" || ce.Message() == "stream closed before response" ||
						len(ce.Message()) > 22 && (ce.Message()[:22] == "failed to open stream:" || ce.Message()[:22] == "failed to write frame:"):
						closed.Add(1)
					default:
						errorsSeen.Add(1)
						t.Errorf("unexpected error: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	total := responses.Load() + aborts.Load() + timeouts.Load() + closed.Load() + errorsSeen.Load()
	t.Logf("%d calls: %d responses, %d aborts, %d timeouts, %d on closed connections, %d other errors",
		ended.Load(), responses.Load(), aborts.Load(), timeouts.Load(), closed.Load(), errorsSeen.Load())
	if ended.Load() != conns*callsPer || total != conns*callsPer {
		t.Fatalf("%d calls ended (%d classified), want %d", ended.Load(), total, conns*callsPer)
	}
	if wrongOutput.Load() != 0 {
		t.Fatalf("%d echo calls returned another call's output", wrongOutput.Load())
	}
	if responses.Load() == 0 || aborts.Load() == 0 || timeouts.Load() == 0 || closed.Load() == 0 {
		t.Fatal("the mix did not exercise every outcome")
	}
	// The node keeps serving.
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := n.dial(t, tr, nil, nil, call.ConnOptions{})
			if out, err := c.Call(tctx(t), "demo/echo", js(`{"text":"alive"}`)); err != nil || string(out) != `{"text":"alive"}` {
				t.Fatalf("%s after the storm: %s %v", tr, out, err)
			}
		})
	}
}
