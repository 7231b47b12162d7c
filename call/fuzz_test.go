package call

import (
	"bytes"
	"encoding/json"
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
	f.Add([]byte(`{"type":"call.responded","id":"1","payload":{"output":{"a":[1]},"output":2}}`))
	f.Add([]byte(`{"payload":{"\u006futput":"x","n":{"output":1}},"type":"call.responded","id":"1"}`))
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
		_, _ = decodeError(e.Payload)
		// The output found in the envelope's pass is the one decodeResponded finds.
		got, gotOK := e.respondedOutput()
		want, wantOK := decodeResponded(e.Payload)
		if gotOK != wantOK || !bytes.Equal(got, want) {
			t.Fatalf("output %q %v, decodeResponded %q %v", got, gotOK, want, wantOK)
		}
	})
}

// FuzzScanner checks the hand-written scanner against encoding/json: a document is accepted
// as an object exactly when json.Valid accepts it and it is an object.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `{"a":1e5,"b":-0.5E-3}`, `{"a":01}`, `{"a":"\x01"}`, `[1]`, `{"a":1}x`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := members(b, func([]byte, []byte) error { return nil })
		i := skipWS(b, 0)
		want := json.Valid(b) && i < len(b) && b[i] == '{'
		if (err == nil) != want {
			t.Fatalf("scanner says %v, encoding/json says valid object = %v, for %q", err, want, b)
		}
	})
}

// FuzzDecodeTree checks the schema-validation tree builder against the library's own
// decoder (encoding/json with UseNumber): same acceptance, same tree.
func FuzzDecodeTree(f *testing.F) {
	for _, s := range treeCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTree(t, b)
	})
}
