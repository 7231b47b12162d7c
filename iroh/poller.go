//go:build cgo && !noiroh

package iroh

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The poller (spec iroh.md §3.3): one goroutine, running while at least one Transport is open,
// drains the crate's process-wide completion queue and hands each completion to the operation
// that owns its token. Rust never calls Go; only alk_wait blocks.

// op is one pending operation: a waiter's channel (capacity 1, one send) or a callback that
// runs on the poller (short, never blocking) for operations no goroutine waits on.
type op struct {
	ch chan completion
	fn func(completion)
}

type poller struct {
	mu      sync.Mutex // Bind and Close start and join the poller under it
	users   int
	stop    atomic.Bool
	done    chan struct{}
	opsMu   sync.Mutex
	ops     map[uint64]*op
	logSubs map[chan struct{}]struct{}
}

var (
	thePoller  = &poller{ops: make(map[uint64]*op), logSubs: make(map[chan struct{}]struct{})}
	nextToken  atomic.Uint64 // never reused: a late completion can only match its own operation
	initOnce   sync.Once
	initErr    error
	initFaults bool // tests: ALK_INIT_FAULTS (set before the first Bind)
)

// ensureInit makes the crate's runtime once and checks the ABI version of the linked archive.
func ensureInit() error {
	initOnce.Do(func() {
		if v := cABIVersion(); v != abiVersion {
			initErr = fmt.Errorf("%w: the linked alknet-iroh archive has ABI %d, this package needs %d: run make iroh-lib (stamp %s)", ErrABI, v, abiVersion, libStamp)
			return
		}
		flags := uint32(0)
		if initFaults {
			flags = 1
		}
		if st := cInit(runtimeWorkers(runtime.NumCPU()), flags); st != stOK {
			initErr = fmt.Errorf("%w: alk_init: status %d", ErrUnavailable, st)
		}
	})
	return initErr
}

// runtimeWorkers sizes the crate's tokio runtime: half the CPUs (1 to 4), since Go's own
// GOMAXPROCS threads run the other half of the work (the call protocol, handlers). On the
// benchmark's 2 cores one worker instead of two cut unary p50 at c1 from ≈ 675 to ≈ 510 µs and
// raised c64 calls/s from ≈ 10,600 to ≈ 14,500 (docs/performance.md, "iroh").
func runtimeWorkers(cpus int) uint32 { return uint32(min(max(cpus/2, 1), 4)) }

// acquire registers a Transport; the first starts the poller.
func (p *poller) acquire() error {
	if err := ensureInit(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users++
	if p.users == 1 {
		p.stop.Store(false)
		p.done = make(chan struct{})
		go p.run(p.done)
	}
	return nil
}

// releaseUser unregisters a Transport; the last joins the poller.
func (p *poller) releaseUser() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users--
	if p.users > 0 {
		return
	}
	p.stop.Store(true)
	cInterrupt()
	<-p.done
}

func (p *poller) run(done chan struct{}) {
	defer close(done)
	buf := new(cBatch)
	out := make([]completion, 0, waitBatch)
	for !p.stop.Load() {
		out = cWait(&buf.b, out[:0])
		for _, c := range out {
			p.deliver(c)
		}
	}
}

func (p *poller) deliver(c completion) {
	if c.token == tokenLog {
		p.opsMu.Lock()
		for ch := range p.logSubs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		p.opsMu.Unlock()
		return
	}
	p.opsMu.Lock()
	o := p.ops[c.token]
	delete(p.ops, c.token)
	p.opsMu.Unlock()
	switch {
	case o == nil:
		// No owner (cannot happen: tokens are registered before they are issued); release
		// what it carries so nothing leaks.
		abandon(c)
	case o.fn != nil:
		o.fn(c)
	default:
		o.ch <- c
	}
}

// abandon releases every handle a completion nobody will read carries.
func abandon(c completion) {
	if c.status == stOK && c.value != 0 && c.flags&flagFIN == 0 && isHandle(c.value) {
		cRelease(c.value)
	}
	if c.detail != 0 {
		cRelease(c.detail)
	}
}

// isHandle tells a handle (kind in the top byte) from a byte count or generation.
func isHandle(v uint64) bool { k := v >> 56; return k >= 1 && k <= 5 }

func (p *poller) subscribeLogs(ch chan struct{}) {
	p.opsMu.Lock()
	p.logSubs[ch] = struct{}{}
	p.opsMu.Unlock()
}

func (p *poller) unsubscribeLogs(ch chan struct{}) {
	p.opsMu.Lock()
	delete(p.logSubs, ch)
	p.opsMu.Unlock()
}

// issue runs one ABI call that may complete later. It returns the completion at once, or
// (pending) the token and its operation to wait on.
func issue(call func(t uint64, out *completion) int32) (c completion, t uint64, o *op) {
	o = &op{ch: make(chan completion, 1)}
	c, t, pending := thePoller.start(o, call)
	if !pending {
		return c, t, nil
	}
	return c, t, o
}

// issueFunc is issue for an operation whose completion runs fn on the poller.
func issueFunc(call func(t uint64, out *completion) int32, fn func(completion)) (c completion, pending bool) {
	c, _, pending = thePoller.start(&op{fn: fn}, call)
	return c, pending
}

// start registers o under a fresh token before the call (a completion can reach the poller
// before the call returns PENDING) and unregisters it when the call completed at once.
func (p *poller) start(o *op, call func(t uint64, out *completion) int32) (c completion, t uint64, pending bool) {
	t = nextToken.Add(1)
	p.opsMu.Lock()
	p.ops[t] = o
	p.opsMu.Unlock()
	st := call(t, &c)
	if st == stPending {
		return c, t, true
	}
	p.opsMu.Lock()
	delete(p.ops, t)
	p.opsMu.Unlock()
	c.status = st
	return c, t, false
}

// await waits for a pending operation; when ctx ends first it cancels the token and still
// waits for the one completion (the crate answers a cancel at once), so nothing is lost:
// the caller sees either the result or CANCELED, and ctx.Err() tells which ended it.
func await(ctx context.Context, t uint64, o *op) completion {
	if ctx.Done() == nil {
		return <-o.ch
	}
	select {
	case c := <-o.ch:
		return c
	case <-ctx.Done():
		cCancel(t)
		return <-o.ch
	}
}

// awaitDeadline is await with a deadline (zero: none) instead of a context.
func awaitDeadline(deadline time.Time, t uint64, o *op) (c completion, timedOut bool) {
	if deadline.IsZero() {
		return <-o.ch, false
	}
	var fired atomic.Bool
	timer := time.AfterFunc(time.Until(deadline), func() { fired.Store(true); cCancel(t) })
	c = <-o.ch
	timer.Stop()
	return c, fired.Load() && c.status == stCanceled
}
