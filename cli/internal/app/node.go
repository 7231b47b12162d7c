package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/cli/internal/metrics"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// OpReload is the admin-scoped operation that re-reads the dynamic config.
const OpReload = "node/reload"

// node is a running node and what a reload may change.
type node struct {
	e           *env
	dir         string
	cfgPath     string
	listen      []string
	dev         bool
	key         *identity.NodeKey
	caps        core.Capabilities
	drain       *time.Duration
	metricsAddr string

	reloadMu sync.Mutex
	file     *nodeconfig.File // the config in force
	store    *config.Store
	disp     atomic.Pointer[call.Dispatcher]
	connOpts atomic.Pointer[call.ConnOptions]
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
	static := n.file.Static(n.listen, nodeListen)
	if n.drain != nil {
		static.DrainTimeout = *n.drain
	}
	if n.store, err = config.NewStore(n.file.Dynamic()); err != nil {
		return configErr(err)
	}
	reg := metrics.New()
	authn := auth.NewAuthenticator(n.store.Provider(), auth.AuthenticatorOptions{Limits: n.store.RateLimits, Logger: n.e.log, OnAttempt: reg.AuthAttempt})
	d, err := n.buildDispatcher(authn, reg, builtin.NodeInfo{Fingerprint: n.key.Fingerprint(), Version: Version, Started: time.Now(), ALPNs: []string{call.ALPN}})
	if err != nil {
		return configErr(err)
	}
	n.disp.Store(d)
	opts := n.file.ConnOptions()
	opts.Logger = n.e.log
	n.connOpts.Store(&opts)
	handler := call.ProtocolHandler{Dispatcher: n.disp.Load, Options: func() call.ConnOptions { return *n.connOpts.Load() }}
	registry, err := endpoint.NewRegistry(handler)
	if err != nil {
		return err
	}
	srv, err := tlsconf.NewServer(static.TLS, n.key, registry.ALPNs())
	if err != nil {
		return configErr(err)
	}
	defer srv.Close()
	ep, err := endpoint.New(endpoint.Options{
		Registry: registry, Auth: authn, Store: n.store, Limits: static.Limits,
		DrainTimeout: static.WithDefaults().DrainTimeout, Logger: n.e.log, EphemeralKey: n.dev, Metrics: reg,
	})
	if err != nil {
		return configErr(err)
	}
	var lines []string
	var bound []net.Addr
	for _, a := range static.QUICAddrs {
		qa, err := ep.ListenQUIC(a, srv.QUIC())
		if err != nil {
			return configErr(err)
		}
		lines = append(lines, "quic "+qa.String())
		bound = append(bound, qa)
	}
	for _, a := range static.TCPAddrs {
		ta, err := ep.ListenTCP(a, srv.TCP())
		if err != nil {
			return configErr(err)
		}
		lines = append(lines, "tcp "+ta.String())
		bound = append(bound, ta)
	}
	tk := n.ticket(srv.Fingerprint(), bound)
	ticket, err := tk.Encode()
	if err != nil {
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
	fmt.Fprintf(n.e.stdout, "fingerprint %s\n", srv.Fingerprint())
	for _, l := range lines {
		fmt.Fprintln(n.e.stdout, l)
	}
	fmt.Fprintf(n.e.stdout, "ticket %s\n", ticket)
	if metricsAddr != "" {
		fmt.Fprintf(n.e.stdout, "metrics http://%s/metrics\n", metricsAddr)
	}
	n.e.log.Info("node started", "fingerprint", srv.Fingerprint(), "state_dir", n.dir, "config", n.cfgPath)

	runDone := make(chan error, 1)
	go func() { runDone <- ep.Run(ctx) }()
	err = n.waitForSignals(sigs, runDone, func() error { return ep.Shutdown(context.Background()) })
	if errors.Is(err, endpoint.ErrDrainTimeout) {
		n.e.log.Warn("drain timeout", "err", err)
		return nil
	}
	return err
}

// ticket advertises [node] advertise, else every bound address (a wildcard host becomes
// 127.0.0.1, with a warning).
func (n *node) ticket(fp string, bound []net.Addr) identity.Ticket {
	tk := identity.Ticket{Fingerprint: fp}
	if adv := n.file.Node.Advertise; len(adv) > 0 {
		tk.QUIC, tk.TCP = slices.Clone(adv), slices.Clone(adv)
		return tk
	}
	for _, a := range bound {
		host, port, _ := net.SplitHostPort(a.String())
		addr := a.String()
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			n.e.log.Warn("wildcard listener without [node] advertise: the ticket advertises 127.0.0.1", "addr", addr)
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		if _, ok := a.(*net.UDPAddr); ok {
			tk.QUIC = append(tk.QUIC, addr)
		} else {
			tk.TCP = append(tk.TCP, addr)
		}
	}
	return tk
}

// buildDispatcher assembles the core registry: built-in and discovery operations, node/reload
// on a node with a config, the demo operations on a dev node.
func (n *node) buildDispatcher(ids *auth.Authenticator, obs call.Observer, info builtin.NodeInfo) (*call.Dispatcher, error) {
	var registry *call.Registry
	info.Operations = func() int { return registry.Len() } // known once built
	b := call.NewRegistryBuilder()
	regs := builtin.Registrations(info)
	regs = append(regs, call.DiscoveryRegistrations(n.disp.Load)...)
	if n.dev {
		regs = append(regs, demo.Registrations(demo.Options{})...)
	} else {
		regs = append(regs, n.reloadRegistration())
	}
	for _, r := range regs {
		_ = b.Register(r) // errors are collected by Build
	}
	registry, err := b.Build()
	if err != nil {
		return nil, err
	}
	return call.NewDispatcher(registry, call.Options{Limits: n.file.CallLimits(), Identities: ids, Logger: n.e.log, Observer: obs})
}

func (n *node) reloadRegistration() call.HandlerRegistration {
	return call.HandlerRegistration{
		Spec: call.OperationSpec{
			Name: OpReload, Type: call.OpMutation, Visibility: call.VisibilityExternal,
			Description:   "Re-read the dynamic part of the config file (peers, API keys, auth and call limits), as SIGHUP does.",
			InputSchema:   json.RawMessage(`{"type":"object","additionalProperties":false}`),
			OutputSchema:  json.RawMessage(`{"type":"object","properties":{"changed":{"type":"array","items":{"type":"string"}}},"required":["changed"],"additionalProperties":false}`),
			AccessControl: call.AccessControl{RequiredScopes: []string{"admin"}},
		},
		Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
			changed, err := n.reload()
			if err != nil {
				return nil, call.NewError(call.CodeInvalidInput, err.Error())
			}
			return json.Marshal(map[string][]string{"changed": changed})
		},
	}
}

// reload re-reads the config file and applies its dynamic part atomically. An invalid file,
// or one that changes core connection limits, is rejected and the old config stays in force.
func (n *node) reload() ([]string, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	fail := func(err error) ([]string, error) {
		n.e.log.Error("config reload rejected; the old config stays in force", "config", n.cfgPath, "err", err)
		return nil, err
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
	if restart := staticChanges(n.file, next); len(restart) > 0 {
		n.e.log.Warn("config changes that need a restart are ignored until then", "changed", restart)
	}
	d, err := n.disp.Load().WithLimits(next.CallLimits())
	if err != nil {
		return fail(err)
	}
	if err := n.store.Reload(next.Dynamic()); err != nil {
		return fail(err)
	}
	n.disp.Store(d)
	opts := next.ConnOptions()
	opts.Logger = n.e.log
	n.connOpts.Store(&opts)
	changed := dynamicChanges(n.file, next)
	n.file = next
	n.e.log.Info("config reloaded", "config", n.cfgPath, "changed", changed)
	return changed, nil
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
	if a.Call != b.Call {
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
