package contestant

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every contestant serves, echoes a unary payload byte for byte (alknet: inside its JSON
// envelope) and streams the items it is asked for, so the harness measures working systems.
func TestContestants(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			c, err := Get(name)
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Serve("127.0.0.1:0")
			if errors.Is(err, ErrNoEcho) && os.Getenv("ALKNET_IROH_TESTS") != "require" {
				t.Skipf("*** %v: SKIPPED (make test sets it) ***", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl, err := c.Dial(ctx, s.Addr(), s.Pin(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			out, err := cl.Unary(ctx, Payload(64))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, Payload(64)) {
				t.Fatalf("echo %q", out)
			}
			if IsAdapter(name) {
				return // unary only (docs/performance.md, "Adapters")
			}
			n := 0
			if err := cl.Stream(ctx, 25, 100, func(b []byte) {
				if len(b) < 100 {
					t.Errorf("item of %d bytes", len(b))
				}
				n++
			}); err != nil || n != 25 {
				t.Fatalf("stream: %d items, %v", n, err)
			}
		})
	}
	want := 13
	if IrohBuilt {
		want += 2
	}
	if len(Names()) != want {
		t.Fatalf("contestants %v", Names())
	}
}
