package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Frame size limits (docs/protocol.md §2).
const (
	MaxFrameSizeCap     = 64 << 20 // hard cap, that size included
	DefaultMaxFrameSize = 16 << 20
	MinMaxFrameSize     = 1 << 10
	PrefixLen           = 4
)

// CodeProtocolError is the stream error code of a reset for a protocol error (§2.6); 0 is
// a cancellation.
const CodeProtocolError = 1

// Frame errors. A malformed or truncated frame breaks its stream (multi-stream) or the
// connection (single-stream); neither is ever delivered.
var (
	ErrMalformedFrame = errors.New("call: malformed frame")
	ErrTruncatedFrame = errors.New("call: truncated frame")
	ErrFrameTooLarge  = errors.New("call: frame exceeds maximum frame size")
)

// FrameReader reads length-prefixed frames from one stream. Memory follows the bytes
// received, never the size a prefix announces: a body buffer starts at min(size, 64 KiB) and
// doubles as bytes arrive. A partial frame survives a read error such as a deadline, so the
// caller may extend the deadline and call ReadFrame again without losing bytes.
type FrameReader struct {
	r     io.Reader
	max   int
	ended bool // the stream's end has been read

	// The frame being read (kept across read errors): prefix bytes so far, then the body.
	prefix  [PrefixLen]byte
	prefixN int
	size    int    // announced body size once the prefix is complete; 0 while reading the prefix
	body    []byte // the body so far (len) in a buffer that grows to size (cap)

	received uint64       // bytes read from the stream (inactivity checks)
	budget   *FrameBudget // node-wide bytes held in partial frames; nil = none
	charged  int          // bytes of this reader charged to budget

	// Read-ahead (readAhead > 0, for streams that carry many frames): the stream is read in
	// chunks of that size and frames are returned as sub-slices of a chunk. A chunk is only
	// ever appended to, so returned frames are never overwritten; a frame that does not fit
	// moves to a new chunk. An idle stream holds no chunk.
	readAhead int
	chunk     []byte
	pos       int // start of the unread bytes in chunk
	// nextChunk adapts the chunk size to the bursts seen, within [minChunk, readAhead]: a
	// chunk that was mostly unused halves it, one that filled up doubles it. A connection
	// of small concurrent calls must not allocate (and zero) 32 KiB per burst.
	nextChunk int
}

const (
	minChunk = 256
	// initialBody is the first buffer for a frame body; it doubles as bytes arrive.
	initialBody = 64 << 10
	// unchargedHold is the largest partial-frame buffer (outside read-ahead chunks) not charged
	// to the budget: small frames cost no bookkeeping on the hot path.
	unchargedHold = 4 << 10
)

// NewFrameReader reads frames of at most max bytes (0 = DefaultMaxFrameSize).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	f := &FrameReader{}
	f.Init(r, max, nil)
	return f
}

// Init sets f up in place to read r with frames of at most max bytes (0: the default),
// charging partial frames to b (nil: no budget). f must not be copied afterwards.
func (f *FrameReader) Init(r io.Reader, max int, b *FrameBudget) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	*f = FrameReader{r: r, max: max, budget: b}
}

// ReadFrame returns the next frame body. io.EOF before any prefix byte is a clean end;
// EOF later is ErrTruncatedFrame; a zero or oversized length is ErrMalformedFrame. Any other
// read error (a deadline) leaves the partial frame in place for the next call.
// The returned slice is owned by the caller.
func (f *FrameReader) ReadFrame() ([]byte, error) {
	if f.readAhead > 0 && f.pos < len(f.chunk) {
		return f.readChunked()
	}
	if f.size == 0 {
		f.retireChunk()
		size, err := f.readPrefix()
		if err != nil {
			return nil, err
		}
		f.prefixN = 0
		if f.readAhead > 0 {
			f.chunk = append(make([]byte, 0, max(f.nextChunk, min(PrefixLen+int(size), initialBody))), f.prefix[:]...)
			return f.readChunked()
		}
		f.size = int(size)
		f.body = make([]byte, 0, min(f.size, initialBody))
	}
	return f.readBody()
}

