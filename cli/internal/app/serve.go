package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/builtin"
	"github.com/alkdev/alknet/call/demo"
	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

const (
	devListen  = "127.0.0.1:7443"
	nodeListen = "0.0.0.0:7443"
)

func serveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run a node",
		UsageText: "alknet serve --dev                          # ephemeral key, loopback, 127.0.0.1:7443\n" +
			"alknet serve --dev --listen 127.0.0.1:0       # pick free ports (shown on stdout and in the ticket)\n" +
			"alknet serve --passphrase-file P              # the vault's identity, 0.0.0.0:7443",
		Description: "Starts QUIC and TCP+TLS listeners on each --listen address and serves until SIGINT or SIGTERM,\n" +
			"then drains gracefully (a second signal exits at once with 130). On start it prints\n" +
			"'fingerprint <fp>', 'quic <addr>', 'tcp <addr>' and 'ticket <ticket>', and writes the ticket to\n" +
			"<state dir>/node.ticket so local clients find the node. Without --dev the node key is derived\n" +
			"from the vault (run 'alknet init' first) at m/74'/0'/0'/0', so the fingerprint is the same on\n" +
			"every start; only the built-in operations are served.",
		Flags: append(vaultFlags(),
			&cli.BoolFlag{Name: "dev", Usage: "development node: ephemeral key, demo protocol, loopback only, no vault"},
			&cli.StringSliceFlag{Name: "listen", Usage: "HOST:PORT for both QUIC (UDP) and TCP+TLS; repeatable; port 0 picks a free port"},
			&cli.DurationFlag{Name: "drain-timeout", Value: config.DefaultDrainTimeout, Usage: "how long handlers get to finish on shutdown"},
		),
		Action: func(ctx context.Context, c *cli.Command) error {
			dev := c.Bool("dev")
			listen := c.StringSlice("listen")
			if len(listen) == 0 {
				listen = []string{nodeListen}
				if dev {
					listen = []string{devListen}
				}
			}
			dir, err := stateDir(c.Root().String("state-dir"))
			if err != nil {
				return configErr(err)
			}
			var key *identity.NodeKey
			if dev {
				for _, a := range listen {
					if err := checkDevListen(a); err != nil {
						return err
					}
				}
				if key, err = identity.Generate(); err != nil {
					return err
				}
			} else {
				u, err := unlock(e, c)
				if err != nil {
					return err
				}
				u.v.Lock() // the node key is all serve needs from the vault today
				key = u.key
			}
			return serveNode(ctx, e, dir, listen, c.Duration("drain-timeout"), key, dev)
		},
	}
}

// checkDevListen accepts only loopback addresses: a dev node has an ephemeral key and no access control.
func checkDevListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErr("--listen %q: %v", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return usageErr("--listen %q: port must be 0-65535", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return usageErr("--listen %q: a --dev node listens on loopback only (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

func serveNode(ctx context.Context, e *env, dir string, listen []string, drain time.Duration, key *identity.NodeKey, dev bool) error {
	if err := ensureStateDir(dir); err != nil {
		return configErr(err)
	}
	store, err := config.NewStore(config.DynamicConfig{})
	if err != nil {
		return err
	}
	authn := auth.NewAuthenticator(store.Provider(), store.RateLimits, e.log)
	alpns := []string{call.ALPN}
	d, err := buildDispatcher(authn, e, builtin.NodeInfo{Fingerprint: key.Fingerprint(), Version: Version, Started: time.Now(), ALPNs: alpns}, dev)
	if err != nil {
		return configErr(err)
	}
	reg, err := endpoint.NewRegistry(call.ProtocolHandler{D: d})
	if err != nil {
		return err
	}
	srv, err := tlsconf.NewServer(tlsconf.ServerOptions{Mode: tlsconf.ModeKey}, key, reg.ALPNs())
	if err != nil {
		return configErr(err)
	}
	defer srv.Close()
	ep, err := endpoint.New(endpoint.Options{
		Registry: reg, Auth: authn, Store: store,
		DrainTimeout: drain, Logger: e.log, EphemeralKey: dev,
	})
	if err != nil {
		return configErr(err)
	}
	ticket := identity.Ticket{Fingerprint: srv.Fingerprint()}
	var lines []string
	for _, a := range listen {
		qa, err := ep.ListenQUIC(a, srv.QUIC())
		if err != nil {
			return configErr(err)
		}
		ta, err := ep.ListenTCP(a, srv.TCP())
		if err != nil {
			return configErr(err)
		}
		lines = append(lines, "quic "+qa.String(), "tcp "+ta.String())
		ticket.QUIC = append(ticket.QUIC, advertised(e, qa))
		ticket.TCP = append(ticket.TCP, advertised(e, ta))
	}
	tk, err := ticket.Encode()
	if err != nil {
		return configErr(err)
	}
	// Written only after every listener is bound, and before the start-up lines, so whoever
	// reads those finds the file; removed on clean exit.
	if err := writeAtomic(dir, ticketFile, []byte(tk+"\n"), 0o644); err != nil {
		return configErr(err)
	}
	defer os.Remove(filepath.Join(dir, ticketFile))
	if err := writeAtomic(dir, pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return configErr(err)
	}
	defer os.Remove(filepath.Join(dir, pidFile))
	fmt.Fprintf(e.stdout, "fingerprint %s\n", srv.Fingerprint())
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	fmt.Fprintf(e.stdout, "ticket %s\n", tk)

	e.log.Info("node started", "fingerprint", srv.Fingerprint(), "state_dir", dir)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runDone := make(chan error, 1)
	go func() { runDone <- ep.Run(ctx) }()
	select {
	case err := <-runDone:
		return err
	case sig := <-sigs:
		e.log.Info("shutting down", "signal", sig.String())
	}
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- ep.Shutdown(context.Background()) }()
	select {
	case err := <-shutdownDone:
		<-runDone
		if err != nil && !errors.Is(err, endpoint.ErrDrainTimeout) {
			return err
		}
		if err != nil {
			e.log.Warn("drain timeout", "err", err)
		}
		return nil
	case <-sigs:
		return &exitError{code: ExitInterrupted, word: "INTERRUPTED", err: errors.New("second signal: exiting without draining")}
	}
}

// advertised returns the ticket address of a bound listener: its own, or 127.0.0.1 with its
// port when it is bound to a wildcard address.
func advertised(e *env, a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		e.log.Warn("wildcard listener: the ticket advertises 127.0.0.1", "addr", a.String())
		return net.JoinHostPort("127.0.0.1", port)
	}
	return a.String()
}

// buildDispatcher assembles the core registry: built-in and discovery operations, plus the
// demo operations on a dev node.
func buildDispatcher(ids *auth.Authenticator, e *env, info builtin.NodeInfo, dev bool) (*call.Dispatcher, error) {
	var d *call.Dispatcher
	var registry *call.Registry
	info.Operations = func() int { return registry.Len() } // known once built
	b := call.NewRegistryBuilder()
	regs := builtin.Registrations(info)
	regs = append(regs, call.DiscoveryRegistrations(func() *call.Dispatcher { return d })...)
	if dev {
		regs = append(regs, demo.Registrations(demo.Options{})...)
	}
	for _, r := range regs {
		_ = b.Register(r) // errors are collected by Build
	}
	registry, err := b.Build()
	if err != nil {
		return nil, err
	}
	d, err = call.NewDispatcher(registry, call.Config{}, ids, call.WithLogger(e.log))
	return d, err
}
