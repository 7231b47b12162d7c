package app

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/core/client"
)

// verbose prints what a client command does, on stderr, the way grpcurl -v and curl -v do:
// "* " for the dial, "> " for what is sent, "< " for each event received. A nil *verbose
// prints nothing. Inputs and outputs are shown (they are the user's own data); tokens and
// key material never are.
type verbose struct {
	mu     sync.Mutex
	w      io.Writer              // nil: print nothing
	onRace func(client.RaceEvent) // also told of each race step (alknet ping), if set
}

// newVerbose is on for -v/--verbose or --log-level debug.
func newVerbose(e *env, c *cli.Command) *verbose {
	if c.Bool("verbose") || c.Root().String("log-level") == "debug" {
		return &verbose{w: e.stderr}
	}
	return nil
}

func (v *verbose) printf(format string, a ...any) {
	if v == nil || v.w == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintf(v.w, format+"\n", a...)
}

// race prints one step of the transport race (client.RaceOptions.Trace).
func (v *verbose) race(ev client.RaceEvent) {
	if v == nil {
		return
	}
	if v.onRace != nil {
		v.onRace(ev)
	}
	at := ev.Elapsed.Round(time.Microsecond)
	if ev.Err != nil {
		v.printf("* %s %s %s at +%v: %v", ev.Transport, ev.Addr, ev.Phase, at, ev.Err)
		return
	}
	v.printf("* %s %s %s at +%v", ev.Transport, ev.Addr, ev.Phase, at)
}

// event prints one event received for request id, with its payload.
func (v *verbose) event(kind, id string, payload json.RawMessage, since time.Time) {
	if v == nil || v.w == nil {
		return
	}
	const max = 512
	p := string(payload)
	if len(p) > max {
		p = p[:max] + fmt.Sprintf("… (%d bytes)", len(payload))
	}
	v.printf("< %s id=%s +%v %s", kind, id, time.Since(since).Round(time.Microsecond), p)
}
