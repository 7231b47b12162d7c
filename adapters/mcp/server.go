package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/call"
)

// Defaults of ServerOptions (docs/mcp.md §6).
const (
	DefaultSessionTimeout         = 30 * time.Minute
	DefaultMaxSessions            = 1024
	DefaultMaxSessionsPerIdentity = 16
	DefaultMaxInFlight            = 64
	maxCachedServers              = 256
)

// ServerOptions configure a Projection.
type ServerOptions struct {
	Catalog                catalog.Catalog
	Names                  *catalog.Names
	Exclude                []string // operation names, or "ns/*"
	Stateless              bool
	SessionTimeout         time.Duration
	MaxSessions            int
	MaxSessionsPerIdentity int
	MaxInFlight            int   // tool calls at once per session
	MaxBodyBytes           int64 // per /mcp request (0: the SDK's 4 MiB)
	Version                string
	Logger                 *slog.Logger
}

// Projection serves a catalogue's operations as MCP tools: one SDK server per caller
// identity, tools kept in step with the catalogue (tools/list_changed), and the streamable
// HTTP handler with sessions bound to the identity that opened them.
type Projection struct {
	o ServerOptions

	mu       sync.Mutex
	servers  map[string]*identityServer // identity digest → server
	order    []string                   // LRU, oldest first
	sessions map[string]*sessionRecord  // session id → record
	watching bool
	stop     chan struct{}
	watchers sync.WaitGroup
	handler  http.Handler
}

// identityServer is one caller's SDK server and the tools it holds.
type identityServer struct {
	srv    *sdk.Server
	caller catalog.Caller
	sync   sync.Mutex         // one syncTools at a time (the watcher and Refresh)
	tools  map[string]toolDef // tool name → definition; under sync
}

// sessionRecord binds an HTTP session to the identity that opened it (docs/mcp.md §6.2.2).
type sessionRecord struct {
	id       string
	key      string // identity ID, or "ip:<address>" when anonymous
	srv      *identityServer
	caller   catalog.Caller // refreshed by every request of the session
	lastUsed time.Time
	active   int // requests being served
	calls    sessionCounter
}

