package call_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call"
)

func TestSmoke(t *testing.T) {
	n := startNode(t, nodeOpts{regs: demoRegs()})
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := n.dial(t, tr, nil, nil, call.ConnOptions{})
			ctx := tctx(t)
			out, err := c.Call(ctx, "demo/echo", js(`{"text":"hi"}`))
			if err != nil || string(out) != `{"text":"hi"}` {
				t.Fatalf("echo: %s %v", out, err)
			}
			sub, err := c.Subscribe(ctx, "demo/ticker", js(`{"count":3,"interval_ms":1}`))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				it, err := sub.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(it))
			}
			if len(got) != 3 || got[2] != `{"tick":2}` {
				t.Fatalf("ticker: %v", got)
			}
			_, err = c.Call(ctx, "demo/nope", js(`{}`))
			var ce *call.Error
			if !errors.As(err, &ce) || ce.Code() != "NOT_FOUND" || ce.Message() != "operation not found: demo/nope" {
				t.Fatalf("not found: %v", err)
			}
			out, err = c.Call(ctx, "services/list", js(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			// Every demo and built-in operation is listed for an anonymous caller.
			for _, name := range []string{"demo/echo", "demo/add", "demo/ticker", "demo/sleep", "demo/compose", "node/info", "node/health"} {
				if !strings.Contains(string(out), `"`+name+`"`) {
					t.Errorf("services/list lacks %s: %s", name, out)
				}
			}

		})
	}
}
