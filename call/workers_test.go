package call

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestWorkersReuseIdleGoroutines(t *testing.T) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	w := newWorkers(&wg, done)
	wg.Add(1) // the caller's own count, as on a Conn
	for range 100 {
		ran := make(chan struct{})
		w.run(func() { close(ran) })
		<-ran
		time.Sleep(time.Millisecond) // let the worker return to waiting
	}
	if n := w.spawned.Load(); n > 3 {
		t.Errorf("100 sequential tasks started %d goroutines, want a reused few", n)
	}
	close(done)
	wg.Done()
	wg.Wait()
}

func TestWorkersNeverWait(t *testing.T) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	w := newWorkers(&wg, done)
	wg.Add(1)
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 50 {
		started.Add(1)
		w.run(func() { started.Done(); <-release }) // all 50 block at once
	}
	started.Wait()
	if n := w.spawned.Load(); n != 50 {
		t.Errorf("50 blocked tasks on %d goroutines, want 50", n)
	}
	close(release)
	close(done)
	wg.Done()
	wg.Wait()
}

func TestWorkersExitWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		w := newWorkers(&wg, make(chan struct{}))
		wg.Add(1)
		w.run(func() {})
		wg.Done()
		time.Sleep(workerIdle / 2)
		synctest.Wait()
		if w.spawned.Load() != 1 {
			t.Fatal("no worker started")
		}
		time.Sleep(workerIdle) // past the idle limit: the worker exits and Wait returns
		wg.Wait()
	})
}
