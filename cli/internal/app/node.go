package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	callnode "github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/host"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/cli/internal/metrics"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/iroh"
)

// OpReload is the admin-scoped operation that re-reads the dynamic config.
const OpReload = "node/reload"

// node is a running node and what a reload may change.
type node struct {
	e           *env
	dir         string
	cfgPath     string
	listen      []string
	listenGiven bool    // --listen was given
	httpListen  *string // --http-listen, if given
	http        *adapters
	dev         bool
	demo        bool     // serve the demo operations on a vault node (serve --demo)
	iroh        bool     // serve --iroh
	irohBind    []string // serve --iroh-bind
	irohT       irohServing
	irohErr     error                  // a run-time iroh bind failure: QUIC and TCP serve on (iroh_error)
	irohAddrs   chan identity.IrohAddr // the iroh endpoint's latest addresses, for followIroh
	json        bool                   // start-up facts as one JSON object
	key         *identity.NodeKey
	caps        core.Capabilities
	drain       *time.Duration
	metricsAddr string

	reloadMu   sync.Mutex
	file       *nodeconfig.File // the config in force (its static sections as of the start)
	startFile  *nodeconfig.File // the config the node started with: static changes are judged against it
	lastReload *reloadResult    // nil until the first reload
	cn         *callnode.Node

	adminKey *identity.NodeKey // the local admin identity (adminKeyFile), fresh every start
	started  time.Time
}

// printStarted prints the start-up lines (or, with --json, one object with the same facts).
func (n *node) printStarted(ticket, metricsAddr string) {
	l := listeners{QUIC: []string{}, TCP: []string{}}
	for _, a := range n.cn.QUICAddrs() {
		l.QUIC = append(l.QUIC, a.String())
	}
	for _, a := range n.cn.TCPAddrs() {
		l.TCP = append(l.TCP, a.String())
	}
	httpURLs := n.http.urls(n.cn.TCPAddrs())
	if n.json {
		v := map[string]any{"fingerprint": n.cn.Fingerprint(), "quic": l.QUIC, "tcp": l.TCP, "http": append([]string{}, httpURLs...), "ticket": ticket, "metrics": nil}
		if metricsAddr != "" {
			v["metrics"] = "http://" + metricsAddr + "/metrics"
		}
		_ = writeJSON(n.e, v)
		return
	}
	fmt.Fprintf(n.e.stdout, "fingerprint %s\n", n.cn.Fingerprint())
	for _, a := range l.QUIC {
		fmt.Fprintf(n.e.stdout, "quic %s\n", a)
	}
	for _, a := range l.TCP {
		fmt.Fprintf(n.e.stdout, "tcp %s\n", a)
	}
	for _, u := range httpURLs {
		fmt.Fprintf(n.e.stdout, "http %s\n", u)
	}
	if n.irohT != nil {
		a := n.irohT.Addr()
		for _, ad := range a.Addrs {
			fmt.Fprintf(n.e.stdout, "iroh %s\n", ad)
		}
		if a.RelayURL != "" {
			fmt.Fprintf(n.e.stdout, "iroh_relay %s\n", a.RelayURL)
		}
	}
	if n.irohErr != nil {
		fmt.Fprintf(n.e.stdout, "iroh_error %s\n", strings.ReplaceAll(n.irohErr.Error(), "\n", " "))
	}
	fmt.Fprintf(n.e.stdout, "ticket %s\n", ticket)
	if metricsAddr != "" {
		fmt.Fprintf(n.e.stdout, "metrics http://%s/metrics\n", metricsAddr)
	}
}

// reloadResult is the outcome of the last reload, for node/status.
type reloadResult struct {
	At              time.Time `json:"at"`
	OK              bool      `json:"ok"`
	Error           string    `json:"error,omitempty"`
	Changed         []string  `json:"changed"`
	RestartRequired []string  `json:"restart_required"`
}

// localAdminPeer is the peer id of the local admin key (nodeconfig.ReservedPeerPrefix).
const localAdminPeer = "@local-admin"

