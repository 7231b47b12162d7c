package endpoint

import (
	"context"
	"log/slog"
	"runtime/debug"
)

// Go runs fn in a goroutine that recovers and logs a panic, so a handler's helper goroutine
// cannot take the node down. The returned channel closes when fn has returned.
func Go(ctx context.Context, log *slog.Logger, fn func(ctx context.Context)) <-chan struct{} {
	if log == nil {
		log = slog.Default()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				log.Error("goroutine panic", "value", v, "stack", string(debug.Stack()))
			}
		}()
		fn(ctx)
	}()
	return done
}
