package call

import (
	"errors"
	"os"
	"time"
)

// readIdle times a stream's inactivity with read deadlines: a deadline that passes while bytes
// arrived since it was set is extended, so a frame that takes long to arrive is never cut off
// while its bytes flow (the FrameReader keeps the partial frame across the deadline). The
// deadline is re-armed lazily, at most once per quarter of the timeout: a stream idle for the
// timeout is noticed after between 3/4 of it and twice it.
type readIdle struct {
	s interface {
		SetReadDeadline(time.Time) error
	}
	r        *FrameReader
	timeout  time.Duration // 0: none
	deadline time.Time
	mark     uint64 // r.received when the deadline was set
}

func (t *readIdle) init(s interface{ SetReadDeadline(time.Time) error }, r *FrameReader, timeout time.Duration) {
	*t = readIdle{s: s, r: r, timeout: timeout}
}

// arm sets the deadline to a full timeout from now unless the one in force is still at least
// 3/4 of a timeout away.
func (t *readIdle) arm() {
	if t.timeout <= 0 {
		return
	}
	now := time.Now()
	if !t.deadline.IsZero() && t.deadline.Sub(now) >= t.timeout*3/4 {
		return
	}
	t.deadline = now.Add(t.timeout)
	t.mark = t.r.received
	_ = t.s.SetReadDeadline(t.deadline)
}

// expired reports whether err is the deadline of an idle stream: no byte arrived since the
// deadline was set and busy is false. Otherwise, for a deadline, it re-arms and the caller
// reads on.
func (t *readIdle) expired(err error, busy func() bool) (idle, deadline bool) {
	if t.timeout <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, false
	}
	if t.r.received != t.mark || busy() {
		t.deadline = time.Time{}
		t.arm()
		return false, true
	}
	return true, true
}
