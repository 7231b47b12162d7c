package call

import (
	"bytes"
	"errors"
	"io"
	"testing"
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
		r := NewFrameReader(bytes.NewReader(data), 4096)
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
				return
			}
			if len(body) == 0 || len(body) > 4096 {
				t.Fatalf("frame of %d bytes delivered", len(body))
			}
			total += 4 + len(body)
			if total > len(data) {
				t.Fatal("read more than the input")
			}
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"type":"call.requested","id":"1","payload":{"operationId":"/a/b","input":null}}`))
	f.Add([]byte(`{"type":"call.error","id":"x","payload":{"code":"X","message":"m","retryable":true,"details":null}}`))
	f.Add([]byte(`{"type":"a","type":"b","id":"1","payload":{}}`))
	f.Add([]byte("\xff"))
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
		_ = decodeRequested(e.Payload)
		_, _ = decodeResponded(e.Payload)
		_, _ = decodeError(e.Payload)
	})
}
