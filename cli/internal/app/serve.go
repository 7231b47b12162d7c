package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/cli/internal/metrics"
	"github.com/alkdev/alknet/cli/internal/nodeconfig"
	"github.com/alkdev/alknet/core"
)

const (
	devListen  = "127.0.0.1:7443"
	nodeListen = "0.0.0.0:7443"
	configFile = "config.toml"
)

// configPath returns --config, else <state dir>/config.toml (absent = all defaults).
func configPath(c *cli.Command) (path string, explicit bool, err error) {
	if p := c.String("config"); p != "" {
		return p, true, nil
	}
	dir, err := stateDir(c.Root().String("state-dir"))
	if err != nil {
		return "", false, configErr(err)
	}
	return filepath.Join(dir, configFile), false, nil
}

func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Usage: "config file (default: <state dir>/config.toml; a missing file means built-in settings)"}
}

func serveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run a node",
		UsageText: "alknet serve --dev                          # ephemeral key, demo operations, loopback, 127.0.0.1:7443\n" +
			"alknet serve --dev --listen 127.0.0.1:0       # pick free ports (shown on stdout and in the ticket)\n" +
			"alknet serve --passphrase-file P              # the vault's identity and <state dir>/config.toml\n" +
			"alknet serve --config node.toml --check       # validate a config file and exit",
		Description: "Starts QUIC and TCP+TLS listeners and serves until SIGINT or SIGTERM, then drains gracefully (a\n" +
			"second signal exits at once with 130). On start it prints 'fingerprint <fp>', 'quic <addr>',\n" +
			"'tcp <addr>', 'http <url>' (with [http]; --dev serves http://127.0.0.1:7480) and 'ticket <ticket>', and writes the ticket to <state dir>/node.ticket so local\n" +
			"clients find the node. Without --dev the node key is derived from the vault ('alknet init')\n" +
			"at m/74'/0'/0'/0', so the fingerprint is the same on every start. SIGHUP, 'alknet reload' and\n" +
			"the admin-scoped node/reload operation re-read the dynamic part of the config ([[peer]],\n" +
			"[[apikey]], [auth], [call]); an invalid config is rejected and the old one stays in force.",
		Flags: append(vaultFlags(), configFlag(),
			&cli.BoolFlag{Name: "dev", Usage: "development node: ephemeral key, demo operations, loopback only, no vault or config"},
			&cli.BoolFlag{Name: "check", Usage: "validate the config file and exit"},
			&cli.BoolFlag{Name: "demo", Usage: "also serve the demo operations (demo/echo, demo/ticker, …) on a node with a vault and config"},
			&cli.StringSliceFlag{Name: "listen", Usage: "HOST:PORT for both QUIC (UDP) and TCP+TLS; repeatable; replaces [node] listen; port 0 picks a free port"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus /metrics on HOST:PORT (overrides [node] metrics_addr)"},
			&cli.DurationFlag{Name: "drain-timeout", HideDefault: true, Usage: "how long handlers get to finish on shutdown (overrides [node] drain_timeout; default 2s)"},
			&cli.BoolFlag{Name: "iroh", Usage: "also serve over iroh (dial by key, relays, hole punching); with --dev on loopback with relays disabled, else with number 0's relays (the node's id and addresses are published)"},
			&cli.StringSliceFlag{Name: "iroh-bind", Usage: "IP-literal HOST:PORT the iroh endpoint binds (repeatable, at most one per family); default: every interface, port 0 (--dev: 127.0.0.1:0)"},
			&cli.StringFlag{Name: "http-listen", Usage: "serve the HTTP gateway (and MCP) in plain HTTP on this loopback HOST:PORT; \"\" turns it off (overrides [http] loopback_listen; --dev without --listen: 127.0.0.1:7480)"},
			&cli.BoolFlag{Name: "json", Usage: `print the start-up facts as one JSON object {"fingerprint","quic","tcp","http","ticket","metrics"}`},
		),
		Action: func(ctx context.Context, c *cli.Command) error {
			dev := c.Bool("dev")
			listen := c.StringSlice("listen")
			listenGiven := len(listen) > 0
			dir, err := stateDir(c.Root().String("state-dir"))
			if err != nil {
				return configErr(err)
			}
			file, path := &nodeconfig.File{}, ""
			if dev {
				if c.String("config") != "" || c.Bool("check") {
					return usageErr("--dev runs without a config file")
				}
				if len(listen) == 0 {
					listen = []string{devListen}
				}
				for _, a := range listen {
					if err := checkDevListen(a); err != nil {
						return err
					}
				}
			} else {
				var explicit bool
				if path, explicit, err = configPath(c); err != nil {
					return err
				}
				if file, err = nodeconfig.Load(path, !explicit); err != nil {
					return configErr(err)
				}
				if err := file.Validate(path, listen, nodeListen); err != nil {
					return configErr(err)
				}
				if c.Bool("check") {
					if c.Bool("json") {
						return writeJSON(e, map[string]any{"config": path, "ok": true})
					}
					fmt.Fprintf(e.stdout, "config ok: %s\n", path)
					return nil
				}
			}
			n := &node{e: e, dir: dir, cfgPath: path, listen: listen, listenGiven: listenGiven, dev: dev, file: file, json: c.Bool("json"), demo: c.Bool("demo"),
				iroh: c.Bool("iroh"), irohBind: c.StringSlice("iroh-bind")}
			if c.IsSet("http-listen") {
				a := c.String("http-listen")
				if a != "" {
					if err := gateway.CheckLoopback(a); err != nil {
						return usageErr("--http-listen: %v", err)
					}
				}
				n.httpListen = &a
			}
			if c.IsSet("drain-timeout") {
				d := c.Duration("drain-timeout")
				n.drain = &d
			}
			n.metricsAddr = file.Node.MetricsAddr
			if a := c.String("metrics-addr"); a != "" {
				n.metricsAddr = a
			}
			if !dev { // a dev node's key is ephemeral: the host draws it (and says so at start)
				u, err := unlock(e, c)
				if err != nil {
					return err
				}
				n.key = u.key
				n.caps, err = decryptCapabilities(u, file)
				u.v.Lock() // identity and capabilities are all the node needs from the vault
				if err != nil {
					return err
				}
				defer n.caps.Wipe()
			}
			return n.run(ctx)
		},
	}
}

