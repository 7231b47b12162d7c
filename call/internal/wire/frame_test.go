package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// Checklist 1, 3, 5.
func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	w := NewFrameWriter(&buf, 0)
	for _, body := range []string{`{"a":1}`, `{"b":2}`, strings.Repeat("x", 300)} {
		if err := w.WriteFrame([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if got := binary.BigEndian.Uint32(buf.Bytes()[:4]); got != 7 {
		t.Fatalf("prefix %d, want the body length 7 (big-endian)", got)
	}
	r := NewFrameReader(bytes.NewReader(buf.Bytes()), 0)
	for _, want := range []string{`{"a":1}`, `{"b":2}`, strings.Repeat("x", 300)} {
		got, err := r.ReadFrame()
		if err != nil || string(got) != want {
			t.Fatalf("ReadFrame = %.20q, %v; want %.20q", got, err, want)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"zero length", []byte{0, 0, 0, 0}, ErrMalformedFrame},
		{"over max", []byte{0, 0, 4, 1}, ErrMalformedFrame}, // 1025 > 1024
		{"EOF in prefix", []byte{0, 0}, ErrTruncatedFrame},
		{"EOF in body", []byte{0, 0, 0, 5, 'a', 'b'}, ErrTruncatedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := NewFrameReader(bytes.NewReader(tt.in), 1024).ReadFrame()
			if !errors.Is(err, tt.want) || body != nil {
				t.Fatalf("ReadFrame = %q, %v; want %v and no frame", body, err, tt.want)
			}
		})
	}
	if err := NewFrameWriter(io.Discard, 1024).WriteFrame(make([]byte, 1025)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized write: %v", err)
	}
	// At the 64 MiB cap, a 67,108,864-byte frame passes.
	big := make([]byte, MaxFrameSizeCap)
	var bb bytes.Buffer
	if err := NewFrameWriter(&bb, MaxFrameSizeCap).WriteFrame(big); err != nil {
		t.Fatal(err)
	}
	if got, err := NewFrameReader(&bb, MaxFrameSizeCap).ReadFrame(); err != nil || len(got) != MaxFrameSizeCap {
		t.Fatalf("64 MiB frame: %d %v", len(got), err)
	}
}

// Checklist 6, 7, 8.
func TestEnvelope(t *testing.T) {
	got := string(AppendEnvelope(nil, Envelope{Type: EventRequested, ID: "a<b>&c", Payload: AppendRequested(nil,
		RequestedPayload{OperationID: "/demo/echo", Input: []byte(`{"text":"<&>"}`), AuthToken: "tok"})}))
	want := `{"type":"call.requested","id":"a<b>&c","payload":{"operationId":"/demo/echo","input":{"text":"<&>"},"auth_token":"tok"}}`
	if got != want {
		t.Fatalf("envelope\n got %s\nwant %s", got, want)
	}
	if got := string(AppendEnvelope(nil, Envelope{Type: EventCompleted, ID: "x", Payload: EmptyObject})); got != `{"type":"call.completed","id":"x","payload":{}}` {
		t.Fatal(got)
	}
	e, err := DecodeEnvelope([]byte(`{"extra":[1],"payload":null,"id":"7","type":"call.aborted"}`))
	if err != nil || e.Type != EventAborted || e.ID != "7" || string(e.Payload) != "null" {
		t.Fatalf("decode: %+v %v", e, err)
	}
	for name, body := range map[string]string{
		"invalid UTF-8":     "{\"type\":\"call.aborted\",\"id\":\"\xff\",\"payload\":{}}",
		"array":             `[1,2]`,
		"string":            `"x"`,
		"missing type":      `{"id":"1","payload":{}}`,
		"missing id":        `{"type":"call.aborted","payload":{}}`,
		"missing payload":   `{"type":"call.aborted","id":"1"}`,
		"numeric id":        `{"type":"call.aborted","id":1,"payload":{}}`,
		"duplicate type":    `{"type":"a","type":"b","id":"1","payload":{}}`,
		"duplicate payload": `{"type":"a","id":"1","payload":{},"payload":{}}`,
		"trailing data":     `{"type":"a","id":"1","payload":{}} {}`,
		"truncated":         `{"type":"a","id":"1","payload":{`,
	} {
		if _, err := DecodeEnvelope([]byte(body)); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// call.error: absent details omitted, present kept verbatim, null read as absent.
	if got := string(AppendError(nil, ErrorPayload{Code: "X", Message: "m"})); got != `{"code":"X","message":"m","retryable":false}` {
		t.Fatal(got)
	}
	if got := string(AppendError(nil, ErrorPayload{Code: "X", Message: "m", Retryable: true, Details: []byte(`{"b":1, "a":[2]}`)})); got != `{"code":"X","message":"m","retryable":true,"details":{"b":1, "a":[2]}}` {
		t.Fatal(got)
	}
	ce, ok := DecodeError([]byte(`{"code":"X","message":"m","retryable":false,"details":null}`))
	if !ok || ce.Details != nil {
		t.Fatalf("details null: %+v", ce)
	}
	if _, ok := DecodeError([]byte(`{"code":"X","message":"m"}`)); ok {
		t.Fatal("call.error without retryable decoded")
	}
}

func TestDecodeRequestedLenient(t *testing.T) {
	p := DecodeRequested([]byte(`{"operationId":5,"auth_token":7,"forwarded_for":{"scopes":["x"]}}`))
	if p.OperationID != "" || string(p.Input) != "null" || p.HasAuthToken || p.ForwardedFor != nil {
		t.Fatalf("%+v", p)
	}
	p = DecodeRequested([]byte(`{"operationId":"/a/b","input":18446744073709551617,"forwarded_for":{"id":"alice"}}`))
	if p.OperationID != "/a/b" || string(p.Input) != "18446744073709551617" || p.ForwardedFor == nil || p.ForwardedFor.ID != "alice" {
		t.Fatalf("%+v", p)
	}
}

// slowWriter makes every Write take a moment, so concurrent writers queue behind each other.
type slowWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(20 * time.Microsecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestFrameWriterConcurrent mixes the four entry points from many goroutines: every frame
// arrives whole, once, and each writer's frames in its order.
func TestFrameWriterConcurrent(t *testing.T) {
	const writers, each = 8, 200
	var sw slowWriter
	w := NewFrameWriter(&sw, 0)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Appendf(nil, "%d:%d:%s", g, i, strings.Repeat("x", i%50))
				var err error
				switch i % 4 {
				case 0:
					err = w.WriteFrame(body)
				case 1:
					err = w.WriteFramed(append(make([]byte, PrefixLen), body...))
				case 2:
					err = w.WriteYielding(body, nil)
				default:
					var flush bool
					if flush, err = w.QueueBatched(body[:2], body[2:len(body)-1], string(body[len(body)-1:]), nil); flush && err == nil {
						err = w.Flush()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Drain(); err != nil {
		t.Fatal(err)
	}
	r := NewFrameReader(&sw.buf, 0)
	next := make([]int, writers)
	for n := 0; n < writers*each; n++ {
		body, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(body), "%d:%d:", &g, &i); err != nil {
			t.Fatalf("frame %q: %v", body, err)
		}
		if i != next[g] || !strings.HasSuffix(string(body), ":"+strings.Repeat("x", i%50)) {
			t.Fatalf("writer %d: got frame %q, want number %d", g, body, next[g])
		}
		next[g]++
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after every frame: %v, want io.EOF", err)
	}
}

// TestFrameReaderEnded: an EOF delivered with a frame's last bytes is remembered.
func TestFrameReaderEnded(t *testing.T) {
	var b bytes.Buffer
	_ = NewFrameWriter(&b, 0).WriteFrame([]byte(`{}`))
	r := NewFrameReader(iotest.DataErrReader(&b), 0) // returns the last data with io.EOF
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if !r.Ended() {
		t.Fatal("Ended() = false after the data came with io.EOF")
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("next ReadFrame: %v, want io.EOF", err)
	}
	// Without the EOF yet, the reader does not claim the end.
	b.Reset()
	_ = NewFrameWriter(&b, 0).WriteFrame([]byte(`{}`))
	r = NewFrameReader(&b, 0)
	if _, err := r.ReadFrame(); err != nil || r.Ended() {
		t.Fatalf("err %v, Ended %v; want nil, false", err, r.Ended())
	}
	// A prefix that ends the stream is a truncated frame.
	r = NewFrameReader(iotest.DataErrReader(bytes.NewReader([]byte{0, 0, 0, 2})), 0)
	if _, err := r.ReadFrame(); !errors.Is(err, ErrTruncatedFrame) {
		t.Fatalf("prefix then EOF: %v, want ErrTruncatedFrame", err)
	}
}

func TestDecodeRequestedViaAndTimeout(t *testing.T) {
	long := strings.Repeat("a", MaxViaEntryBytes+1)
	for _, tc := range []struct {
		payload string
		via     []string
		viaLen  int
		timeout int64
	}{
		{`{"operationId":"/a","via":["ed25519:aa","ed25519:bb"],"timeout_ms":1500}`, []string{"ed25519:aa", "ed25519:bb"}, 2, 1500},
		{`{"via":[],"timeout_ms":1}`, nil, 0, 1},
		{`{"via":"ed25519:aa"}`, nil, 0, 0},                           // not an array: absent
		{`{"via":["a",1]}`, nil, 0, 0},                                // not all strings: absent
		{`{"via":["` + long + `"]}`, nil, 0, 0},                       // an entry too long: absent
		{`{"via":{"a":1}}`, nil, 0, 0},                                // an object: absent
		{`{"timeout_ms":0}`, nil, 0, 0},                               // 0 reads as absent
		{`{"timeout_ms":1e3}`, nil, 0, 0},                             // not digits only
		{`{"timeout_ms":1000.0}`, nil, 0, 0},                          //
		{`{"timeout_ms":"1000"}`, nil, 0, 0},                          // a string
		{`{"timeout_ms":-5}`, nil, 0, 0},                              // a sign
		{`{"timeout_ms":99999999999999999999}`, nil, 0, MaxTimeoutMS}, // clamped
	} {
		p := DecodeRequested([]byte(tc.payload))
		if !slices.Equal(p.Via, tc.via) || p.ViaLen != tc.viaLen || p.TimeoutMS != tc.timeout {
			t.Errorf("%s: via %q (%d) timeout %d; want %q (%d) %d", tc.payload, p.Via, p.ViaLen, p.TimeoutMS, tc.via, tc.viaLen, tc.timeout)
		}
	}
	// A long via keeps MaxViaDecoded entries and counts them all.
	many := `{"via":[` + strings.TrimSuffix(strings.Repeat(`"x",`, 1000), ",") + `]}`
	if p := DecodeRequested([]byte(many)); len(p.Via) != MaxViaDecoded || p.ViaLen != 1000 {
		t.Fatalf("1000 entries: kept %d, counted %d", len(p.Via), p.ViaLen)
	}
	// Encoding: via after forwarded_for, timeout_ms last.
	got := string(AppendRequested(nil, RequestedPayload{OperationID: "/a", Via: []string{"ed25519:aa"}, TimeoutMS: 250}))
	if want := `{"operationId":"/a","input":null,"via":["ed25519:aa"],"timeout_ms":250}`; got != want {
		t.Fatalf("encoded %s, want %s", got, want)
	}
}

// failAfter accepts n writes, then fails every one.
type failAfter struct {
	mu sync.Mutex
	n  int
}

var errBroken = errors.New("broken stream")

func (f *failAfter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return 0, errBroken
	}
	f.n--
	return len(p), nil
}

// A write that fails is told to the stream's owner once, whichever path wrote it: a direct
// write, or a batched frame flushed later by the writer's timer, whose writer had returned nil.
func TestFrameWriterOnError(t *testing.T) {
	frame := func(s string) []byte { return append(make([]byte, PrefixLen), s...) }
	cases := []struct {
		name  string
		write func(w *FrameWriter) error // the failing write; nil = the failure comes later
	}{
		{"direct", func(w *FrameWriter) error { return w.WriteFramed(frame(`{"a":1}`)) }},
		{"batched", func(w *FrameWriter) error {
			flush, err := w.QueueBatched([]byte(`{"b":2}`), nil, "", nil)
			if err != nil || flush {
				t.Fatalf("a small batched frame went at once: %v %v", flush, err)
			}
			return nil // written by the timer, which fails
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			told := make(chan error, 4)
			w := NewFrameWriter(&failAfter{}, 0)
			w.OnError(func(err error) { told <- err })
			if err := tc.write(w); err != nil && !errors.Is(err, errBroken) {
				t.Fatalf("write: %v", err)
			}
			select {
			case err := <-told:
				if !errors.Is(err, errBroken) {
					t.Fatalf("told %v, want the write's error", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the failed write was never told")
			}
			// Later writes report the sticky error themselves; the owner is not told again.
			if err := w.WriteFramed(frame(`{"c":3}`)); !errors.Is(err, errBroken) {
				t.Fatalf("later write: %v", err)
			}
			if err := w.Drain(); !errors.Is(err, errBroken) {
				t.Fatalf("drain: %v", err)
			}
			select {
			case err := <-told:
				t.Fatalf("told twice: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// Buffered reports a complete next frame only: not a partial one, and never without read-ahead.
func TestFrameReaderBuffered(t *testing.T) {
	var in bytes.Buffer
	w := NewFrameWriter(&in, 0)
	for _, s := range []string{`{"a":1}`, `{"b":2}`} {
		if err := w.WriteFrame([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	whole := in.Bytes()
	partial := append(slices.Clone(whole), 0, 0, 0, 9, '{') // a third frame's start
	r := NewFrameReader(bytes.NewReader(partial), 0)
	if _, err := r.ReadFrame(); err != nil || r.Buffered() {
		t.Fatalf("without read-ahead: buffered %v, %v", r.Buffered(), err)
	}
	r = NewFrameReader(bytes.NewReader(partial), 0)
	r.ReadAhead(1 << 10)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if !r.Buffered() {
		t.Fatal("the second frame is in the chunk: Buffered should say so")
	}
	if body, err := r.ReadFrame(); err != nil || string(body) != `{"b":2}` {
		t.Fatalf("second frame %q %v", body, err)
	}
	if r.Buffered() {
		t.Fatal("only part of the third frame is here: not buffered")
	}
}

// A lone WriteYielding writes its frame before it returns (nothing to wait for); one that finds
// a batched flush pending leaves its frame to it, and the frame still goes out.
func TestWriteYielding(t *testing.T) {
	var sink bytes.Buffer
	w := NewFrameWriter(&sink, 0)
	if err := w.WriteYielding([]byte(`{"a":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := sink.Len(); got != PrefixLen+7 {
		t.Fatalf("after a lone WriteYielding %d bytes were written, want the frame's %d", got, PrefixLen+7)
	}
	var slow slowWriter
	w = NewFrameWriter(&slow, 0)
	if _, err := w.QueueBatched([]byte(`{"b":2}`), nil, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteYielding([]byte(`{"c":3}`), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		slow.mu.Lock()
		n := slow.buf.Len()
		slow.mu.Unlock()
		if n == 2*(PrefixLen+7) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes written, want both frames", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A served stream switches to read-ahead after its first frame (a pooled stream): the frames
// after the switch come back whole and in order, however the bytes arrive.
func TestFrameReaderReadAheadAfterTheFirstFrame(t *testing.T) {
	var in bytes.Buffer
	w := NewFrameWriter(&in, 0)
	var want []string
	for i := range 40 {
		s := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("y", i*37%700))
		want = append(want, s)
		if err := w.WriteFrame([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	for name, src := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(in.Bytes()) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(in.Bytes())) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(in.Bytes())) },
	} {
		t.Run(name, func(t *testing.T) {
			r := NewFrameReader(src(), 0)
			for i, s := range want {
				if i == 1 {
					r.ReadAhead(256) // small chunks: frames move between them
				}
				body, err := r.ReadFrame()
				if err != nil || string(body) != s {
					t.Fatalf("frame %d: %q %v", i, body, err)
				}
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the last frame: %v", err)
			}
		})
	}
}