// readPrefix reads the rest of the next length prefix and checks it.
func (f *FrameReader) readPrefix() (uint32, error) {
	for f.prefixN < PrefixLen {
		if f.ended {
			if f.prefixN == 0 {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("%w: EOF inside the length prefix", ErrTruncatedFrame)
		}
		n, err := f.r.Read(f.prefix[f.prefixN:])
		f.prefixN += n
		f.received += uint64(n)
		if err == io.EOF {
			f.ended = true
		} else if err != nil {
			return 0, err
		}
	}
	size := binary.BigEndian.Uint32(f.prefix[:])
	return size, f.checkSize(size)
}

// readBody reads the rest of the current frame's body, growing its buffer as bytes arrive.
func (f *FrameReader) readBody() ([]byte, error) {
	for len(f.body) < f.size {
		if f.ended {
			return nil, fmt.Errorf("%w: EOF inside the body", ErrTruncatedFrame)
		}
		if len(f.body) == cap(f.body) {
			f.body = append(make([]byte, 0, min(f.size, 2*cap(f.body))), f.body...)
		}
		if cap(f.body) > unchargedHold {
			f.hold(cap(f.body))
		}
		n, err := f.r.Read(f.body[len(f.body):cap(f.body)])
		f.body = f.body[:len(f.body)+n]
		f.received += uint64(n)
		if err == io.EOF {
			f.ended = true
		} else if err != nil {
			return nil, err
		}
	}
	body := f.body
	f.body, f.size = nil, 0
	f.hold(0)
	return body, nil
}

func (f *FrameReader) checkSize(size uint32) error {
	if size == 0 {
		return fmt.Errorf("%w: zero length", ErrMalformedFrame)
	}
	if uint64(size) > uint64(f.max) {
		return fmt.Errorf("%w: length %d exceeds the maximum frame size %d", ErrMalformedFrame, size, f.max)
	}
	return nil
}

// readChunked returns the next frame of the read-ahead chunk, reading more as needed; the
// chunk holds at least the start of a frame. A frame larger than the chunk moves to a buffer
// that doubles as its bytes arrive.
func (f *FrameReader) readChunked() ([]byte, error) {
	for {
		avail := f.chunk[f.pos:]
		need := PrefixLen
		if len(avail) >= PrefixLen {
			size := binary.BigEndian.Uint32(avail)
			if err := f.checkSize(size); err != nil {
				return nil, err
			}
			need += int(size)
			if len(avail) >= need {
				f.pos += need
				f.hold(0)
				return avail[PrefixLen:need:need], nil
			}
		}
		if f.ended {
			if len(avail) < PrefixLen {
				return nil, fmt.Errorf("%w: EOF inside the length prefix", ErrTruncatedFrame)
			}
			return nil, fmt.Errorf("%w: EOF inside the body", ErrTruncatedFrame)
		}
		if len(f.chunk) == cap(f.chunk) { // full, the frame incomplete: it moves to a larger chunk
			f.moveChunk(avail, need)
		}
		if cap(f.chunk) > f.readAhead {
			f.hold(cap(f.chunk))
		}
		n, err := f.r.Read(f.chunk[len(f.chunk):cap(f.chunk)])
		f.chunk = f.chunk[:len(f.chunk)+n]
		f.received += uint64(n)
		if err == io.EOF {
			f.ended = true
		} else if err != nil {
			return nil, err
		}
	}
}

// moveChunk moves the partial frame avail to a new chunk: the usual chunk size, or twice the
// bytes already received (at least initialBody), never more than the frame needs.
func (f *FrameReader) moveChunk(avail []byte, need int) {
	f.retireChunk()
	next := make([]byte, len(avail), max(f.nextChunk, min(need, max(2*len(avail), initialBody))))
	copy(next, avail)
	f.chunk, f.pos = next, 0
}

// retireChunk drops the current chunk, adapting the size of the next one to its use.
func (f *FrameReader) retireChunk() {
	if f.chunk != nil {
		switch used, size := len(f.chunk), cap(f.chunk); {
		case used == size:
			f.nextChunk = min(f.readAhead, 2*f.nextChunk)
		case 2*used <= size:
			f.nextChunk = max(minChunk, f.nextChunk/2)
		}
	}
	f.chunk, f.pos = nil, 0
}

// Ended reports whether the stream ended right after the last frame ReadFrame returned: the
// next ReadFrame is io.EOF without waiting. (A QUIC peer that sends its request and FIN in one
// packet lets the callee know at once that no more frames come.)
func (f *FrameReader) Ended() bool {
	return f.ended && f.pos == len(f.chunk) && f.prefixN == 0 && f.size == 0
}

// Buffered reports whether the next frame is already read in full (read-ahead only): the next
// ReadFrame returns it without touching the stream.
func (f *FrameReader) Buffered() bool {
	avail := f.chunk[f.pos:]
	if f.readAhead == 0 || len(avail) < PrefixLen {
		return false
	}
	return uint64(len(avail)-PrefixLen) >= uint64(binary.BigEndian.Uint32(avail))
}

// ReadAhead makes the reader read the stream in chunks of size bytes (0: exactly one frame
// at a time), for streams that carry many frames: fewer reads, no copy and one allocation per
// chunk rather than per frame. Returned frames stay owned by the caller.
func (f *FrameReader) ReadAhead(size int) {
	f.readAhead = size
	f.nextChunk = min(size, 4<<10)
}

// Received returns the bytes read from the stream so far (inactivity checks).
func (f *FrameReader) Received() uint64 { return f.received }

// hold sets the bytes this reader holds in a partial frame, as charged to the budget.
func (f *FrameReader) hold(n int) {
	if f.budget == nil || n == f.charged {
		return
	}
	f.budget.adjust(f, n)
	f.charged = n
}

// Discard drops the partial frame, if any, and its charge: the stream is done.
func (f *FrameReader) Discard() {
	f.hold(0)
	f.body, f.size, f.prefixN = nil, 0, 0
	f.chunk, f.pos = nil, 0
}

// maxPendingWrite bounds the bytes queued in a FrameWriter; writers wait beyond it, so a slow
// stream slows its producers instead of growing memory.
const maxPendingWrite = 256 << 10

// keepWriteBuffer is the largest queue buffer a FrameWriter keeps for reuse: a full queue
// plus a frame, so a busy subscription does not regrow its buffer from zero every batch.
const keepWriteBuffer = maxPendingWrite + 64<<10

// FrameWriter writes frames to one stream; safe for concurrent use. Frames are coalesced:
// a writer that finds the stream idle writes every frame queued meanwhile in one Write, so
// many small frames (subscription items, concurrent responses) cost one syscall, not one each.
// A frame is never interleaved with another and frames keep their order.
type FrameWriter struct {
	mu        sync.Mutex
	cond      sync.Cond
	w         io.Writer
	max       int
	buf       []byte // queued frames
	spare     []byte
	flushing  bool
	scheduled bool  // a batched flush is pending (queueBatched)
	err       error // sticky: the stream is broken
	onErr     func(error)
	told      bool // onErr has been called
}

// OnError sets fn to be called once, outside the writer's lock, when a write first fails. A
// frame queued behind another writer's (or for a batched write) returned before its bytes
// were written, so its writer never sees that error: the stream's owner learns it here.
// Set it before the first write.
func (f *FrameWriter) OnError(fn func(error)) { f.onErr = fn }

// NewFrameWriter writes frames of at most max bytes (0 = DefaultMaxFrameSize).
func NewFrameWriter(w io.Writer, max int) *FrameWriter {
	f := &FrameWriter{}
	f.Init(w, max)
	return f
}

// Init sets up a zero FrameWriter in place (it must not be copied afterwards).
func (f *FrameWriter) Init(w io.Writer, max int) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	f.w, f.max = w, max
	f.cond.L = &f.mu
}