// dynamic is the file's dynamic config plus the local admin peer: whoever can read the state
// directory (0700) may administer the node from this machine, as they could signal it.
func (n *node) dynamic(f *nodeconfig.File) config.DynamicConfig {
	d := f.Dynamic()
	d.Peers = append(d.Peers, auth.PeerEntry{PeerID: localAdminPeer, DisplayName: "local admin (" + adminKeyFile + ")",
		Fingerprints: []string{n.adminKey.Fingerprint()}, Scopes: []string{"admin"}, Enabled: true})
	return d
}

// writeAdminKey makes a fresh local admin key and writes it to the state directory (0600),
// replacing one a crashed node left (the state-dir lock is held: no other node uses it).
func (n *node) writeAdminKey() (remove func(), err error) {
	if n.adminKey, err = identity.Generate(); err != nil {
		return nil, err
	}
	path := filepath.Join(n.dir, adminKeyFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, configErr(err)
	}
	if err := identity.WriteKeyFile(path, n.adminKey); err != nil {
		return nil, configErr(err)
	}
	return func() { _ = os.Remove(path) }, nil
}

func (n *node) run(ctx context.Context) error {
	if err := ensureStateDir(n.dir); err != nil {
		return configErr(err)
	}
	// Signals are caught from here on: a SIGTERM or a reload's SIGHUP that arrives while the
	// node starts is handled once it serves, never the default action (exit without drain).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	// One node per state directory: a second would overwrite node.ticket and node.pid and,
	// stopping, delete the first one's.
	unlock, err := lockStateDir(n.dir)
	if err != nil {
		return err
	}
	defer unlock()
	n.started, n.startFile = time.Now(), n.file
	removeAdminKey, err := n.writeAdminKey()
	if err != nil {
		return err
	}
	defer removeAdminKey()
	static := n.file.Static(n.listen, nodeListen)
	if n.drain != nil {
		static.DrainTimeout = *n.drain
	}
	reg := metrics.New()
	listen := static.QUICAddrs
	if len(listen) == 0 {
		listen = static.TCPAddrs
	}
	// Adapter imports run before the registry is built; they end after the node (shutdown:
	// gateway and endpoint, then importers).
	imports, err := n.startAdapterImports(ctx)
	if err != nil {
		return err
	}
	defer imports.close()
	regs := []call.HandlerRegistration{n.statusRegistration()}
	regs = append(regs, imports.regs...)
	if !n.dev {
		regs = append(regs, n.reloadRegistration())
	}
	opts := n.file.ConnOptions()
	opts.Logger = n.e.log
	lk := newLinks(n.e.log, n.file, n.key, n.caps, static.Limits.WithDefaults().SingleStreamIdleTimeout)
	if n.http, err = n.newAdapters(); err != nil {
		return err
	}
	defer n.http.close()
	hostSources, irohAddr, err := n.startIroh(ctx, static.Limits, reg)
	if err != nil {
		return err
	}
	if n.irohT != nil {
		defer func() { _ = n.irohT.Close() }() // after the endpoint's shutdown (defers run last-first)
	}
	n.cn, err = callnode.Start(callnode.Options{
		Host: host.Options{
			Sources: hostSources, Iroh: irohAddr,
			Key: n.key, Listen: listen, NoQUIC: len(static.QUICAddrs) == 0, NoTCP: len(static.TCPAddrs) == 0,
			Advertise: n.file.Node.Advertise, TLS: static.TLS, Limits: static.Limits,
			DrainTimeout: static.WithDefaults().DrainTimeout, Dynamic: n.dynamic(n.file),
			Logger: n.e.log, Metrics: reg, OnAuthAttempt: reg.AuthAttempt,
		},
		Registrations: regs, Demo: n.dev || n.demo, Version: Version,
		Limits: n.file.CallLimits(), Conn: opts, Observer: reg,
		Peers: lk.set, OnConn: lk.onConn, Addons: n.http.addons(),
	})
	if err != nil {
		return configErr(err)
	}
	lk.start(n.cn.Endpoint)
	// Links stop redialling as soon as shutdown begins; the drain closes them.
	shutdown := func() error { lk.stop(); return n.cn.Shutdown(context.Background()) }
	defer lk.stop()
	if err := reg.WatchConnections(n.cn.Endpoint().Stats); err != nil {
		_ = n.cn.Shutdown(context.Background())
		return configErr(err)
	}
	ticket, err := n.cn.Ticket().Encode()
	if err != nil {
		_ = n.cn.Shutdown(context.Background())
		return configErr(err)
	}
	stopMetrics, metricsAddr, err := n.serveMetrics(reg)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// Written only after every listener is bound, and before the start-up lines, so whoever
	// reads those finds the files; removed on clean exit.
	if err := writeAtomic(n.dir, ticketFile, []byte(ticket+"\n"), 0o644); err != nil {
		return configErr(err)
	}
	defer os.Remove(filepath.Join(n.dir, ticketFile))
	if err := writeAtomic(n.dir, pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return configErr(err)
	}
	defer os.Remove(filepath.Join(n.dir, pidFile))
	n.printStarted(ticket, metricsAddr)
	if n.irohT != nil {
		go n.followIroh()
	}
	n.e.log.Info("node started", "fingerprint", n.cn.Fingerprint(), "state_dir", n.dir, "config", n.cfgPath)

	runDone := make(chan error, 1)
	go func() {
		select {
		case <-n.cn.Done():
		case <-ctx.Done():
			_ = shutdown()
		}
		<-n.cn.Done()
		runDone <- n.cn.Err()
	}()
	err = n.waitForSignals(sigs, runDone, shutdown)
	if errors.Is(err, endpoint.ErrDrainTimeout) {
		n.e.log.Warn("drain timeout", "err", err)
		return nil
	}
	return err
}