// decryptCapabilities opens every [[capability]] blob into the node's capabilities.
func decryptCapabilities(u *unlocked, f *nodeconfig.File) (core.Capabilities, error) {
	vals := map[string][]byte{}
	defer func() {
		for _, v := range vals {
			clear(v)
		}
	}()
	for i, c := range f.Capability {
		pt, err := u.v.Decrypt(c.Blob.EncryptedData())
		if err != nil {
			return core.Capabilities{}, configErr(fmt.Errorf("capability[%d] %q: %w", i, c.Name, err))
		}
		vals[c.Name] = pt
	}
	return core.NewCapabilities(vals), nil
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

// waitForSignals serves until SIGINT/SIGTERM, reloading on SIGHUP; a second stop signal
// during the drain exits at once.
func (n *node) waitForSignals(sigs <-chan os.Signal, runDone <-chan error, shutdown func() error) error {
	for {
		select {
		case err := <-runDone:
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if n.dev {
					n.e.log.Warn("SIGHUP ignored: a dev node has no config to reload")
					continue
				}
				_ = n.reload()
				continue
			}
			n.e.log.Info("shutting down", "signal", sig.String())
		}
		break
	}
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- shutdown() }()
	for {
		select {
		case err := <-shutdownDone:
			<-runDone
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				continue
			}
			return &exitError{code: ExitInterrupted, word: "INTERRUPTED", err: errors.New("second signal: exiting without draining")}
		}
	}
}

// serveMetrics starts the /metrics listener, if configured.
func (n *node) serveMetrics(reg *metrics.Registry) (stop func(), addr string, err error) {
	if n.metricsAddr == "" {
		return func() {}, "", nil
	}
	ln, err := net.Listen("tcp", n.metricsAddr)
	if err != nil {
		return nil, "", configErr(fmt.Errorf("metrics listener %s: %w", n.metricsAddr, err))
	}
	srv := &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, ln.Addr().String(), nil
}
