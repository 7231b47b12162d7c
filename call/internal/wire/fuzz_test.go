package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"testing/iotest"
)

func FuzzFrameReader(f *testing.F) {
	var b bytes.Buffer
	w := NewFrameWriter(&b, 0)
	_ = w.WriteFrame([]byte(`{"type":"call.requested","id":"1","payload":{}}`))
	_ = w.WriteFrame([]byte(`{}`))
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 9, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := readAllFrames(t, NewFrameReader(bytes.NewReader(data), 4096), len(data))
		// Read-ahead, with reads of any size and the EOF with the last data, sees the same
		// frames and the same end; frames already returned are never overwritten.
		for _, src := range []io.Reader{iotest.OneByteReader(bytes.NewReader(data)), iotest.DataErrReader(bytes.NewReader(data)), iotest.HalfReader(bytes.NewReader(data))} {
			r := NewFrameReader(src, 4096)
			r.ReadAhead(7)
			got, gotErr := readAllFrames(t, r, len(data))
			if !slices.EqualFunc(got, want, bytes.Equal) || errorKind(gotErr) != errorKind(wantErr) {
				t.Fatalf("read-ahead: %q, %v; exact reads: %q, %v", got, gotErr, want, wantErr)
			}
		}
		// Deadlines between any two reads (a slow peer timed for inactivity) lose no byte and
		// never desynchronise: retried after each deadline, both modes see the same frames.
		for _, ahead := range []int{0, 7} {
			r := NewFrameReader(&deadlineReader{data: data}, 4096)
			r.ReadAhead(ahead)
			var got [][]byte
			var gotErr error
			for {
				body, err := r.ReadFrame()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if err != nil {
					gotErr = err
					break
				}
				got = append(got, body)
			}
			if !slices.EqualFunc(got, want, bytes.Equal) || errorKind(gotErr) != errorKind(wantErr) {
				t.Fatalf("with deadlines (read-ahead %d): %q, %v; without: %q, %v", ahead, got, gotErr, want, wantErr)
			}
			if r.received != uint64(len(data)) && gotErr == io.EOF {
				t.Fatalf("received %d of %d bytes", r.received, len(data))
			}
		}
	})
}

// deadlineReader hands out its data in pieces of 1 to 5 bytes, failing every other read with a
// deadline error.
type deadlineReader struct {
	data []byte
	n    int
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.n++
	if d.n%2 == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	if len(d.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), len(d.data), 1+d.n%5)
	copy(p, d.data[:k])
	d.data = d.data[k:]
	return k, nil
}

// readAllFrames reads frames until an error; it copies nothing, so a later read that
// overwrote an earlier frame shows in the comparison.
func readAllFrames(t *testing.T, r *FrameReader, inputLen int) ([][]byte, error) {
	var frames [][]byte
	total := 0
	for {
		body, err := r.ReadFrame()
		if err != nil {
			if err != io.EOF && !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrTruncatedFrame) {
				t.Fatalf("unexpected error %v", err)
			}
			if err != io.EOF && body != nil {
				t.Fatal("a broken frame was delivered")
			}
			return frames, err
		}
		if len(body) == 0 || len(body) > 4096 {
			t.Fatalf("frame of %d bytes delivered", len(body))
		}
		total += 4 + len(body)
		if total > inputLen {
			t.Fatal("read more than the input")
		}
		frames = append(frames, body)
	}
}

func errorKind(err error) string {
	switch {
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, ErrMalformedFrame):
		return "malformed"
	case errors.Is(err, ErrTruncatedFrame):
		return "truncated"
	}
	return fmt.Sprint(err)
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"type":"call.requested","id":"1","payload":{"operationId":"/a/b","input":null}}`))
	f.Add([]byte(`{"type":"call.error","id":"x","payload":{"code":"X","message":"m","retryable":true,"details":null}}`))
	f.Add([]byte(`{"type":"a","type":"b","id":"1","payload":{}}`))
	f.Add([]byte("\xff"))
	f.Add([]byte(`{"type":"call.responded","id":"1","payload":{"output":{"a":[1]},"output":2}}`))
	f.Add([]byte(`{"payload":{"\u006futput":"x","n":{"output":1}},"type":"call.responded","id":"1"}`))
	f.Add([]byte(`{"type":"call.responded","id":"1","p\u0061yload":{"output":7}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := DecodeEnvelope(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error %v does not match ErrMalformedFrame", err)
			}
			return
		}
		// A decoded envelope re-encodes and decodes to the same envelope.
		back, err := DecodeEnvelope(AppendEnvelope(nil, e))
		if err != nil || back.Type != e.Type || back.ID != e.ID || !bytes.Equal(back.Payload, e.Payload) {
			t.Fatalf("re-encode: %+v vs %+v (%v)", back, e, err)
		}
		// Payload readers never panic on any payload.
		_ = DecodeRequested(e.Payload)
		_, _ = DecodeError(e.Payload)
		// The output found in the envelope's pass is the one decodeResponded finds.
		got, gotOK := e.RespondedOutput()
		want, wantOK := DecodeResponded(e.Payload)
		if gotOK != wantOK || !bytes.Equal(got, want) {
			t.Fatalf("output %q %v, decodeResponded %q %v", got, gotOK, want, wantOK)
		}
	})
}

// FuzzDecodeVia: any value of "via" and "timeout_ms" decodes within its bounds, never panics,
// and a decoded via re-encodes to itself.
func FuzzDecodeVia(f *testing.F) {
	f.Add([]byte(`["ed25519:aa","ed25519:bb"]`), []byte(`1500`))
	f.Add([]byte(`[]`), []byte(`0`))
	f.Add([]byte(`["a",1]`), []byte(`1e3`))
	f.Add([]byte(`[["x"]]`), []byte(`"7"`))
	f.Fuzz(func(t *testing.T, via, timeout []byte) {
		payload := append(append(append(append([]byte(`{"operationId":"/a","via":`), via...), `,"timeout_ms":`...), timeout...), '}')
		p := DecodeRequested(payload)
		if p.TimeoutMS < 0 || p.TimeoutMS > MaxTimeoutMS {
			t.Fatalf("timeout_ms %d out of bounds", p.TimeoutMS)
		}
		if len(p.Via) > MaxViaDecoded || p.ViaLen < len(p.Via) || (p.ViaLen > 0) != (len(p.Via) > 0) {
			t.Fatalf("via %d kept, %d counted", len(p.Via), p.ViaLen)
		}
		for _, v := range p.Via {
			if len(v) > MaxViaEntryBytes {
				t.Fatalf("entry of %d bytes", len(v))
			}
		}
		if p.ViaLen > MaxViaDecoded || len(p.Via) == 0 {
			return
		}
		back := DecodeRequested(AppendRequested(nil, RequestedPayload{OperationID: "/a", Via: p.Via, TimeoutMS: p.TimeoutMS}))
		if !slices.Equal(back.Via, p.Via) || back.TimeoutMS != p.TimeoutMS {
			t.Fatalf("round trip: %q %d → %q %d", p.Via, p.TimeoutMS, back.Via, back.TimeoutMS)
		}
	})
}
