package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/adapters/openapi"
	callnode "github.com/alkdev/alknet/call/node"
	"github.com/urfave/cli/v3"
)

// devHTTPListen is the dev node's loopback HTTP listener when --listen is not given.
const devHTTPListen = "127.0.0.1:7480"

// adapters is the HTTP gateway (and MCP at /mcp) of a running node.
type adapters struct {
	cat  *catalog.NodeCatalog
	gw   *gateway.Gateway
	tls  bool // the TLS route is on
	mcp  bool // MCP is served at /mcp
	proj *mcp.Projection
}

func (a *adapters) mcpOn() bool { return a != nil && a.mcp }

// close stops the MCP projection's watcher (after the node has shut down).
func (a *adapters) close() {
	if a != nil && a.proj != nil {
		a.proj.Close()
	}
}

// httpSettings resolves [http] with the flags: --dev turns on the TLS route and, without
// --listen, the loopback listener on 127.0.0.1:7480; --http-listen sets the loopback address
// ("" turns it off).
func (n *node) httpSettings() (tlsRoute bool, loopback string) {
	h := n.file.HTTP
	tlsRoute, loopback = h.Enabled, h.LoopbackListen
	if n.dev {
		tlsRoute = true
		if !n.listenGiven {
			loopback = devHTTPListen
		}
	}
	if n.httpListen != nil {
		loopback = *n.httpListen
	}
	return tlsRoute, loopback
}

// newAdapters builds the gateway addons; nil when HTTP is off.
func (n *node) newAdapters() (*adapters, error) {
	tlsRoute, loopback := n.httpSettings()
	if !tlsRoute && loopback == "" {
		return nil, nil
	}
	h, m := n.file.HTTP, n.file.MCP
	a := &adapters{cat: catalog.ForNode(Version), tls: tlsRoute, mcp: m.Enabled || n.dev}
	names := catalog.NewNames(a.cat)
	var pub *openapi.Publisher
	var mcpHandler http.Handler
	if a.mcp {
		a.proj = mcp.NewProjection(mcp.ServerOptions{Catalog: a.cat, Names: names, Exclude: m.Exclude, Stateless: m.Stateless,
			SessionTimeout: time.Duration(m.SessionTimeout), MaxSessions: m.MaxSessions, MaxSessionsPerIdentity: m.MaxSessionsPerIdentity,
			MaxInFlight: m.MaxInFlight, MaxBodyBytes: h.MaxBodyBytes, Version: Version, Logger: n.e.log})
		mcpHandler = a.proj.Handler()
	}
	gw, err := gateway.New(gateway.Options{
		Catalog: a.cat, Logger: n.e.log, TLSRoute: tlsRoute, LoopbackListen: loopback,
		PublicURL: h.PublicURL, CORSOrigins: h.CORSOrigins, AccessLog: h.AccessLog,
		MaxBodyBytes: h.MaxBodyBytes, BodyTimeout: time.Duration(h.BodyTimeout), WriteTimeout: time.Duration(h.WriteTimeout),
		SSEWriteTimeout: time.Duration(h.SSEWriteTimeout), SSEKeepalive: time.Duration(h.SSEKeepalive),
		MaxInFlight: h.MaxInFlight, LoopbackMaxConnections: h.LoopbackMaxConnections,
		Document: func(ctx context.Context, c catalog.Caller, surface string) ([]byte, error) {
			return pub.Document(ctx, c, surface)
		},
		MCP: mcpHandler,
	})
	if err != nil {
		a.close()
		return nil, configErr(err)
	}
	a.gw = gw
	pub = openapi.NewPublisher(a.cat, names, a.serverURL(h.PublicURL, n.file.Node.Advertise), n.e.log)
	return a, nil
}

func (a *adapters) addons() []callnode.Addon {
	if a == nil {
		return nil
	}
	return []callnode.Addon{a.cat, a.gw}
}

