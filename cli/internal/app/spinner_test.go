package app

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestSpinner(t *testing.T) {
	var buf lockedBuf
	stop := startSpinner(&buf, true, "dialing", time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), "dialing") < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	stop() // idempotent
	out := buf.String()
	if strings.Count(out, "dialing") < 3 || !strings.HasSuffix(out, "\r\033[K") {
		t.Fatalf("spinner output %q", out)
	}
	var quiet lockedBuf
	startSpinner(&quiet, false, "x", time.Millisecond)()
	if quiet.String() != "" {
		t.Fatal("a disabled spinner drew")
	}
}