func (n *node) reloadRegistration() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: OpReload, Type: call.OpMutation, Visibility: call.VisibilityExternal,
			Description: "Re-read the dynamic part of the config file (peers, API keys, auth and call limits), as SIGHUP does. " +
				"A rejected config is INVALID_INPUT with the reason; the old config stays in force.",
			InputSchema:   json.RawMessage(`{"type":"object","additionalProperties":false}`),
			OutputSchema:  json.RawMessage(`{"type":"object","properties":{"changed":{"type":"array","items":{"type":"string"}},"restart_required":{"type":"array","items":{"type":"string"}}},"required":["changed","restart_required"],"additionalProperties":false}`),
			AccessControl: call.AccessControl{RequiredScopes: []string{"admin"}},
		},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			r := n.reload()
			if !r.OK {
				return nil, call.NewError(call.CodeInvalidInput, r.Error)
			}
			return json.Marshal(map[string][]string{"changed": r.Changed, "restart_required": r.RestartRequired})
		},
	}
}

// reload re-reads the config file and applies its dynamic part atomically. An invalid file,
// or one that changes core connection limits, is rejected and the old config stays in force.
// Changes to static sections are not applied; they are named in RestartRequired.
func (n *node) reload() reloadResult {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	r := reloadResult{At: time.Now().UTC(), Changed: []string{}, RestartRequired: []string{}}
	defer func() { n.lastReload = &r }()
	fail := func(err error) reloadResult {
		n.e.log.Error("config reload rejected; the old config stays in force", "config", n.cfgPath, "err", err)
		r.Error = err.Error()
		return r
	}
	next, err := nodeconfig.Load(n.cfgPath, true)
	if err != nil {
		return fail(err)
	}
	if err := next.Validate(n.cfgPath, n.listen, nodeListen); err != nil {
		return fail(err)
	}
	if next.CoreLimits() != n.file.CoreLimits() {
		return fail(errors.New("[node.limits] changed: core connection limits need a restart"))
	}
	if err := next.CallLimits().Validate(); err != nil {
		return fail(err)
	}
	if err := n.cn.Store.Reload(n.dynamic(next)); err != nil {
		return fail(err)
	}
	opts := next.ConnOptions()
	opts.Logger = n.e.log
	if err := n.cn.SetLimits(next.CallLimits(), opts); err != nil {
		return fail(err) // validated above: not reached
	}
	r.Changed = dynamicChanges(n.file, next)
	if restart := staticChanges(n.startFile, next); len(restart) > 0 {
		r.RestartRequired = restart
		n.e.log.Warn("config changes that need a restart are ignored until then", "changed", restart)
	}
	n.file = next
	r.OK = true
	n.e.log.Info("config reloaded", "config", n.cfgPath, "changed", r.Changed)
	return r
}

