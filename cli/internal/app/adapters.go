package app

import (
	"context"
	"net"
	"time"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/adapters/openapi"
	callnode "github.com/alkdev/alknet/call/node"
)

// devHTTPListen is the dev node's loopback HTTP listener when --listen is not given.
const devHTTPListen = "127.0.0.1:7480"

// adapters is the HTTP gateway (and MCP at /mcp) of a running node.
type adapters struct {
	cat *catalog.NodeCatalog
	gw  *gateway.Gateway
	tls bool // the TLS route is on
	mcp bool // MCP is served at /mcp
}

func (a *adapters) mcpOn() bool { return a != nil && a.mcp }

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
	h := n.file.HTTP
	a := &adapters{cat: catalog.ForNode(Version), tls: tlsRoute}
	names := catalog.NewNames(a.cat)
	var pub *openapi.Publisher
	gw, err := gateway.New(gateway.Options{
		Catalog: a.cat, Logger: n.e.log, TLSRoute: tlsRoute, LoopbackListen: loopback,
		PublicURL: h.PublicURL, CORSOrigins: h.CORSOrigins, AccessLog: h.AccessLog,
		MaxBodyBytes: h.MaxBodyBytes, BodyTimeout: time.Duration(h.BodyTimeout), WriteTimeout: time.Duration(h.WriteTimeout),
		SSEWriteTimeout: time.Duration(h.SSEWriteTimeout), SSEKeepalive: time.Duration(h.SSEKeepalive),
		MaxInFlight: h.MaxInFlight, LoopbackMaxConnections: h.LoopbackMaxConnections,
		Document: func(ctx context.Context, c catalog.Caller, surface string) ([]byte, error) {
			return pub.Document(ctx, c, surface)
		},
	})
	if err != nil {
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