// WriteFrame queues one frame and returns once it is written or handed to the writer that is
// writing. A body over the limit is ErrFrameTooLarge and nothing is written. After a write
// error every later call returns it.
func (f *FrameWriter) WriteFrame(body []byte) error { return f.writeFrameStop(body, nil) }

func (f *FrameWriter) writeFrameStop(body []byte, stop *atomic.Bool) error {
	if err := f.enqueueStop(body, nil, "", stop); err != nil {
		return err
	}
	if f.flushing {
		f.mu.Unlock()
		return nil
	}
	return f.flushLocked()
}

// WriteFramed writes one frame held in buf after framePrefixLen reserved bytes, which it fills
// with the prefix. A writer that finds the stream idle writes buf as it is (no copy); otherwise
// the frame is queued like WriteFrame's.
func (f *FrameWriter) WriteFramed(buf []byte) error { return f.WriteFramedStop(buf, nil) }

// WriteFramedStop is WriteFramed whose wait for queue room ends with ErrWriteStopped once stop
// (if not nil) is set; Wake makes waiting writers look.
func (f *FrameWriter) WriteFramedStop(buf []byte, stop *atomic.Bool) error {
	if len(buf) < PrefixLen {
		return fmt.Errorf("%w: no room for the length prefix", ErrMalformedFrame)
	}
	body := buf[PrefixLen:]
	if len(body) == 0 || len(body) > f.max {
		return f.WriteFrame(body) // reports the error
	}
	f.mu.Lock()
	if f.flushing || len(f.buf) > 0 || f.err != nil {
		f.mu.Unlock()
		return f.writeFrameStop(body, stop)
	}
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	f.flushing = true
	f.mu.Unlock()
	_, err := f.w.Write(buf)
	f.mu.Lock()
	if err != nil {
		f.err = err
	}
	return f.flushLocked() // frames queued meanwhile, then unlock
}

// enqueue checks the frame made of body, more and tail, waits while the queue is over its
// bound, and appends the frame. On success f.mu is held.
func (f *FrameWriter) enqueue(body, more []byte, tail string) error {
	return f.enqueueStop(body, more, tail, nil)
}

// ErrWriteStopped is returned to a writer whose request ended while it waited for queue room.
var ErrWriteStopped = errors.New("call: write stopped: the request ended")

