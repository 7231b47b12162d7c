package app

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v3"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

func mcpCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "mcp",
		Usage: "serve the target node's operations as MCP tools on stdin/stdout (for desktop AI assistants)",
		UsageText: "alknet mcp                                  # the local node (a dev node: just this)\n" +
			"alknet mcp --to alk1… --token-file T --exclude 'admin/*'",
		Description: "Speaks MCP (JSON-RPC, one message per line) on stdin and stdout: stdout carries nothing else,\n" +
			"logs go to stderr. Each operation you may call becomes a tool (docs/mcp.md §6): demo/add is\n" +
			"demo_add; subscriptions are left out. initialize is answered at once; the node is dialled in\n" +
			"the background and redialled when the connection ends, tool calls failing with\n" +
			"'INTERNAL: not connected to the node' meanwhile. Tools are re-read on every connect and every\n" +
			"--refresh, and clients get notifications/tools/list_changed when they change. Cancelling a\n" +
			"tool call aborts the operation. Exits 0 when stdin ends.",
		Flags: append(clientFlags(true),
			&cli.StringSliceFlag{Name: "exclude", Usage: "leave this operation out (a name, or ns/* for a namespace); repeatable"},
			&cli.DurationFlag{Name: "refresh", Value: time.Minute, Usage: "how often to re-read the node's operations"}),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() > 0 {
				return usageErr("mcp takes no arguments")
			}
			spec := specOf(c)
			var token string
			if spec.tokenFile != "" {
				tok, err := readSecretFile(spec.tokenFile, true)
				if err != nil {
					return err
				}
				token = string(tok) // a bearer token may be a string where an API needs one
				clear(tok)
			}
			var key *identity.NodeKey
			if spec.keyFile != "" {
				var err error
				if key, err = identity.LoadKeyFile(spec.keyFile, e.log); err != nil {
					return configErr(err)
				}
			}
			if _, err := target(c); err != nil { // a bad --to or no local node: say so at once
				return err
			}
			live := catalog.NewLive(catalog.NodeInfo{})
			proj := mcp.NewProjection(mcp.ServerOptions{Catalog: live, Exclude: c.StringSlice("exclude"), Version: Version, Logger: e.log})
			defer proj.Close()
			srv, err := proj.Server(ctx, catalog.Caller{})
			if err != nil {
				return err
			}
			// initialize is answered at once; tools/list and tools/call wait for the first
			// connection attempt (within --timeout), so a client listing right away sees the
			// node's tools, not an empty list.
			tried := make(chan struct{})
			firstTry := sync.OnceFunc(func() { close(tried) })
			srv.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
				return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
					if strings.HasPrefix(method, "tools/") {
						select {
						case <-tried:
						case <-ctx.Done():
						}
					}
					return next(ctx, method, req)
				}
			})
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			superviseDone := make(chan struct{})
			go func() {
				defer close(superviseDone)
				superviseMCP(ctx, e, c, live, proj, firstTry, key, token, spec.timeout, c.Duration("refresh"))
			}()
			in, out := e.stdin, e.stdout
			err = srv.Run(ctx, &sdk.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}})
			cancel()
			<-superviseDone
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil
			}
			return remoteErr(err)
		},
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// superviseMCP keeps the node connection of alknet mcp: dial (the local node's ticket is
// re-read each time, a dev node's key changes at restart), read the catalogue, refresh it
// every refresh, and redial with backoff when the connection ends.
func superviseMCP(ctx context.Context, e *env, c *cli.Command, live *catalog.Live, proj *mcp.Projection, tried func(), key *identity.NodeKey, token string, timeout, refresh time.Duration) {
	defer tried()
	d := &client.Dialer{Logger: e.log}
	var tk identity.Ticket
	dial := func(ctx context.Context) (conn.Connection, error) {
		var err error
		if tk, err = target(c); err != nil {
			tried()
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cn, err := client.DialRace(dctx, d, tk, call.ALPN, tlsconf.ConnectionCredentials{LocalKey: key}, client.RaceOptions{})
		if err != nil {
			tried()
		}
		return cn, err
	}
	run := func(ctx context.Context, cn conn.Connection) error {
		cc := call.NewConn(cn, nil, call.ConnOptions{AuthToken: token, Logger: e.log, CallTimeout: timeout})
		cc.Start(ctx)
		defer cc.Close()
		rctx, cancel := context.WithTimeout(ctx, timeout)
		rc, err := remoteCatalog(rctx, &session{conn: cc, ticket: tk})
		cancel()
		if err != nil {
			e.log.Warn("mcp: could not read the node's operations", "err", err)
			tried()
			return err
		}
		live.Set(rc)
		defer live.Set(nil)
		proj.Refresh(ctx) // the tools are in place before the first tools/list is answered
		tried()
		e.log.Info("mcp: connected", "fingerprint", tk.Fingerprint, "transport", cn.Transport())
		t := time.NewTicker(refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-cn.Done():
				return nil
			case <-t.C:
				gen := rc.Generation()
				rctx, cancel := context.WithTimeout(ctx, timeout)
				if err := rc.Refresh(rctx); err != nil {
					e.log.Warn("mcp: refresh failed", "err", err)
				} else if rc.Generation() != gen {
					live.Touch()
				}
				cancel()
			}
		}
	}
	_ = client.Supervise(ctx, dial, run, client.DefaultBackoff, e.log)
}