// OpStatus reports the node's state; the details need the admin scope.
const OpStatus = "node/status"

// nodeStatus is node/status's output. Callers without the admin scope get the first four fields.
type nodeStatus struct {
	Status      string `json:"status"`
	Fingerprint string `json:"fingerprint"`
	Version     string `json:"version"`
	UptimeMS    int64  `json:"uptime_ms"`
	*statusDetails
}

type statusDetails struct {
	PID                    int            `json:"pid"`
	Dev                    bool           `json:"dev"`
	Listeners              listeners      `json:"listeners"`
	Connections            int            `json:"connections"`
	ConnectionsByTransport map[string]int `json:"connections_by_transport"`
	ConnectionsByPeer      map[string]int `json:"connections_by_peer"`
	InFlight               int64          `json:"in_flight"` // other than this node/status call
	Config                 string         `json:"config"`
	StateDir               string         `json:"state_dir"`
	LastReload             *reloadResult  `json:"last_reload"`
}

type listeners struct {
	QUIC []string `json:"quic"`
	TCP  []string `json:"tcp"`
	HTTP []string `json:"http,omitempty"` // the gateway's URLs (docs/http.md)
	MCP  bool     `json:"mcp,omitempty"`  // MCP at <http>/mcp
}

const statusOutputSchema = `{"type":"object","required":["status","fingerprint","version","uptime_ms"],"properties":{` +
	`"status":{"type":"string"},"fingerprint":{"type":"string"},"version":{"type":"string"},"uptime_ms":{"type":"integer"},` +
	`"pid":{"type":"integer"},"dev":{"type":"boolean"},` +
	`"listeners":{"type":"object","properties":{"quic":{"type":"array","items":{"type":"string"}},"tcp":{"type":"array","items":{"type":"string"}},` +
	`"http":{"type":"array","items":{"type":"string"}},"mcp":{"type":"boolean"}}},` +
	`"connections":{"type":"integer"},"connections_by_transport":{"type":"object","additionalProperties":{"type":"integer"}},` +
	`"connections_by_peer":{"type":"object","additionalProperties":{"type":"integer"}},"in_flight":{"type":"integer"},` +
	`"config":{"type":"string"},"state_dir":{"type":"string"},"last_reload":{"type":["object","null"]}}}`

func (n *node) statusRegistration() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: OpStatus, Type: call.OpQuery, Visibility: call.VisibilityExternal,
			Description:  "The node's state: up, fingerprint, version, uptime; with the admin scope also pid, listeners, connections, in-flight calls, config path and the last reload's result.",
			InputSchema:  json.RawMessage(`{"type":"object","additionalProperties":false}`),
			OutputSchema: json.RawMessage(statusOutputSchema),
		},
		Handler: func(_ context.Context, oc *call.OperationContext, _ json.RawMessage) (json.RawMessage, error) {
			st := nodeStatus{Status: "ok", Fingerprint: n.cn.Fingerprint(), Version: Version, UptimeMS: time.Since(n.started).Milliseconds()}
			if oc.Identity != nil && oc.Identity.HasScope("admin") {
				st.statusDetails = n.details()
			}
			return json.Marshal(st)
		},
	}
}

