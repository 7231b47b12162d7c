package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// links keeps a node's [[import]] and [[uplink]] links up and imports what [[import]] and
// [hub] say (docs/cli.md, "Links"). Dialled links go through the endpoint (Endpoint.Dispatch),
// so they get identity resolution, the node's protocol handler, revocation, limits and drain
// like any inbound connection; the handler's OnConn hook hands every alknet/call connection
// to onConn, which decides what to import from it.
type links struct {
	log       *slog.Logger
	file      *nodeconfig.File
	key       *identity.NodeKey
	caps      core.Capabilities
	set       *call.PeerSet
	ep        func() *endpoint.Endpoint
	idleEvery time.Duration // TCP links call node/health this often (the single-stream idle timeout / 3)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	dialled map[<-chan struct{}]bool // links this node dialled (linkKey)
	buffers map[<-chan struct{}]int  // their subscription buffers
	holders map[string]*importer     // layer id → the importer holding it
}

// linkStreamReuse is how many long-lived streams a link pipelines its calls over.
const linkStreamReuse = 4

// importer imports one link's catalogue under one layer id until the link ends or it is replaced.
type importer struct {
	id      string
	c       *call.Conn
	dialled bool
	cancel  context.CancelFunc
}

func newLinks(log *slog.Logger, f *nodeconfig.File, key *identity.NodeKey, caps core.Capabilities, idle time.Duration) *links {
	l := &links{log: log, file: f, key: key, caps: caps, dialled: map[<-chan struct{}]bool{}, buffers: map[<-chan struct{}]int{}, holders: map[string]*importer{}, idleEvery: idle / 3}
	if len(f.Imports) > 0 || f.Hub != nil {
		l.set = call.NewPeerSet()
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// start dials every [[import]] and [[uplink]], each under client.Supervise.
func (l *links) start(ep func() *endpoint.Endpoint) {
	l.ep = ep
	for _, im := range l.file.Imports {
		l.supervise(im.PeerID, im.Ticket, im.Transport, im.Settings().SubscriptionBuffer)
	}
	for _, up := range l.file.Uplinks {
		l.supervise(up.PeerID, up.Ticket, up.Transport, nodeconfig.LinkBuffer(up.SubscriptionBuffer))
	}
}

// stop ends every link's supervisor (no redial); the endpoint's drain closes the links.
func (l *links) stop() {
	l.cancel()
	l.wg.Wait()
}

// linkKey identifies a connection across the endpoint's wrapping: its Done channel is the
// underlying connection's.
func linkKey(c conn.Connection) <-chan struct{} { return c.Done() }

func (l *links) supervise(peerID, ticket, transport string, buffer int) {
	tk, err := identity.ParseTicket(ticket) // validated by --check
	if err != nil {
		l.log.Error("link not started", "peer_id", peerID, "err", err)
		return
	}
	switch transport {
	case "quic":
		tk.TCP = nil
	case "tcp":
		tk.QUIC = nil
	}
	d := &client.Dialer{Logger: l.log}
	dial := func(ctx context.Context) (conn.Connection, error) {
		// QUIC first, TCP only after a QUIC connect failure: links do not race.
		c, err := client.DialTicket(ctx, d, tk, call.ALPN, tlsconf.ConnectionCredentials{LocalKey: l.key})
		if err != nil {
			level := slog.LevelInfo
			if errors.Is(err, tlsconf.ErrPinMismatch) {
				level = slog.LevelWarn
			}
			l.log.Log(ctx, level, "link down", "peer_id", peerID, "fingerprint", tk.Fingerprint, "err", err)
		}
		return c, err
	}
	run := func(ctx context.Context, c conn.Connection) error {
		key := linkKey(c)
		l.mu.Lock()
		l.dialled[key] = true
		l.buffers[key] = buffer
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			delete(l.dialled, key)
			delete(l.buffers, key)
			l.mu.Unlock()
		}()
		l.log.Info("link up", "peer_id", peerID, "fingerprint", tk.Fingerprint, "transport", c.Transport())
		l.ep().Dispatch(c)
		select {
		case <-c.Done():
		case <-ctx.Done():
		}
		l.log.Info("link down", "peer_id", peerID, "fingerprint", tk.Fingerprint, "transport", c.Transport())
		return nil
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = client.Supervise(l.ctx, dial, run, client.DefaultBackoff, l.log.With("peer_id", peerID))
	}()
}

// onConn is the protocol handler's hook: keep TCP links alive, and import what the config says.
func (l *links) onConn(ctx context.Context, c *call.Conn) {
	cn := c.Connection()
	l.mu.Lock()
	dialled, buffer := l.dialled[linkKey(cn)], l.buffers[linkKey(cn)]
	l.mu.Unlock()
	settings, id, ok := l.importFor(cn)
	if ok {
		buffer = max(buffer, settings.SubscriptionBuffer)
	}
	if dialled || ok {
		// Forwarded subscriptions must not end "too slow" on a short burst (forwarding §5.4),
		// and a link's calls are pipelined over a few long-lived streams: measured, forwarded
		// QUIC throughput +26 % against a stream per call (docs/performance.md).
		c.SetSubscriptionBuffer(buffer)
		c.SetStreamReuse(linkStreamReuse)
		l.keepAlive(ctx, c)
	}
	if !ok || l.set == nil {
		return
	}
	l.mu.Lock()
	if cur := l.holders[id]; cur != nil {
		// One live layer per id: a link this node dialled beats one the peer dialled; in hub
		// mode the newer link replaces the older.
		if cur.dialled && !dialled {
			l.mu.Unlock()
			return
		}
		cur.cancel()
	}
	ictx, cancel := context.WithCancel(ctx)
	im := &importer{id: id, c: c, dialled: dialled, cancel: cancel}
	l.holders[id] = im
	l.mu.Unlock()
	go l.runImporter(ictx, im, settings)
}

// importFor decides whether c is imported and how: an [[import]] ticket's fingerprint (whoever
// dialled), else an identity holding [hub] import_scope (layer id = prefix = its ID).
func (l *links) importFor(cn conn.Connection) (nodeconfig.ImportSettings, string, bool) {
	fp := cn.RemoteFingerprint()
	for _, im := range l.file.Imports {
		if tk, err := identity.ParseTicket(im.Ticket); err == nil && tk.Fingerprint == fp && fp != "" {
			return im.Settings(), im.PeerID, true
		}
	}
	if h := l.file.Hub; h != nil {
		if id, ok := cn.Identity(); ok && id.HasScope(h.ImportScope) {
			return h.Settings(id.ID), id.ID, true
		}
	}
	return nodeconfig.ImportSettings{}, "", false
}

// runImporter imports until one import succeeds (retrying with backoff while the link lives),
// attaches the layer, then refreshes every s.Refresh.
func (l *links) runImporter(ctx context.Context, im *importer, s nodeconfig.ImportSettings) {
	defer func() {
		l.mu.Lock()
		if l.holders[im.id] == im {
			delete(l.holders, im.id)
		}
		l.mu.Unlock()
		if l.set != nil {
			l.set.Detach(im.id, im.c)
		}
	}()
	cfg := call.ImportConfig{Peer: im.id, Prefix: s.Prefix, Alias: s.Alias, Filter: nodeconfig.AllowFunc(s.Allow),
		KeepRemoteVisibility: s.Expose, Capabilities: l.caps, AuthTokenCapability: s.TokenCapability}
	if s.RequiredScopes != nil {
		cfg.AccessControl = &call.AccessControl{RequiredScopes: *s.RequiredScopes}
	}
	log := l.log.With("peer_id", im.id)
	attached := false
	var prev *call.ImportResult
	for n := 0; ; {
		res, err := call.ImportFrom(ctx, im.c, withPrevious(cfg, prev))
		if err == nil {
			err = im.c.ReplaceImports(res.Registrations)
		}
		if err == nil && !attached {
			err = l.set.Attach(im.id, im.c)
			attached = err == nil
		}
		wait := s.Refresh
		switch {
		case err == nil:
			prev, n = &res, 0
		case ctx.Err() != nil:
			return
		default:
			log.Warn("import failed; the previous set stays", "err", err)
			if !attached { // retry sooner until the first import succeeds
				wait = min(client.DefaultBackoff.Wait(n), max(s.Refresh, time.Second))
				n++
			}
		}
		if wait <= 0 && attached {
			<-ctx.Done()
			return
		}
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func withPrevious(cfg call.ImportConfig, prev *call.ImportResult) call.ImportConfig {
	cfg.Previous = prev
	return cfg
}

// keepAlive calls node/health on a TCP+TLS link after a third of the single-stream idle
// timeout, so the node at the other end never closes it as idle.
func (l *links) keepAlive(ctx context.Context, c *call.Conn) {
	if c.Connection().MultiStream() || l.idleEvery <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(l.idleEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				cctx, cancel := context.WithTimeout(ctx, l.idleEvery)
				_, _ = c.Call(cctx, builtin.Health, json.RawMessage(`{}`))
				cancel()
			}
		}
	}()
}
