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
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/tlsconf"
)

// handlerLedger counts handler runs: every run that starts must end.
type handlerLedger struct {
	started, ended, cancelled atomic.Int64
}

// waitOp blocks until its context ends (an abort or a deadline) or 20 s pass.
func (l *handlerLedger) waitOp(name string) call.HandlerRegistration {
	return queryOp(name, func(ctx context.Context, _ *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
		l.started.Add(1)
		defer l.ended.Add(1)
		select {
		case <-ctx.Done():
			l.cancelled.Add(1)
			return nil, ctx.Err()
		case <-time.After(20 * time.Second):
			return js(`{}`), nil
		}
	})
}

// Fault injection: a client and a node, and the node calling the client back, over a UDP proxy
// that drops 5% of datagrams, delays each by up to 20 ms (reordering them) and duplicates 1%.
// 2,000 calls with random client aborts and deadlines each end exactly once with a result the
// mix allows, every handler they started (on both nodes) ends, i.e. every abort reached its
// handler, and nothing leaks (goleak in TestMain).
func TestFaultInjectionLossyNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection: not in -short")
	}
	var nodeSide, clientSide handlerLedger
	// test/relay, on the node, calls test/wait back on the caller's own connection: an abort
	// of the outer call must cascade across the lossy link to the caller's handler.
	relay := queryOp("test/relay", func(ctx context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		c, ok := call.ConnFromContext(ctx)
		if !ok {
			return nil, errors.New("no connection")
		}
		return c.Call(ctx, "test/wait", in)
	})
	n := startNode(t, nodeOpts{regs: append(demoRegs(), nodeSide.waitOp("test/wait"), relay)})
	proxy, err := newLossyProxy(n.quic, 1, 0.05, 0.01, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc, err := (&client.Dialer{}).DialQUIC(ctx, proxy.Addr(), call.ALPN, tlsconf.ConnectionCredentials{RemotePin: n.key.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	clientDisp := buildDispatcher(t, nodeOpts{regs: []call.HandlerRegistration{clientSide.waitOp("test/wait")}}, nil)
	cc := call.NewConn(qc, clientDisp, call.ConnOptions{})
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = cc.Run(context.Background()) }()
	defer func() {
		_ = qc.Close(0, "")
		<-runDone
		dropped, sent := proxy.Close()
		t.Logf("proxy: %d datagrams dropped, %d delivered", dropped, sent)
	}()

	const calls, workers = 2000, 48
	type outcome struct{ ok, deadline, cancelled, other int }
	var mu sync.Mutex
	var got outcome
	var failures []string
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range jobs {
				kind := i % 4
				var (
					cctx   context.Context
					stop   context.CancelFunc
					op     = "test/wait"
					input  = js(`{}`)
					expect string
				)
				switch kind {
				case 0: // a plain call: must succeed with the right answer
					cctx, stop = context.WithTimeout(ctx, 15*time.Second)
					op, input, expect = "demo/add", js(fmt.Sprintf(`{"a":%d,"b":1}`, i)), "ok"
				case 1: // a client deadline
					cctx, stop = context.WithTimeout(ctx, time.Duration(20+rng.IntN(150))*time.Millisecond)
					expect = "deadline"
				case 2: // an explicit abort after a random delay
					cctx, stop = context.WithCancel(ctx)
					time.AfterFunc(time.Duration(rng.IntN(150))*time.Millisecond, stop)
					expect = "cancelled"
				default: // an abort that must cascade through the node back to this client
					cctx, stop = context.WithCancel(ctx)
					time.AfterFunc(time.Duration(20+rng.IntN(150))*time.Millisecond, stop)
					op, expect = "test/relay", "cancelled"
				}
				out, err := cc.Call(cctx, op, input)
				stop()
				var ce *call.Error
				res := "other"
				switch {
				case err == nil:
					var v struct{ Sum int }
					if json.Unmarshal(out, &v) == nil && v.Sum == i+1 {
						res = "ok"
					}
				case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ce) && ce.Code() == call.CodeTimeout:
					res = "deadline"
				case errors.Is(err, context.Canceled):
					res = "cancelled"
				}
				mu.Lock()
				switch res {
				case "ok":
					got.ok++
				case "deadline":
					got.deadline++
				case "cancelled":
					got.cancelled++
				default:
					got.other++
				}
				if res != expect {
					failures = append(failures, fmt.Sprintf("call %d (%s): want %s, got %v %s", i, op, expect, err, out))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range calls {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("outcomes: %+v", got)
	if len(failures) > 0 {
		t.Fatalf("%d calls ended otherwise than their kind allows, e.g. %v", len(failures), failures[:min(5, len(failures))])
	}
	// Every handler started on either side ends: the aborts reached them through the loss.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if nodeSide.started.Load() == nodeSide.ended.Load() && clientSide.started.Load() == clientSide.ended.Load() &&
			n.d.InFlight() == 0 && clientDisp.InFlight() == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("node handlers: %d started, %d cancelled; client handlers: %d started, %d cancelled",
		nodeSide.started.Load(), nodeSide.cancelled.Load(), clientSide.started.Load(), clientSide.cancelled.Load())
	if s, e := nodeSide.started.Load(), nodeSide.ended.Load(); s != e || n.d.InFlight() != 0 {
		t.Fatalf("node: %d handlers started, %d ended, %d requests in flight", s, e, n.d.InFlight())
	}
	if s, e := clientSide.started.Load(), clientSide.ended.Load(); s != e || clientDisp.InFlight() != 0 {
		t.Fatalf("client: %d handlers started, %d ended, %d requests in flight", s, e, clientDisp.InFlight())
	}
	if clientSide.cancelled.Load() == 0 || nodeSide.cancelled.Load() == 0 {
		t.Fatal("no abort reached a handler")
	}
}
