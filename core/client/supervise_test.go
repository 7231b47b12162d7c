package client

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/conn"
)

// Checklist 57.
func TestBackoffSchedule(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for n, w := range want {
		if got := b.Wait(n); got != w*time.Second {
			t.Errorf("Wait(%d) = %v, want %v", n, got, w*time.Second)
		}
	}
	b.Jitter = true
	for n := range 10 {
		for _, r := range []float64{0, 0.5, 0.999} {
			got := b.jittered(n, func() float64 { return r })
			if w := b.Wait(n); got < w/2 || got > w {
				t.Errorf("jittered(%d, %v) = %v outside [%v, %v]", n, r, got, w/2, w)
			}
		}
	}
	if (Backoff{}).Wait(1000) != time.Minute {
		t.Fatal("overflow must clamp to Max")
	}
}

type fakeClock struct{ now time.Time }

// Checklist 58.
func TestSupervise(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	var waits []time.Duration
	s := supervisor{
		now: func() time.Time { return clk.now },
		sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			clk.now = clk.now.Add(d)
			return nil
		},
		rnd: func() float64 { return 1 },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Script: fail, fail, a 61 s connection, fail, then cancel.
	script := []func() (conn.Connection, error){
		func() (conn.Connection, error) { return nil, &DialError{Kind: DialConnect} },
		func() (conn.Connection, error) { return nil, &DialError{Kind: DialConnect} },
		func() (conn.Connection, error) { a, _ := conn.Pipe("alknet/test"); return a, nil },
		func() (conn.Connection, error) { return nil, &DialError{Kind: DialConnect} },
		func() (conn.Connection, error) {
			cancel()
			return nil, &DialError{Kind: DialCanceled, Err: context.Canceled}
		},
	}
	i := 0
	dial := func(context.Context) (conn.Connection, error) { f := script[i]; i++; return f() }
	run := func(context.Context, conn.Connection) error { clk.now = clk.now.Add(61 * time.Second); return nil }
	err := s.supervise(ctx, dial, run, Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("supervise = %v", err)
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 1 * time.Second, 2 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for k := range want {
		if waits[k] != want[k] {
			t.Fatalf("waits %v, want %v (reset after a connection ≥ Max)", waits, want)
		}
	}
	// A DialConfig error returns at once.
	calls := 0
	err = s.supervise(context.Background(), func(context.Context) (conn.Connection, error) {
		calls++
		return nil, &DialError{Kind: DialConfig, Err: errors.New("bad pin")}
	}, run, Backoff{}, nil)
	if !IsKind(err, DialConfig) || calls != 1 {
		t.Fatalf("DialConfig: %v after %d calls", err, calls)
	}
}
