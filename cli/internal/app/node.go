package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	callnode "github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/host"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/cli/internal/metrics"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
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
	cn       *callnode.Node
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
	reg := metrics.New()
	listen := static.QUICAddrs
	if len(listen) == 0 {
		listen = static.TCPAddrs
	}
	var regs []call.HandlerRegistration
	if !n.dev {
		regs = append(regs, n.reloadRegistration())
	}
	opts := n.file.ConnOptions()
	opts.Logger = n.e.log
	n.cn, err = callnode.Start(callnode.Options{
		Host: host.Options{
			Key: n.key, Listen: listen, NoQUIC: len(static.QUICAddrs) == 0, NoTCP: len(static.TCPAddrs) == 0,
			Advertise: n.file.Node.Advertise, TLS: static.TLS, Limits: static.Limits,
			DrainTimeout: static.WithDefaults().DrainTimeout, Dynamic: n.file.Dynamic(),
			Logger: n.e.log, Metrics: reg, OnAuthAttempt: reg.AuthAttempt,
		},
		Registrations: regs, Demo: n.dev, Version: Version,
		Limits: n.file.CallLimits(), Conn: opts, Observer: reg,
	})
	if err != nil {
		return configErr(err)
	}
	var lines []string
	for _, a := range n.cn.QUICAddrs() {
		lines = append(lines, "quic "+a.String())
	}
	for _, a := range n.cn.TCPAddrs() {
		lines = append(lines, "tcp "+a.String())
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
	fmt.Fprintf(n.e.stdout, "fingerprint %s\n", n.cn.Fingerprint())
	for _, l := range lines {
		fmt.Fprintln(n.e.stdout, l)
	}
	fmt.Fprintf(n.e.stdout, "ticket %s\n", ticket)
	if metricsAddr != "" {
		fmt.Fprintf(n.e.stdout, "metrics http://%s/metrics\n", metricsAddr)
	}
	n.e.log.Info("node started", "fingerprint", n.cn.Fingerprint(), "state_dir", n.dir, "config", n.cfgPath)

	runDone := make(chan error, 1)
	go func() {
		select {
		case <-n.cn.Done():
		case <-ctx.Done():
			_ = n.cn.Shutdown(context.Background())
		}
		<-n.cn.Done()
		runDone <- n.cn.Err()
	}()
	err = n.waitForSignals(sigs, runDone, func() error { return n.cn.Shutdown(context.Background()) })
	if errors.Is(err, endpoint.ErrDrainTimeout) {
		n.e.log.Warn("drain timeout", "err", err)
		return nil
	}
	return err
}

// buildDispatcher assembles the core registry: built-in and discovery operations, node/reload
// on a node with a config, the demo operations on a dev node.

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
	if err := next.CallLimits().Validate(); err != nil {
		return fail(err)
	}
	if err := n.cn.Store.Reload(next.Dynamic()); err != nil {
		return fail(err)
	}
	opts := next.ConnOptions()
	opts.Logger = n.e.log
	if err := n.cn.SetLimits(next.CallLimits(), opts); err != nil {
		return fail(err) // validated above: not reached
	}
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
