package call

import (
	"sync"
	"sync/atomic"
	"time"
)

// workerIdle is how long a pooled goroutine waits for another task before it exits.
const workerIdle = time.Second

// workers runs a connection's per-call tasks (served streams, inbound requests, response
// readers) on goroutines that outlive one task. A fresh goroutine per task starts with a small
// stack and grows it on every call: in the QUIC unary benchmark, stack copying was 18% of the
// server's CPU. A worker keeps its grown stack for the next task. Tasks never wait for a
// worker: with none idle, a new one starts.
type workers struct {
	tasks   chan func() // unbuffered: a send succeeds only when an idle worker takes it
	wg      *sync.WaitGroup
	done    <-chan struct{} // workers exit once it is closed
	spawned atomic.Int64    // goroutines started (tests)
}

func newWorkers(wg *sync.WaitGroup, done <-chan struct{}) *workers {
	return &workers{tasks: make(chan func()), wg: wg, done: done}
}

// run runs f on an idle worker or a new one. The caller must hold a count on wg (the caller's
// own goroutine is counted), so the Add here never races with Wait.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		w.wg.Add(1)
		w.spawned.Add(1)
		go w.work(f)
	}
}

func (w *workers) work(first func()) {
	defer w.wg.Done()
	first()
	first = nil // an idle worker must not keep its last task's request alive
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case f := <-w.tasks:
			f()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}
