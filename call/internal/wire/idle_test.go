package wire

import (
	"net"
	"testing"
	"time"
)

// IdleTimer: bytes that keep coming (each gap shorter than the timeout) keep a partial frame
// alive far past the timeout; once they stop, the stream is idle after 1× to 1.5× the timeout
// (plus scheduling slack), never earlier.
func TestReadIdleMeasuresInactivity(t *testing.T) {
	const timeout = 200 * time.Millisecond
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var r FrameReader
	r.Init(a, 0, nil)
	var idle IdleTimer
	idle.Init(a, &r, timeout)
	lastByte := make(chan time.Time, 1)
	go func() {
		frame := []byte{0, 0, 0, 100, '{'}
		var last time.Time
		for i := 0; i < len(frame); i++ { // one byte every 150 ms: 5 bytes over 600 ms
			if _, err := b.Write(frame[i : i+1]); err != nil {
				return
			}
			last = time.Now()
			time.Sleep(150 * time.Millisecond)
		}
		lastByte <- last
	}()
	start := time.Now()
	for {
		idle.Arm()
		_, err := r.ReadFrame()
		if err == nil {
			t.Fatal("a frame from 5 of its 104 bytes")
		}
		stale, deadline := idle.Expired(err, func() bool { return false })
		if !deadline {
			t.Fatalf("read: %v", err)
		}
		if stale {
			break
		}
	}
	at := time.Now()
	last := <-lastByte
	if at.Sub(start) < 600*time.Millisecond {
		t.Fatalf("idle after %v while bytes arrived every 150 ms", at.Sub(start))
	}
	if gap := at.Sub(last); gap < timeout || gap > timeout*3/2+150*time.Millisecond {
		t.Fatalf("idle %v after the last byte; want %v to %v", gap, timeout, timeout*3/2)
	}
	if r.received != 5 {
		t.Fatalf("received %d bytes, want the 5 sent", r.received)
	}
}
