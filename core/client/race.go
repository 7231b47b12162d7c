package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// DefaultRaceDelay is how long DialRace lets one attempt run before it starts the next
// (RFC 8305's "Connection Attempt Delay" recommends 250 ms).
const DefaultRaceDelay = 250 * time.Millisecond

// RaceOptions configure DialRace; the zero value uses DefaultRaceDelay and traces nothing.
type RaceOptions struct {
	Delay time.Duration    // between attempt starts; 0 = DefaultRaceDelay
	Trace func(RaceEvent)  // called from the racing goroutine, one event at a time; nil = none
	Now   func() time.Time // nil = time.Now (tests)
}

// RacePhase says what happened to one attempt.
type RacePhase int

// Attempt phases reported to RaceOptions.Trace.
const (
	AttemptStarted RacePhase = iota + 1
	AttemptFailed
	AttemptWon
	AttemptClosed // it connected after another attempt had won, and was closed
)

func (p RacePhase) String() string {
	switch p {
	case AttemptStarted:
		return "started"
	case AttemptFailed:
		return "failed"
	case AttemptWon:
		return "won"
	case AttemptClosed:
		return "closed (lost the race)"
	}
	return fmt.Sprintf("RacePhase(%d)", int(p))
}

// RaceEvent is one step of a race, for verbose clients.
type RaceEvent struct {
	Transport conn.Transport
	Addr      string
	Phase     RacePhase
	Elapsed   time.Duration // since the race started
	Err       error         // AttemptFailed only
}

type raceResult struct {
	i   int
	c   conn.Connection
	err error
}

// DialRace dials the ticket's addresses the way RFC 8305 ("happy eyeballs") races address
// families: QUIC and TCP+TLS addresses interleaved, QUIC first; each next attempt starts
// after o.Delay, or at once when every running attempt has failed. The first connection wins
// and the others are cancelled (or closed, if they connect anyway). A handshake or config
// error (a wrong identity, say) ends the race: another path to the same key would not fix it.
// ctx bounds the whole race. If every attempt fails, every error is returned.
//
// Use DialRace for interactive clients; long-lived links prefer QUIC and should use
// DialTicket, which moves on only after a connect failure.
func DialRace(ctx context.Context, d *Dialer, t identity.Ticket, alpn string, c tlsconf.ConnectionCredentials, o RaceOptions) (conn.Connection, error) {
	if c.RemotePin != "" && c.RemotePin != t.Fingerprint {
		return nil, &DialError{Kind: DialConfig, Err: fmt.Errorf("pin %s conflicts with the ticket's fingerprint %s", c.RemotePin, t.Fingerprint)}
	}
	c.RemotePin = t.Fingerprint
	if c.ServerName == "" {
		c.ServerName = t.ServerName
	}
	attempts := interleave(d, t)
	if len(attempts) == 0 {
		return nil, &DialError{Kind: DialConfig, Err: errors.New("ticket has no address")}
	}
	if o.Delay <= 0 {
		o.Delay = DefaultRaceDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	start := o.Now()
	trace := func(i int, p RacePhase, err error) {
		if o.Trace != nil {
			o.Trace(RaceEvent{Transport: attempts[i].tr, Addr: attempts[i].addr, Phase: p, Elapsed: o.Now().Sub(start), Err: err})
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan raceResult, len(attempts)) // buffered: no attempt ever blocks on it
	next, running := 0, 0
	launch := func() {
		i := next
		next++
		running++
		trace(i, AttemptStarted, nil)
		go func() {
			cn, err := attempts[i].dial(rctx, attempts[i].addr, alpn, c)
			results <- raceResult{i, cn, err}
		}()
	}
	// drain closes whatever the attempts still running return, after the winner is known.
	drain := func() {
		for ; running > 0; running-- {
			r := <-results
			if r.err != nil {
				trace(r.i, AttemptFailed, r.err)
				continue
			}
			trace(r.i, AttemptClosed, nil)
			_ = r.c.Close(conn.CodeNormal, "")
		}
	}
	launch()
	timer := time.NewTimer(o.Delay)
	defer timer.Stop()
	var errs []error
	for {
		var tick <-chan time.Time
		if next < len(attempts) {
			tick = timer.C
		}
		select {
		case r := <-results:
			running--
			if r.err == nil {
				trace(r.i, AttemptWon, nil)
				cancel()
				drain()
				return r.c, nil
			}
			trace(r.i, AttemptFailed, r.err)
			errs = append(errs, r.err)
			if !IsKind(r.err, DialConnect) || ctx.Err() != nil {
				cancel()
				drain()
				return nil, errors.Join(errs...)
			}
			if running == 0 {
				if next == len(attempts) {
					return nil, errors.Join(errs...)
				}
				launch()
				timer.Reset(o.Delay)
			}
		case <-tick:
			launch()
			timer.Reset(o.Delay)
		}
	}
}

type raceAttempt struct {
	tr   conn.Transport
	addr string
	dial func(context.Context, string, string, tlsconf.ConnectionCredentials) (conn.Connection, error)
}

// interleave orders the ticket's addresses QUIC, TCP, QUIC, TCP, … (RFC 8305 §4 interleaves
// address families the same way).
func interleave(d *Dialer, t identity.Ticket) []raceAttempt {
	var out []raceAttempt
	for i := 0; i < max(len(t.QUIC), len(t.TCP)); i++ {
		if i < len(t.QUIC) {
			out = append(out, raceAttempt{conn.TransportQUIC, t.QUIC[i], d.DialQUIC})
		}
		if i < len(t.TCP) {
			out = append(out, raceAttempt{conn.TransportTCPTLS, t.TCP[i], d.DialTCP})
		}
	}
	return out
}