// NewProjection returns a projection; Close stops its watcher.
func NewProjection(o ServerOptions) *Projection {
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxSessionsPerIdentity <= 0 {
		o.MaxSessionsPerIdentity = DefaultMaxSessionsPerIdentity
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Names == nil {
		o.Names = catalog.NewNames(o.Catalog)
	}
	p := &Projection{o: o, servers: map[string]*identityServer{}, sessions: map[string]*sessionRecord{}, stop: make(chan struct{})}
	inner := sdk.NewStreamableHTTPHandler(p.serverForRequest, &sdk.StreamableHTTPOptions{
		Stateless: o.Stateless, SessionTimeout: o.SessionTimeout, MaxRequestBodyBytes: o.MaxBodyBytes,
		PropagateRequestCancellation: true, Logger: o.Logger,
	})
	p.handler = p.bind(inner)
	return p
}

// Handler is the /mcp endpoint; the gateway puts the resolved caller in each request context.
func (p *Projection) Handler() http.Handler { return p.handler }

// Close stops the catalogue watcher and ends every session (a client that never sent
// DELETE would otherwise hold its session until session_timeout).
func (p *Projection) Close() {
	p.mu.Lock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	servers := make([]*identityServer, 0, len(p.servers))
	for _, is := range p.servers {
		servers = append(servers, is)
	}
	p.mu.Unlock()
	p.watchers.Wait()
	for _, is := range servers {
		for s := range is.srv.Sessions() {
			_ = s.Close()
		}
	}
}

// identityDigest keys a caller's server: identity ID, scopes and resources.
func identityDigest(c catalog.Caller) string {
	if c.Identity == nil {
		return "anonymous"
	}
	h := sha256.New()
	h.Write([]byte(c.Identity.ID + "\x00"))
	scopes := append([]string(nil), c.Identity.Scopes...)
	sort.Strings(scopes)
	h.Write([]byte(strings.Join(scopes, "\x00") + "\x01"))
	types := make([]string, 0, len(c.Identity.Resources))
	for t := range c.Identity.Resources {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		acts := append([]string(nil), c.Identity.Resources[t]...)
		sort.Strings(acts)
		h.Write([]byte(t + "\x02" + strings.Join(acts, "\x00") + "\x01"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Server returns the SDK server of caller, building it (and starting the catalogue watcher)
// on first use.
func (p *Projection) Server(ctx context.Context, caller catalog.Caller) (*sdk.Server, error) {
	is, err := p.serverFor(ctx, caller)
	if err != nil {
		return nil, err
	}
	return is.srv, nil
}

func (p *Projection) serverFor(ctx context.Context, caller catalog.Caller) (*identityServer, error) {
	key := identityDigest(caller)
	p.mu.Lock()
	if is, ok := p.servers[key]; ok {
		p.touch(key)
		p.mu.Unlock()
		return is, nil
	}
	p.mu.Unlock()
	is := &identityServer{caller: caller, tools: map[string]toolDef{}}
	is.srv = sdk.NewServer(&sdk.Implementation{Name: "alknet", Version: p.o.Version}, &sdk.ServerOptions{
		Capabilities:              &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
		SupportedProtocolVersions: protocolVersions,
		Logger:                    p.o.Logger,
		GetSessionID:              func() string { return p.newSession(is) },
	})
	if err := p.syncTools(ctx, is); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.servers[key]; ok { // built concurrently: keep the first
		return prev, nil
	}
	p.servers[key] = is
	p.order = append(p.order, key)
	p.evictLocked()
	if !p.watching {
		p.watching = true
		p.watchers.Go(p.watch)
	}
	return is, nil
}

func (p *Projection) touch(key string) {
	for i, k := range p.order {
		if k == key {
			p.order = append(append(p.order[:i:i], p.order[i+1:]...), key)
			return
		}
	}
}

// evictLocked drops the least recently used servers past the cap, never one with a session.
func (p *Projection) evictLocked() {
	for i := 0; len(p.servers) > maxCachedServers && i < len(p.order); {
		key := p.order[i]
		inUse := false
		for _, r := range p.sessions {
			if r.srv == p.servers[key] {
				inUse = true
				break
			}
		}
		if inUse {
			i++
			continue
		}
		delete(p.servers, key)
		p.order = append(p.order[:i:i], p.order[i+1:]...)
	}
}

// syncTools brings is's tools in step with what its caller may call now: AddTool and
// RemoveTools notify the sessions (tools/list_changed).
func (p *Projection) syncTools(ctx context.Context, is *identityServer) error {
	is.sync.Lock()
	defer is.sync.Unlock()
	specs, err := p.o.Catalog.Visible(ctx, is.caller.Identity)
	if err != nil {
		return err
	}
	names, err := p.o.Names.Map(ctx)
	if err != nil {
		return err
	}
	want := map[string]toolDef{}
	for _, spec := range specs {
		if spec.Type == call.OpSubscription || excluded(spec.Name, p.o.Exclude) {
			continue
		}
		name, ok := names.Name(spec.Name, nil)
		if !ok {
			p.o.Logger.Warn("mcp: operation left out: no free tool name", "op", spec.Name)
			continue
		}
		want[name] = buildTool(spec, name, p.o.Logger)
	}
	var gone []string
	for name, d := range is.tools {
		if w, ok := want[name]; !ok || w.digest != d.digest {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		is.srv.RemoveTools(gone...)
		for _, n := range gone {
			delete(is.tools, n)
		}
	}
	for name, d := range want {
		if _, ok := is.tools[name]; ok {
			continue
		}
		if err := addTool(is.srv, d, p.toolHandler(d, p.callerOf(is))); err != nil {
			p.o.Logger.Warn("mcp: tool left out", "op", d.op, "err", err)
			continue
		}
		is.tools[name] = d
	}
	return nil
}

// addTool is AddTool without its panics (a schema it refuses leaves the tool out).
func addTool(s *sdk.Server, d toolDef, h sdk.ToolHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errString("AddTool refused the tool's schema")
		}
	}()
	s.AddTool(d.tool, h)
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// Refresh brings every cached server's tools in step with the catalogue now.
func (p *Projection) Refresh(ctx context.Context) {
	p.mu.Lock()
	servers := make([]*identityServer, 0, len(p.servers))
	for _, is := range p.servers {
		servers = append(servers, is)
	}
	p.mu.Unlock()
	for _, is := range servers {
		if err := p.syncTools(ctx, is); err != nil {
			p.o.Logger.Warn("mcp: tools not refreshed", "err", err)
		}
	}
}

// watch refreshes the tools at every catalogue change (docs/http.md §2.4).
func (p *Projection) watch() {
	for {
		ch := p.o.Catalog.Changed()
		if ch == nil {
			<-p.stop
			return
		}
		select {
		case <-p.stop:
			return
		case <-ch:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			p.Refresh(ctx)
			cancel()
		}
	}
}

// callerOf returns how a tool call of is finds its caller: the session's record (refreshed
// by each request), else the identity the server was built for (stdio, stateless).
func (p *Projection) callerOf(is *identityServer) callerFunc {
	return func(req *sdk.CallToolRequest) catalog.Caller {
		if req.Session != nil {
			p.mu.Lock()
			defer p.mu.Unlock()
			if r, ok := p.sessions[req.Session.ID()]; ok && r.key != "" {
				return r.caller
			}
		}
		return is.caller
	}
}

// inFlight takes one of the session's tool-call slots (max_in_flight per session).
func (p *Projection) inFlight(req *sdk.CallToolRequest) (release func(), ok bool) {
	if req.Session == nil {
		return func() {}, true
	}
	p.mu.Lock()
	r, found := p.sessions[req.Session.ID()]
	p.mu.Unlock()
	if !found {
		return func() {}, true
	}
	if r.calls.n.Add(1) > int64(p.o.MaxInFlight) {
		r.calls.n.Add(-1)
		return nil, false
	}
	return func() { r.calls.n.Add(-1) }, true
}

// newSession records a session the SDK is about to create for is (GetSessionID).
func (p *Projection) newSession(is *identityServer) string {
	id := call.NewRequestID()
	p.mu.Lock()
	defer p.mu.Unlock()
	// The key is set by the HTTP wrapper when the answer carrying the id is written; a
	// record without one (stdio) is never matched against a request.
	p.sessions[id] = &sessionRecord{id: id, srv: is, caller: is.caller, lastUsed: time.Now()}
	return id
}

// serverForRequest is the SDK's getServer: the server of the caller the gateway resolved.
func (p *Projection) serverForRequest(r *http.Request) *sdk.Server {
	s, err := p.Server(r.Context(), catalog.CallerFrom(r.Context()))
	if err != nil {
		p.o.Logger.Warn("mcp: no server for the request", "err", err)
		return nil
	}
	return s
}

// sessionKey is who a request is, for binding: the identity ID, or the IP when anonymous.
func sessionKey(r *http.Request, c catalog.Caller) string {
	if c.Identity != nil {
		return c.Identity.ID
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}