func (n *node) details() *statusDetails {
	stats := n.cn.Endpoint().Stats()
	d := &statusDetails{PID: os.Getpid(), Dev: n.dev, Connections: stats.Connections,
		ConnectionsByTransport: stats.ByTransport, ConnectionsByPeer: stats.ByPeer,
		InFlight: max(0, n.cn.Dispatcher().InFlight()-1), Config: n.cfgPath, StateDir: n.dir,
		Listeners: listeners{QUIC: []string{}, TCP: []string{}}}
	for _, a := range n.cn.QUICAddrs() {
		d.Listeners.QUIC = append(d.Listeners.QUIC, a.String())
	}
	for _, a := range n.cn.TCPAddrs() {
		d.Listeners.TCP = append(d.Listeners.TCP, a.String())
	}
	d.Listeners.HTTP = n.http.urls(n.cn.TCPAddrs())
	d.Listeners.MCP = n.http.mcpOn()
	n.reloadMu.Lock()
	if n.lastReload != nil {
		r := *n.lastReload
		d.LastReload = &r
	}
	n.reloadMu.Unlock()
	return d
}

func staticChanges(a, b *nodeconfig.File) []string {
	var out []string
	if !slices.Equal(a.Node.Listen, b.Node.Listen) {
		out = append(out, "node.listen")
	}
	if !slices.Equal(a.Node.Advertise, b.Node.Advertise) {
		out = append(out, "node.advertise")
	}
	if !slices.Equal(a.Node.Transports, b.Node.Transports) {
		out = append(out, "node.transports")
	}
	if a.Node.DrainTimeout != b.Node.DrainTimeout || a.Node.MetricsAddr != b.Node.MetricsAddr {
		out = append(out, "node")
	}
	if fmt.Sprint(a.TLS) != fmt.Sprint(b.TLS) {
		out = append(out, "tls")
	}
	if len(a.Capability) != len(b.Capability) || fmt.Sprint(a.Capability) != fmt.Sprint(b.Capability) {
		out = append(out, "capability")
	}
	// Restart-only sections compared whole, named as in the file.
	for _, sec := range []struct {
		name string
		a, b any
	}{
		{"import", a.Imports, b.Imports}, {"uplink", a.Uplinks, b.Uplinks}, {"hub", a.Hub, b.Hub},
		{"http", a.HTTP, b.HTTP}, {"mcp", a.MCP, b.MCP}, {"iroh", a.Iroh, b.Iroh},
		{"openapi_import", a.OpenAPIImports, b.OpenAPIImports}, {"mcp_import", a.MCPImports, b.MCPImports},
	} {
		if !reflect.DeepEqual(sec.a, sec.b) {
			out = append(out, sec.name)
		}
	}
	return out
}

// dynamicChanges describes what a reload changed, for logs and node/reload's output.
func dynamicChanges(a, b *nodeconfig.File) []string {
	out := []string{}
	peers := func(f *nodeconfig.File) map[string]string {
		m := map[string]string{}
		for _, p := range f.Peers {
			m[p.PeerID] = fmt.Sprint(p.DisplayName, p.Fingerprints, p.Scopes, p.AuthTokenHash, p.Resources, p.Enabled == nil || *p.Enabled)
		}
		return m
	}
	keys := func(f *nodeconfig.File) map[string]string {
		m := map[string]string{}
		for _, k := range f.APIKeys {
			m[k.Prefix] = fmt.Sprint(k.Hash, k.Scopes, k.Description, k.ExpiresAt)
		}
		return m
	}
	out = append(out, diff("peer", peers(a), peers(b))...)
	out = append(out, diff("apikey", keys(a), keys(b))...)
	if a.Auth != b.Auth {
		out = append(out, "auth")
	}
	if !reflect.DeepEqual(a.Call, b.Call) {
		out = append(out, "call")
	}
	return out
}

