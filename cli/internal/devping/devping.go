// Package devping is the trivial alknet/ping protocol the dev node serves until the call
// protocol lands: the client writes "ping" and half-closes; the node answers "pong".
package devping

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
)

// ALPN of the ping protocol.
const ALPN = "alknet/ping"

const (
	maxRequest = 64
	ioTimeout  = 10 * time.Second
)

// ErrBadReply reports a reply other than "pong".
var ErrBadReply = errors.New("devping: unexpected reply")

// Handler answers pings on every stream of a connection.
type Handler struct{ Log *slog.Logger }

// ALPN implements endpoint.ProtocolHandler.
func (Handler) ALPN() string { return ALPN }

// Handle answers each stream until the connection or ctx ends.
func (h Handler) Handle(ctx context.Context, c conn.Connection, _ auth.AuthContext) error {
	stop := context.AfterFunc(ctx, func() { _ = c.Close(conn.CodeShutdown, conn.ReasonShutdown) })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, conn.ErrConnectionClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		endpoint.Go(ctx, h.Log, func(context.Context) {
			defer wg.Done()
			answer(s)
		})
	}
}

func answer(s conn.Stream) {
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(ioTimeout))
	req, err := io.ReadAll(io.LimitReader(s, maxRequest+1))
	if err != nil || len(req) > maxRequest || string(req) != "ping" {
		s.Cancel(1)
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := s.Write([]byte("pong")); err == nil {
		_ = s.CloseWrite()
	}
}

// Ping sends one ping on c and waits for the pong.
func Ping(ctx context.Context, c conn.Connection) error {
	s, err := conn.Open(ctx, c)
	if err != nil {
		return err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetReadDeadline(dl)
		_ = s.SetWriteDeadline(dl)
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	reply, err := io.ReadAll(io.LimitReader(s, maxRequest))
	if err != nil {
		return err
	}
	if string(reply) != "pong" {
		return fmt.Errorf("%w: %q", ErrBadReply, reply)
	}
	return nil
}
