package call

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Frame size limits (call-protocol.md §2).
const (
	MaxFrameSizeCap     = 64 << 20 // hard cap, that size included
	DefaultMaxFrameSize = 16 << 20
	MinMaxFrameSize     = 1 << 10
	framePrefixLen      = 4
)

// Frame errors. A malformed or truncated frame breaks its stream (multi-stream) or the
// connection (single-stream); neither is ever delivered.
var (
	ErrMalformedFrame = errors.New("call: malformed frame")
	ErrTruncatedFrame = errors.New("call: truncated frame")
	ErrFrameTooLarge  = errors.New("call: frame exceeds maximum frame size")
)

// FrameReader reads length-prefixed frames from one stream.
type FrameReader struct {
	r      io.Reader
	max    int
	prefix [framePrefixLen]byte
	ended  bool // the stream's end has been read

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

const minChunk = 256

// NewFrameReader reads frames of at most max bytes (0 = DefaultMaxFrameSize).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	f := &FrameReader{}
	f.init(r, max)
	return f
}

func (f *FrameReader) init(r io.Reader, max int) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	*f = FrameReader{r: r, max: max}
}

// ReadFrame returns the next frame body. io.EOF before any prefix byte is a clean end;
// EOF later is ErrTruncatedFrame; a zero or oversized length is ErrMalformedFrame.
// The returned slice is owned by the caller.
func (f *FrameReader) ReadFrame() ([]byte, error) {
	if f.readAhead > 0 && f.pos < len(f.chunk) {
		return f.readChunked()
	}
	f.retireChunk()
	if f.ended {
		return nil, io.EOF
	}
	size, err := f.readPrefix()
	if err != nil {
		return nil, err
	}
	if f.readAhead > 0 {
		f.chunk = append(make([]byte, 0, max(f.nextChunk, framePrefixLen+int(size))), f.prefix[:]...)
		return f.readChunked()
	}
	if f.ended {
		return nil, fmt.Errorf("%w: EOF after the length prefix", ErrTruncatedFrame)
	}
	body := make([]byte, size)
	if _, err := f.readFull(body); err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: EOF inside the body", ErrTruncatedFrame)
		}
		return nil, err
	}
	return body, nil
}

// readPrefix waits for the next length prefix and checks it.
func (f *FrameReader) readPrefix() (uint32, error) {
	n, err := f.readFull(f.prefix[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			return 0, io.EOF
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: EOF inside the length prefix", ErrTruncatedFrame)
		}
		return 0, err
	}
	size := binary.BigEndian.Uint32(f.prefix[:])
	return size, f.checkSize(size)
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
// chunk holds at least the start of a frame.
func (f *FrameReader) readChunked() ([]byte, error) {
	for {
		avail := f.chunk[f.pos:]
		need := framePrefixLen
		if len(avail) >= framePrefixLen {
			size := binary.BigEndian.Uint32(avail)
			if err := f.checkSize(size); err != nil {
				return nil, err
			}
			need += int(size)
			if len(avail) >= need {
				f.pos += need
				return avail[framePrefixLen:need:need], nil
			}
		}
		if f.ended {
			if len(avail) < framePrefixLen {
				return nil, fmt.Errorf("%w: EOF inside the length prefix", ErrTruncatedFrame)
			}
			return nil, fmt.Errorf("%w: EOF inside the body", ErrTruncatedFrame)
		}
		if cap(f.chunk)-f.pos < need { // the frame does not fit: it moves to a new chunk
			f.retireChunk()
			next := make([]byte, len(avail), max(f.nextChunk, need))
			copy(next, avail)
			f.chunk, f.pos = next, 0
		}
		n, err := f.r.Read(f.chunk[len(f.chunk):cap(f.chunk)])
		f.chunk = f.chunk[:len(f.chunk)+n]
		if err == io.EOF {
			f.ended = true
		} else if err != nil {
			return nil, err
		}
	}
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
func (f *FrameReader) Ended() bool { return f.ended && f.pos == len(f.chunk) }

// ReadAhead makes the reader read the stream in chunks of size bytes (0: exactly one frame
// at a time), for streams that carry many frames: fewer reads, no copy and one allocation per
// chunk rather than per frame. Returned frames stay owned by the caller.
func (f *FrameReader) ReadAhead(size int) {
	f.readAhead = size
	f.nextChunk = min(size, 4<<10)
}

// readFull is io.ReadFull, except that an io.EOF delivered together with the last bytes
// wanted is remembered in f.ended instead of being lost.
func (f *FrameReader) readFull(buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.r.Read(buf[n:])
		n += m
		if err == io.EOF && n == len(buf) {
			f.ended = true
			return n, nil
		}
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
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
	scheduled bool  // a batched flush is pending (writeFrameBatched)
	err       error // sticky: the stream is broken
}

// NewFrameWriter writes frames of at most max bytes (0 = DefaultMaxFrameSize).
func NewFrameWriter(w io.Writer, max int) *FrameWriter {
	f := &FrameWriter{}
	f.init(w, max)
	return f
}

// init sets up a zero FrameWriter in place (it must not be copied afterwards).
func (f *FrameWriter) init(w io.Writer, max int) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	f.w, f.max = w, max
	f.cond.L = &f.mu
}

// WriteFrame queues one frame and returns once it is written or handed to the writer that is
// writing. A body over the limit is ErrFrameTooLarge and nothing is written. After a write
// error every later call returns it.
func (f *FrameWriter) WriteFrame(body []byte) error {
	if err := f.enqueue(body, nil, ""); err != nil {
		return err
	}
	if f.flushing {
		f.mu.Unlock()
		return nil
	}
	return f.flushLocked()
}

// writeFramed writes one frame held in buf after framePrefixLen reserved bytes, which it fills
// with the prefix. A writer that finds the stream idle writes buf as it is (no copy); otherwise
// the frame is queued like WriteFrame's.
func (f *FrameWriter) writeFramed(buf []byte) error {
	if len(buf) < framePrefixLen {
		return fmt.Errorf("%w: no room for the length prefix", ErrMalformedFrame)
	}
	body := buf[framePrefixLen:]
	if len(body) == 0 || len(body) > f.max {
		return f.WriteFrame(body) // reports the error
	}
	f.mu.Lock()
	if f.flushing || len(f.buf) > 0 || f.err != nil {
		f.mu.Unlock()
		return f.WriteFrame(body)
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
	n := len(body) + len(more) + len(tail)
	if n == 0 {
		return fmt.Errorf("%w: empty body", ErrMalformedFrame)
	}
	if n > f.max {
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrFrameTooLarge, n, f.max)
	}
	f.mu.Lock()
	for len(f.buf) > maxPendingWrite && f.err == nil {
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
	f.mu.Unlock()
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

// writeFrameBatched queues the frame head+body+tail of a stream of frames (subscription
// items) and lets it wait up to batchDelay for more before the write, so a single producer's
// items share syscalls.
func (f *FrameWriter) writeFrameBatched(head, body []byte, tail string) error {
	if err := f.enqueue(head, body, tail); err != nil {
		return err
	}
	switch {
	case f.flushing:
		f.mu.Unlock()
		return nil
	case len(f.buf) >= batchBytes:
		return f.flushLocked()
	case !f.scheduled:
		f.scheduled = true
		time.AfterFunc(batchDelay, f.flushScheduled)
	}
	f.mu.Unlock()
	return nil
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
