package client

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/alkdev/alknet/core/conn"
)

// Backoff is the reconnect schedule: wait n = min(Max, Initial·Multiplier^n), uniform in
// [wait/2, wait] with Jitter. Zero fields take 1 s, 60 s and 2.
type Backoff struct {
	Initial, Max time.Duration
	Multiplier   float64
	Jitter       bool
}

// DefaultBackoff is 1 s doubling to 60 s with jitter.
var DefaultBackoff = Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: true}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = time.Second
	}
	if b.Max <= 0 {
		b.Max = time.Minute
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	return b
}

// Wait returns the n-th wait (n from 0) before jitter.
func (b Backoff) Wait(n int) time.Duration {
	b = b.withDefaults()
	w := float64(b.Initial) * math.Pow(b.Multiplier, float64(n))
	if w > float64(b.Max) || math.IsInf(w, 0) || math.IsNaN(w) {
		return b.Max
	}
	return time.Duration(w)
}

// jittered draws the actual wait for n.
func (b Backoff) jittered(n int, rnd func() float64) time.Duration {
	w := b.Wait(n)
	if !b.Jitter {
		return w
	}
	return w/2 + time.Duration(rnd()*float64(w/2))
}

// supervisor holds Supervise's injectable clock and randomness.
type supervisor struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	rnd   func() float64
}

var realSupervisor = supervisor{
	now: time.Now,
	sleep: func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	},
	rnd: rand.Float64,
}

// Supervise keeps a long-lived connection: dial; on success run until the connection ends;
// wait; repeat. The attempt counter grows after a failed dial or a connection shorter than
// Max and resets after one lasting at least Max. It returns ctx.Err() when ctx ends and a
// DialConfig error at once (not retryable).
func Supervise(ctx context.Context, dial func(context.Context) (conn.Connection, error),
	run func(context.Context, conn.Connection) error, b Backoff, log *slog.Logger) error {
	return realSupervisor.supervise(ctx, dial, run, b, log)
}

func (s supervisor) supervise(ctx context.Context, dial func(context.Context) (conn.Connection, error),
	run func(context.Context, conn.Connection) error, b Backoff, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	b = b.withDefaults()
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := dial(ctx)
		if err != nil {
			if IsKind(err, DialConfig) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		} else {
			start := s.now()
			_ = run(ctx, c)
			_ = c.Close(conn.CodeNormal, "")
			if ctx.Err() != nil { // shutting down: no redial, and no "reconnecting" line
				return ctx.Err()
			}
			if s.now().Sub(start) >= b.Max {
				n = 0
			}
		}
		delay := b.jittered(n, s.rnd)
		log.Info("reconnecting", "attempt", n+1, "delay", delay)
		if err := s.sleep(ctx, delay); err != nil {
			return err
		}
		n++
	}
}