func diff(kind string, old, new map[string]string) []string {
	var out []string
	for k, v := range new {
		if ov, ok := old[k]; !ok {
			out = append(out, kind+" added: "+k)
		} else if ov != v {
			out = append(out, kind+" changed: "+k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			out = append(out, kind+" removed: "+k)
		}
	}
	slices.Sort(out)
	return out
}

// irohServeConfig is what bindIrohServe binds with.
type irohServeConfig struct {
	key     *identity.NodeKey
	alpns   []string
	cfg     nodeconfig.Iroh
	binds   []string // --iroh-bind: replaces cfg.Bind
	dev     bool
	limits  config.Limits
	log     *slog.Logger
	metrics endpoint.Metrics
	onAddr  func(identity.IrohAddr)
}

// irohServing is what serve needs of an iroh endpoint (iroh.go; iroh_stub.go never makes one).
type irohServing interface {
	Source() endpoint.Source
	Addr() identity.IrohAddr
	Stats() iroh.TransportStats
	Close() error
}

// startIroh binds the iroh endpoint for serve --iroh (spec iroh.md §8.3). A binary without iroh
// refuses (CONFIG); a bind failure at run time leaves QUIC and TCP serving and is reported as
// an iroh_error line.
func (n *node) startIroh(ctx context.Context, limits config.Limits, reg *metrics.Registry) ([]endpoint.Source, *identity.IrohAddr, error) {
	if !n.iroh && !n.file.Iroh.Enabled {
		return nil, nil, nil
	}
	if !irohBuilt {
		return nil, nil, configErr(iroh.ErrNotBuilt)
	}
	if n.key == nil { // the node's key is the iroh key: an ephemeral one is made here
		k, err := identity.Generate()
		if err != nil {
			return nil, nil, err
		}
		n.key = k
	}
	n.irohAddrs = make(chan identity.IrohAddr, 1)
	t, err := bindIrohServe(ctx, irohServeConfig{key: n.key, alpns: []string{call.ALPN}, cfg: n.file.Iroh,
		binds: n.irohBind, dev: n.dev, limits: limits, log: n.e.log, metrics: reg, onAddr: n.irohAddrChanged})
	if err != nil {
		n.irohErr = err
		n.e.log.Warn("iroh: bind failed; QUIC and TCP serve on", "err", err)
		return nil, nil, reg.WatchIroh(func() metrics.IrohStats { return irohMetrics(nil) })
	}
	if err := reg.WatchIroh(func() metrics.IrohStats { return irohMetrics(t) }); err != nil {
		_ = t.Close()
		return nil, nil, err
	}
	if !n.dev && n.file.Iroh.RelayMode() == "n0" {
		n.e.log.Info("iroh: relay mode n0: this node's id and addresses are published to number 0's relays and DNS")
	}
	n.irohT = t
	a := t.Addr()
	return []endpoint.Source{t.Source()}, &a, nil
}

// irohAddrChanged keeps only the latest address for followIroh (it runs on the transport's
// goroutine, possibly before the node has started).
func (n *node) irohAddrChanged(a identity.IrohAddr) {
	for {
		select {
		case n.irohAddrs <- a:
			return
		default:
			select {
			case <-n.irohAddrs:
			default:
			}
		}
	}
}

// followIroh rewrites the ticket (the node's and node.ticket) whenever the iroh endpoint's
// addresses change, until the node ends.
func (n *node) followIroh() {
	for {
		select {
		case <-n.cn.Done():
			return
		case a := <-n.irohAddrs:
			n.cn.SetIroh(a)
			ticket, err := n.cn.Ticket().Encode()
			if err != nil {
				n.e.log.Warn("iroh: addresses changed but the ticket cannot be encoded", "err", err)
				continue
			}
			if err := writeAtomic(n.dir, ticketFile, []byte(ticket+"\n"), 0o644); err != nil {
				n.e.log.Warn("iroh: rewriting the ticket file", "err", err)
			}
			n.e.log.Info("iroh: addresses changed; ticket rewritten", "relay", a.RelayURL, "addrs", a.Addrs, "ticket", ticket)
		}
	}
}
