package app

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// spinner shows that a long wait (dialing, unlocking with a slow KDF) is in progress. It draws
// only on a terminal, on stderr, and erases itself when stopped.
type spinner struct {
	w     io.Writer
	label string
	stop  chan struct{}
	done  sync.WaitGroup
}

var spinFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// startSpinner starts a spinner on w when enabled; the returned func stops and erases it.
func startSpinner(w io.Writer, enabled bool, label string, every time.Duration) func() {
	if !enabled {
		return func() {}
	}
	s := &spinner{w: w, label: label, stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(s.w, "\r%s %s", spinFrames[i%len(spinFrames)], s.label)
			select {
			case <-t.C:
			case <-s.stop:
				fmt.Fprintf(s.w, "\r\033[K")
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(s.stop)
			s.done.Wait()
		})
	}
}

// spin starts a spinner on e's stderr if it is a terminal.
func (e *env) spin(label string) func() {
	return startSpinner(e.stderr, isTTY(e.stderr), label, 100*time.Millisecond)
}
