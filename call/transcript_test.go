package call_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/conn"

	"github.com/alkdev/alknet/call/internal/wire"
)

// transcript is a golden wire exchange: frames sent to a node, frames expected back in order,
// and nothing more within a short wait.
type transcript struct {
	comment      string
	send, expect []string
}

func parseTranscript(t *testing.T, data string) transcript {
	t.Helper()
	var tr transcript
	section := ""
	for _, line := range strings.Split(data, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --") {
			section = strings.TrimSuffix(strings.TrimPrefix(line, "-- "), " --")
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		switch section {
		case "":
			tr.comment += line + "\n"
		case "send":
			tr.send = append(tr.send, line)
		case "expect":
			tr.expect = append(tr.expect, line)
		default:
			t.Fatalf("unknown section %q", section)
		}
	}
	if tr.comment == "" {
		t.Fatal("a transcript must say which bug or rule it guards")
	}
	return tr
}

// transcriptNodeFP is the fingerprint of the node the transcripts talk to (loop checks).
var transcriptNodeFP = "ed25519:" + strings.Repeat("ab", 32)

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	d := buildDispatcher(t, nodeOpts{regs: demoRegs(), dopts: call.Options{NodeFingerprint: transcriptNodeFP}}, nil)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			tr := parseTranscript(t, string(data))
			a, b := conn.Pipe(call.ALPN)
			srv := call.NewConn(a, d, call.ConnOptions{})
			done := make(chan struct{})
			go func() { defer close(done); _ = srv.Run(context.Background()) }()
			defer func() { _ = b.Close(0, ""); <-done }()
			st, err := b.AcceptStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			w := wire.NewFrameWriter(st, 0)
			for _, s := range tr.send {
				if err := w.WriteFrame([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			r := wire.NewFrameReader(st, 0)
			for i, want := range tr.expect {
				_ = st.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got, []byte(want)) {
					t.Fatalf("frame %d\n got %s\nwant %s", i, got, want)
				}
			}
			_ = st.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			if extra, err := r.ReadFrame(); err == nil {
				t.Fatalf("unexpected frame %s", extra)
			} else if !errors.Is(err, conn.ErrTimeout) {
				t.Fatalf("after the transcript: %v", err)
			}
		})
	}
}

// TestProtocolDocExample checks the worked example of docs/protocol.md §18 byte for byte against
// the golden transcript it quotes: the request frame, then the response frame.
func TestProtocolDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	var dumps [][]byte
	for _, block := range strings.Split(string(doc), "```hexdump\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		var b []byte
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			hexPart, _, _ := strings.Cut(line, "|")
			fields := strings.Fields(hexPart)
			for _, f := range fields[1:] { // the offset first
				v, err := strconv.ParseUint(f, 16, 8)
				if err != nil {
					t.Fatalf("hexdump line %q: %v", line, err)
				}
				b = append(b, byte(v))
			}
		}
		dumps = append(dumps, b)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "transcripts", "echo.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	tr := parseTranscript(t, string(data))
	want := [][]byte{frameOf(tr.send[0]), frameOf(tr.expect[0])}
	if len(dumps) != len(want) {
		t.Fatalf("docs/protocol.md has %d hexdumps, want %d", len(dumps), len(want))
	}
	for i := range want {
		if !bytes.Equal(dumps[i], want[i]) {
			t.Errorf("hexdump %d\n doc %q\nwant %q", i, dumps[i], want[i])
		}
	}
}

// frameOf returns body as a frame: its length prefix, then the body.
func frameOf(body string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}
