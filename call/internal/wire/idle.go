package wire

import (
	"errors"
	"os"
	"time"
)

// IdleTimer times a stream's inactivity with read deadlines of half the timeout. At each
// deadline it asks whether a byte arrived (the FrameReader's count) since the last one: a
// stream is idle once the windows without a byte add up to the timeout, so a frame that takes
// long to arrive is never cut off while its bytes flow, and the FrameReader keeps the partial
// frame across the deadlines. An idle stream is noticed between 1× and 1.5× the timeout after
// its last byte. Deadlines are re-armed lazily while frames flow, so a frame costs a clock read,
// not a deadline update.
type IdleTimer struct {
	s interface {
		SetReadDeadline(time.Time) error
	}
	r        *FrameReader
	timeout  time.Duration // 0: none
	deadline time.Time     // in force; zero: none set yet
	armedAt  time.Time     // when mark was taken
	mark     uint64        // r.received at armedAt
	quiet    time.Duration // time without a byte, over the windows that have passed
}

// Init sets t up to time the inactivity of s, read through r, against timeout (0: none).
func (t *IdleTimer) Init(s interface{ SetReadDeadline(time.Time) error }, r *FrameReader, timeout time.Duration) {
	*t = IdleTimer{s: s, r: r, timeout: timeout}
}

// Arm is called before each read of a frame, so after progress: it sets a deadline half a
// timeout away unless the one in force is still at least 3/8 of a timeout away.
func (t *IdleTimer) Arm() {
	if t.timeout <= 0 {
		return
	}
	now := time.Now()
	if !t.deadline.IsZero() && t.deadline.Sub(now) >= t.timeout*3/8 {
		return
	}
	t.quiet = 0
	t.set(now)
}

func (t *IdleTimer) set(now time.Time) {
	t.armedAt, t.mark = now, t.r.received
	t.deadline = now.Add(t.timeout / 2)
	_ = t.s.SetReadDeadline(t.deadline)
}

// Expired handles a read error. deadline reports that err is our deadline; idle, that no byte
// has arrived for the timeout and busy() is false. For a deadline of a stream that is not idle
// it sets the next one; the caller reads on.
func (t *IdleTimer) Expired(err error, busy func() bool) (idle, deadline bool) {
	if t.timeout <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, false
	}
	now := time.Now()
	if t.r.received != t.mark || busy() {
		t.quiet = 0
	} else {
		t.quiet += now.Sub(t.armedAt)
	}
	if t.quiet >= t.timeout {
		return true, true
	}
	t.set(now)
	return false, true
}
