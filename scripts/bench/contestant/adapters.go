package contestant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/net/http2"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/adapters/mcp"
	"github.com/alkdev/alknet/call/node"
	"github.com/alkdev/alknet/core/host"
	"github.com/alkdev/alknet/core/tlsconf"
)

// The adapter contestants (docs/http.md, docs/mcp.md; bench.md's adapter rows): HTTP on the
// TLS route against connect, and MCP through the projection against the Go SDK's own handler.
// They run unary 64 B and CPU per 100k calls only.
func init() {
	register(Contestant{
		Name: "alknet-http", Limits: "the gateway's defaults on the TCP+TLS route (h2, one connection); POST /ops/demo/echo",
		Serve: func(addr string) (Server, error) { return serveAdapters(addr, false) },
		Dial:  dialHTTP,
	})
	register(Contestant{
		Name: "alknet-mcp", Limits: "to_mcp at /mcp on the loopback listener, stateful; tools/call demo_echo",
		Serve: func(addr string) (Server, error) { return serveAdapters(addr, true) },
		Dial:  dialMCP,
	})
	register(Contestant{
		Name: "mcp-direct", Limits: "the Go MCP SDK's streamable HTTP handler, stateful; demo_echo a Go function",
		Serve: serveMCPDirect,
		Dial:  dialMCP,
	})
}

// IsAdapter reports the contestants that run only unary 64 B and CPU per call.
func IsAdapter(name string) bool {
	return name == "alknet-http" || name == "alknet-mcp" || name == "mcp-direct"
}

type adapterServer struct {
	n    *node.Node
	proj *mcp.Projection // nil: no MCP
	addr string
	pin  string
}

func (s *adapterServer) Addr() string { return s.addr }
func (s *adapterServer) Pin() string  { return s.pin }
func (s *adapterServer) Close() error {
	err := s.n.Shutdown(context.Background())
	if s.proj != nil {
		s.proj.Close()
	}
	return err
}

// serveAdapters runs a node with the demo operations and the gateway: the TLS route
// (alknet-http, addressed by its TCP listener) or the loopback listener with MCP (alknet-mcp).
func serveAdapters(addr string, withMCP bool) (Server, error) {
	log := slog.New(slog.DiscardHandler)
	cat := catalog.ForNode("bench")
	o := gateway.Options{Catalog: cat, Logger: log, TLSRoute: !withMCP}
	var proj *mcp.Projection
	if withMCP {
		o.LoopbackListen = "127.0.0.1:0"
		proj = mcp.NewProjection(mcp.ServerOptions{Catalog: cat, Logger: log})
		o.MCP = proj.Handler()
	}
	gw, err := gateway.New(o)
	if err != nil {
		return nil, err
	}
	n, err := node.Start(node.Options{Demo: true, Addons: []node.Addon{cat, gw},
		Host: host.Options{Listen: []string{addr}, NoQUIC: true, Limits: benchLimits, Logger: log}})
	if err != nil {
		return nil, err
	}
	s := &adapterServer{n: n, proj: proj, addr: n.TCPAddrs()[0].String(), pin: n.Fingerprint()}
	if withMCP {
		s.addr, s.pin = gw.LoopbackAddr().String(), ""
	}
	return s, nil
}

// echoText is a payload as demo/echo's text (Payload is printable: it needs no escaping).
func echoText(payload []byte) string { return string(payload) }

type httpClient struct {
	hc  *http.Client
	url string
}

func dialHTTP(_ context.Context, addr, pin string, _ Options) (Client, error) {
	tc, err := tlsconf.NewClient(tlsconf.ConnectionCredentials{RemotePin: pin}, "h2")
	if err != nil {
		return nil, err
	}
	// One HTTP/2 connection, like connect's client.
	return &httpClient{hc: &http.Client{Transport: &http2.Transport{TLSClientConfig: tc}}, url: "https://" + addr + "/ops/demo/echo"}, nil
}

func (c *httpClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	// {"text":"<payload>"}: Payload is printable, so this is the JSON encoding (as connect's raw
	// codec, the client's own encoding costs one copy).
	body := make([]byte, 0, len(payload)+11)
	body = append(append(append(body, `{"text":"`...), payload...), `"}`...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("alknet-http: %d %s", resp.StatusCode, out)
	}
	return out, nil
}

func (c *httpClient) Stream(context.Context, int, int, func([]byte)) error {
	return errors.New("alknet-http: unary only")
}

func (c *httpClient) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

type mcpClient struct {
	cs *sdk.ClientSession
	tr *http.Transport
}

// dialMCP opens one go-sdk client session to <addr>/mcp (stateful).
func dialMCP(ctx context.Context, addr, _ string, _ Options) (Client, error) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", HTTPClient: &http.Client{Transport: tr}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, err
	}
	return &mcpClient{cs: cs, tr: tr}, nil
}

func (c *mcpClient) Unary(ctx context.Context, payload []byte) ([]byte, error) {
	res, err := c.cs.CallTool(ctx, &sdk.CallToolParams{Name: "demo_echo", Arguments: map[string]any{"text": echoText(payload)}})
	if err != nil {
		return nil, err
	}
	if res.IsError {
		return nil, fmt.Errorf("demo_echo: %+v", res.Content)
	}
	if len(res.Content) == 0 {
		return nil, errors.New("demo_echo: no content")
	}
	tc, _ := res.Content[0].(*sdk.TextContent)
	if tc == nil {
		return nil, errors.New("demo_echo: no text")
	}
	return []byte(tc.Text), nil
}

func (c *mcpClient) Stream(context.Context, int, int, func([]byte)) error {
	return errors.New("mcp: unary only")
}

func (c *mcpClient) Close() error {
	err := c.cs.Close()
	c.tr.CloseIdleConnections()
	return err
}

// mcpDirect is the Go SDK's own handler with demo_echo as a Go function: the floor alknet-mcp
// is measured against.
type mcpDirect struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

func (s *mcpDirect) Addr() string { return s.addr }
func (s *mcpDirect) Pin() string  { return "" }
func (s *mcpDirect) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	_ = s.srv.Close()
	<-s.done
	return err
}

func serveMCPDirect(string) (Server, error) {
	server := sdk.NewServer(&sdk.Implementation{Name: "mcp-direct", Version: "1"}, nil)
	server.AddTool(&sdk.Tool{Name: "demo_echo", Description: "Return the text it is given.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`)},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var in struct{ Text string }
			if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
				return nil, err
			}
			out, _ := json.Marshal(map[string]string{"text": in.Text})
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(out)}}}, nil
		})
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &mcpDirect{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}