// serverURL is the document's servers entry per surface (docs/http.md §4): public_url, else
// https://<first advertised or bound TCP address>, or http://<loopback address>.
func (a *adapters) serverURL(public string, advertise []string) func(string) string {
	return func(surface string) string {
		switch {
		case public != "":
			return public
		case surface == gateway.SurfaceLoopback:
			if addr := a.gw.LoopbackAddr(); addr != nil {
				return "http://" + addr.String()
			}
		case len(advertise) > 0:
			return "https://" + advertise[0]
		default:
			if nd := a.cat.Bound(); nd != nil && len(nd.TCPAddrs()) > 0 {
				return "https://" + nd.TCPAddrs()[0].String()
			}
		}
		return ""
	}
}

// urls are the start-up lines' HTTP URLs: https per TCP listener with the TLS route, then
// the loopback listener's http URL.
func (a *adapters) urls(tcp []net.Addr) []string {
	if a == nil {
		return nil
	}
	var out []string
	if a.tls {
		for _, t := range tcp {
			out = append(out, "https://"+t.String())
		}
	}
	if addr := a.gw.LoopbackAddr(); addr != nil {
		out = append(out, "http://"+addr.String())
	}
	return out
}

// remoteCatalog reads the target node's catalogue as this caller (the session's key and token).
func remoteCatalog(ctx context.Context, s *session) (*catalog.RemoteCatalog, error) {
	info := catalog.NodeInfo{Fingerprint: s.ticket.Fingerprint}
	out, err := s.conn.Call(ctx, "node/info", json.RawMessage(`{}`))
	if err == nil {
		var ni struct{ Version string }
		if json.Unmarshal(out, &ni) == nil {
			info.Version = ni.Version
		}
	}
	rc, err := catalog.Remote(ctx, s.conn, catalog.RemoteOptions{Node: info})
	if err != nil {
		return nil, remoteErr(err)
	}
	return rc, nil
}

func openapiCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "openapi",
		Usage: "print the OpenAPI 3.1 document of the operations the target node lets you call",
		UsageText: "alknet openapi                                   # the local node, as its GET /openapi.json\n" +
			"alknet openapi --server-url http://127.0.0.1:7480 --token-file T --out api.json",
		Description: "Reads the node's catalogue over alknet/call as you (--key-file, --token-file) and writes the\n" +
			"document its HTTP gateway serves you at /openapi.json (docs/http.md §4), byte for byte for\n" +
			"the same identity and server URL, followed by a newline. The servers entry is --server-url,\n" +
			"by default https://<the ticket's first TCP address>.",
		Flags: append(clientFlags(true),
			&cli.StringFlag{Name: "server-url", Usage: "the document's servers URL (default: https://<the ticket's first TCP address>)"},
			&cli.StringFlag{Name: "out", Usage: "write the document to this file instead of stdout"}),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() > 0 {
				return usageErr("openapi takes no arguments")
			}
			s, err := connect(ctx, e, c)
			if err != nil {
				return err
			}
			defer s.close()
			rc, err := remoteCatalog(ctx, s)
			if err != nil {
				return err
			}
			serverURL := c.String("server-url")
			if serverURL == "" && len(s.ticket.TCP) > 0 {
				serverURL = "https://" + s.ticket.TCP[0]
			}
			names, err := catalog.NewNames(rc).Map(ctx)
			if err != nil {
				return remoteErr(err)
			}
			specs, _ := rc.Visible(ctx, nil)
			n := rc.Node()
			doc, err := openapi.Document(specs, names, openapi.DocOptions{ServerURL: serverURL, Fingerprint: n.Fingerprint,
				Version: n.Version, MTLS: strings.HasPrefix(serverURL, "https://"), Logger: e.log})
			if err != nil {
				return remoteErr(err)
			}
			if out := c.String("out"); out != "" {
				if err := os.WriteFile(out, doc, 0o644); err != nil {
					return configErr(err)
				}
				return nil
			}
			_, err = e.stdout.Write(doc)
			return err
		},
	}
}