// enqueueStop is enqueue whose wait for room also ends when stop (if not nil) is set.
func (f *FrameWriter) enqueueStop(body, more []byte, tail string, stop *atomic.Bool) error {
	n := len(body) + len(more) + len(tail)
	if n == 0 {
		return fmt.Errorf("%w: empty body", ErrMalformedFrame)
	}
	if n > f.max {
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrFrameTooLarge, n, f.max)
	}
	f.mu.Lock()
	for len(f.buf) > maxPendingWrite && f.err == nil {
		if stop != nil && stop.Load() {
			f.mu.Unlock()
			return ErrWriteStopped
		}
		f.cond.Wait()
	}
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(n))
	f.buf = append(f.buf, body...)
	f.buf = append(f.buf, more...)
	f.buf = append(f.buf, tail...)
	return nil
}

// flushLocked writes the queue until it is empty, then unlocks. f.mu is held on entry.
func (f *FrameWriter) flushLocked() error {
	f.flushing = true
	for len(f.buf) > 0 && f.err == nil {
		out := f.buf
		f.buf = f.spare[:0]
		f.mu.Unlock()
		_, err := f.w.Write(out)
		f.mu.Lock()
		if cap(out) <= keepWriteBuffer {
			f.spare = out[:0] // reused by the next batch; a single large frame's is not kept
		} else {
			f.spare = nil
		}
		if err != nil {
			f.err = err
		}
		f.cond.Broadcast()
	}
	f.flushing = false
	f.cond.Broadcast()
	err := f.err
	tell := err != nil && f.onErr != nil && !f.told
	if tell {
		f.told = true
	}
	f.mu.Unlock()
	if tell {
		f.onErr(err)
	}
	return err
}

// Drain returns once every queued frame has been written (writing them itself if no one else
// is), or the stream failed. Call it before ending the stream's sending side: a writer whose
// frame was queued behind another's returns before its bytes are written.
func (f *FrameWriter) Drain() error {
	f.mu.Lock()
	for f.err == nil && (f.flushing || len(f.buf) > 0) {
		if !f.flushing {
			if err := f.flushLocked(); err != nil {
				return err
			}
			f.mu.Lock()
			continue
		}
		f.cond.Wait()
	}
	err := f.err
	f.mu.Unlock()
	return err
}

// batchDelay and batchBytes bound how long and how much a batched frame may wait.
const (
	batchDelay = 50 * time.Microsecond
	batchBytes = 32 << 10
)

// QueueBatched queues the frame head+body+tail of a stream of frames (subscription items) and
// lets it wait up to batchDelay for more before the write, so a single producer's items share
// syscalls. It waits while the queue is full, until stop is set (then ErrWriteStopped). It
// never writes: when the queue is large enough to go now it returns true and the caller
// calls flush, outside whatever lock it holds.
func (f *FrameWriter) QueueBatched(head, body []byte, tail string, stop *atomic.Bool) (flush bool, err error) {
	if err := f.enqueueStop(head, body, tail, stop); err != nil {
		return false, err
	}
	defer f.mu.Unlock()
	switch {
	case f.flushing:
		return false, nil
	case len(f.buf) >= batchBytes:
		return true, nil
	case !f.scheduled:
		f.scheduled = true
		time.AfterFunc(batchDelay, f.flushScheduled)
	}
	return false, nil
}

// WriteYielding queues the frame body and makes sure it is written: by the writer writing
// now, by one about to write (yielding, or a batched flush pending), or by this caller, which
// first yields the processor once so that goroutines ready to write on this stream (callers
// woken by the same packet, handlers finishing together) queue their frames to share the
// write. With nothing else ready the yield returns at once: a lone writer does not wait.
// Unlike QueueBatched it needs no timer, and the write runs on the caller's goroutine.
func (f *FrameWriter) WriteYielding(body []byte, stop *atomic.Bool) error {
	if err := f.enqueueStop(body, nil, "", stop); err != nil {
		return err
	}
	if f.flushing || f.scheduled {
		f.mu.Unlock()
		return nil
	}
	f.scheduled = true
	f.mu.Unlock()
	runtime.Gosched()
	f.mu.Lock()
	f.scheduled = false
	if f.flushing || len(f.buf) == 0 {
		f.mu.Unlock()
		return nil
	}
	return f.flushLocked()
}

// Flush writes the queue unless another writer is writing it.
func (f *FrameWriter) Flush() error {
	f.mu.Lock()
	if f.flushing || len(f.buf) == 0 {
		f.mu.Unlock()
		return nil
	}
	return f.flushLocked()
}

// Wake makes writers waiting for queue room re-check their stop flags.
func (f *FrameWriter) Wake() {
	f.mu.Lock()
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *FrameWriter) flushScheduled() {
	f.mu.Lock()
	f.scheduled = false
	if f.flushing || len(f.buf) == 0 {
		f.mu.Unlock()
		return
	}
	_ = f.flushLocked() // a write error is sticky: the next writer reports it
}
