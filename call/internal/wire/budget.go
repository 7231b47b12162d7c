package wire

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxPartialFrameBytes is the default node-wide budget for bytes held in partial frames.
const DefaultMaxPartialFrameBytes = 256 << 20

// FrameBudget bounds the bytes held in partial frames (frames whose prefix has arrived but not
// all of their body) across every stream that shares it: the streams of every connection of a
// node. Past the budget, the stream holding the largest partial frame is reset (on a
// single-stream connection, the connection is closed), so memory stays bounded however many
// peers announce large frames and send them slowly (docs/security.md).
type FrameBudget struct {
	limit atomic.Int64 // bytes; <= 0: no budget
	log   *slog.Logger

	mu      sync.Mutex
	total   int64
	holders map[*FrameReader]int64 // readers holding a charged partial frame
	evicted uint64                 // streams closed since the last log line
	logged  time.Time
}

// NewFrameBudget returns a budget of limit bytes (0: the default; negative: none).
func NewFrameBudget(limit int64, log *slog.Logger) *FrameBudget {
	if log == nil {
		log = slog.Default()
	}
	b := &FrameBudget{log: log, holders: map[*FrameReader]int64{}}
	b.SetLimit(limit)
	return b
}

// SetLimit changes the budget (0: the default; negative: none); it applies at the next charge.
func (b *FrameBudget) SetLimit(limit int64) {
	if limit == 0 {
		limit = DefaultMaxPartialFrameBytes
	}
	b.limit.Store(limit)
}

// Held returns the bytes held in partial frames now.
func (b *FrameBudget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Reserve charges n bytes held outside any frame reader (an HTTP request body being read):
// false, with nothing charged, when the total would pass the budget. Release with Unreserve.
func (b *FrameBudget) Reserve(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if limit := b.limit.Load(); limit > 0 && b.total+n > limit {
		return false
	}
	b.total += n
	return true
}

// Unreserve releases bytes charged by Reserve.
func (b *FrameBudget) Unreserve(n int64) {
	b.mu.Lock()
	b.total -= n
	b.mu.Unlock()
}

// adjust records that f now holds n bytes in a partial frame (0: none). Over the budget, the
// largest holder's stream is reset.
func (b *FrameBudget) adjust(f *FrameReader, n int) {
	b.mu.Lock()
	prev := b.holders[f]
	b.total += int64(n) - prev
	if n > 0 {
		b.holders[f] = int64(n)
	} else {
		delete(b.holders, f)
	}
	var victim *FrameReader
	var held int64
	if limit := b.limit.Load(); limit > 0 && b.total > limit && int64(n) > prev {
		for h, size := range b.holders {
			if size > held {
				victim, held = h, size
			}
		}
		// The victim's charge goes now: its stream fails, and its later release finds no entry.
		delete(b.holders, victim)
		b.total -= held
		b.evicted++
	}
	var logNow bool
	var evicted uint64
	total := b.total
	if victim != nil && time.Since(b.logged) >= time.Second {
		logNow, evicted, b.logged, b.evicted = true, b.evicted, time.Now(), 0
	}
	b.mu.Unlock()
	if victim == nil {
		return
	}
	if c, ok := victim.r.(interface{ Cancel(code uint64) }); ok {
		c.Cancel(CodeProtocolError)
	}
	if logNow {
		args := []any{"held", held, "total", total, "budget", b.limit.Load(), "closed", evicted}
		if a, ok := victim.r.(interface{ RemoteAddr() net.Addr }); ok && a.RemoteAddr() != nil {
			host := a.RemoteAddr().String()
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			args = append(args, "remote_addr", host)
		}
		b.log.Warn("partial frame budget exceeded: closed the stream holding the largest partial frame", args...)
	}
}
