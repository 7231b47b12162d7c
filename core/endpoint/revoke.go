package endpoint

import (
	"context"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/internal/netkey"
)

const sweepTimeout = time.Second

// sweep re-checks every live connection that holds an identity after a reload and closes those
// whose identity is gone or changed. It runs in its own goroutine.
func (e *Endpoint) sweep() {
	e.mu.Lock()
	if e.shuttingDown.Load() {
		e.mu.Unlock()
		return
	}
	live := make([]*tracked, 0, len(e.live))
	for t := range e.live {
		live = append(live, t)
	}
	e.loops.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.loops.Done()
		ctx, cancel := context.WithTimeout(e.baseCtx, sweepTimeout)
		defer cancel()
		provider := e.store.Provider()
		for _, t := range live {
			held, fromFP, ok := t.heldIdentity()
			if !ok || isDone(t.Done()) {
				continue
			}
			var still bool
			if fromFP {
				id, found := provider.FromFingerprint(ctx, t.RemoteFingerprint())
				still = found && id.Equal(held)
			} else if r, isR := provider.(auth.Revalidator); isR {
				still = r.Revalidate(ctx, held)
			}
			if still || !t.revoked.CompareAndSwap(false, true) {
				continue
			}
			e.metrics.Revoked()
			e.log.Info("connection revoked", "peer_id", held.ID, "remote_addr", netkey.Host(t.RemoteAddr()))
			_ = t.Close(conn.CodeRevoked, conn.ReasonRevoked)
		}
	}()
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
