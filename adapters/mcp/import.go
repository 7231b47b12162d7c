package mcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/alkdev/alknet/adapters/internal/redact"
	"github.com/alkdev/alknet/adapters/upstream"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/core/client"
)

// Defaults and caps of an MCP import (docs/mcp.md §7).
const (
	DefaultConnectTimeout  = 10 * time.Second
	DefaultImportTimeout   = 60 * time.Second
	DefaultMaxConcurrent   = 16
	DefaultMaxResultBytes  = 4 << 20
	DefaultProtocolVersion = "2025-11-25"
	terminateAfter         = 2 * time.Second
	maxStderrLine          = 1 << 10
	maxToolErrorText       = 1 << 10
)

// ErrImport matches every error that stops an import.
var ErrImport = errors.New("mcp import")

// Error codes of imported tools (docs/mcp.md §7.5).
const (
	CodeToolError     = "MCP_TOOL_ERROR"
	CodeProtocolError = "MCP_PROTOCOL_ERROR"
	CodeUnavailable   = "MCP_UNAVAILABLE"
	CodeTooLarge      = "MCP_RESULT_TOO_LARGE"
)

// ImportConfig is one [[mcp_import]].
type ImportConfig struct {
	Service           string
	Prefix            string // default Service
	Transport         string // "stdio" or "http"
	Command           []string
	Env               map[string]string
	EnvFromCapability map[string]string // VAR → capability (api_key:<service>): the only way a secret enters an environment
	StateDir          string            // HOME of a stdio child is <StateDir>/mcp/<service>
	URL               string
	AllowLoopbackHTTP bool
	ProtocolVersion   string
	Queries           []string // tools that are queries; nil: the tools that say readOnlyHint
	Include, Exclude  []string
	Visibility        call.Visibility
	RequiredScopes    []string
	ConnectTimeout    time.Duration
	Timeout           time.Duration
	MaxConcurrent     int
	MaxResultBytes    int64
	Version           string
}

// Capability names of an MCP import.
func TokenCapability(service string) string { return "http_token:" + service }

func (cfg ImportConfig) withDefaults() ImportConfig {
	if cfg.Prefix == "" {
		cfg.Prefix = cfg.Service
	}
	if cfg.Transport == "" {
		cfg.Transport = "stdio"
	}
	if cfg.Visibility == "" {
		cfg.Visibility = call.VisibilityInternal
	}
	if cfg.ProtocolVersion == "" {
		cfg.ProtocolVersion = DefaultProtocolVersion
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultImportTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxResultBytes <= 0 {
		cfg.MaxResultBytes = DefaultMaxResultBytes
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	return cfg
}

func importErr(cfg ImportConfig, format string, a ...any) error {
	return fmt.Errorf("%w %s: %s", ErrImport, cfg.Service, fmt.Sprintf(format, a...))
}

// Imported is a running MCP import: the server's tools as registrations, and the connection
// kept to it (redialled with backoff when it ends).
type Imported struct {
	cfg     ImportConfig
	log     *slog.Logger
	secrets map[string][]byte // env_from_capability values and the Bearer token (wiped at Close)
	red     *redact.Redactor
	sem     chan struct{}
	regs    []call.HandlerRegistration

	mu      sync.Mutex
	session *sdk.ClientSession // nil while disconnected
	tools   map[string]bool    // tool names of the current session
	child   *child             // the stdio process of the current session

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// Registrations returns the import's operations (provenance FromMCP).
func (im *Imported) Registrations() []call.HandlerRegistration { return im.regs }

var toolNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Import connects to the MCP server of cfg within its connect timeout, lists its tools and
// returns them as operations (docs/mcp.md §7). caps holds the node's capabilities.
func Import(ctx context.Context, cfg ImportConfig, caps core.Capabilities, log *slog.Logger) (*Imported, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	im := &Imported{cfg: cfg, log: log.With("service", cfg.Service), secrets: map[string][]byte{}, sem: make(chan struct{}, cfg.MaxConcurrent), done: make(chan struct{})}
	switch cfg.Transport {
	case "stdio":
		if len(cfg.Command) == 0 {
			return nil, importErr(cfg, "command is empty")
		}
		for v, capName := range cfg.EnvFromCapability {
			val, ok := caps.Get(capName)
			if !ok {
				im.wipe()
				return nil, importErr(cfg, "env_from_capability %s needs the capability %q", v, capName)
			}
			im.secrets[capName] = val
		}
	case "http":
		if _, err := upstream.CheckURL(cfg.URL, cfg.AllowLoopbackHTTP); err != nil {
			return nil, importErr(cfg, "url: %v", err)
		}
		if tok, ok := caps.Get(TokenCapability(cfg.Service)); ok {
			im.secrets[TokenCapability(cfg.Service)] = tok
		}
	default:
		return nil, importErr(cfg, "transport %q: want stdio or http", cfg.Transport)
	}
	var values [][]byte
	for _, v := range im.secrets {
		values = append(values, v)
	}
	im.red = redact.New(values...)
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	tools, err := im.connect(cctx)
	cancel()
	if err != nil {
		im.wipe()
		return nil, importErr(cfg, "%s", im.red.String(err.Error()))
	}
	im.regs = im.registrations(tools)
	im.ctx, im.cancel = context.WithCancel(context.Background())
	go im.supervise()
	return im, nil
}

func (im *Imported) wipe() {
	for _, v := range im.secrets {
		clear(v)
	}
	im.red.Wipe()
}

// Close ends the connection (stdio: stdin closed, 2 s, SIGTERM, 2 s, SIGKILL to the group)
// and wipes the secrets.
func (im *Imported) Close(ctx context.Context) error {
	if im.cancel != nil {
		im.cancel()
		select {
		case <-im.done:
		case <-ctx.Done():
		}
	}
	im.mu.Lock()
	s, ch := im.session, im.child
	im.session, im.child = nil, nil
	im.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
	ch.kill()
	im.wipe()
	return nil
}

// connect starts a session and lists its tools.
func (im *Imported) connect(ctx context.Context) ([]*sdk.Tool, error) {
	tr, ch, err := im.transport()
	if err != nil {
		return nil, err
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "alknet", Version: im.cfg.Version}, nil)
	s, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: im.cfg.ProtocolVersion})
	ch.started()
	if err != nil {
		ch.kill()
		return nil, err
	}
	var tools []*sdk.Tool
	for t, err := range s.Tools(ctx, nil) {
		if err != nil {
			_ = s.Close()
			ch.kill()
			return nil, err
		}
		tools = append(tools, t)
	}
	names := map[string]bool{}
	for _, t := range tools {
		names[t.Name] = true
	}
	im.mu.Lock()
	im.session, im.tools, im.child = s, names, ch
	im.mu.Unlock()
	im.log.Info("mcp import connected", "protocol_version", s.InitializeResult().ProtocolVersion, "tools", len(tools))
	return tools, nil
}

// supervise waits for the session to end and redials with backoff (1–60 s); calls fail fast
// meanwhile. New or changed tools are logged: imports change only with a restart.
func (im *Imported) supervise() {
	defer close(im.done)
	b := client.DefaultBackoff // 1 s doubling to 60 s
	for attempt := 0; ; {
		im.mu.Lock()
		s, ch := im.session, im.child
		im.mu.Unlock()
		if s != nil {
			waited := make(chan struct{})
			go func() { _ = s.Wait(); close(waited) }()
			select {
			case <-im.ctx.Done():
				return
			case <-waited:
			}
			im.mu.Lock()
			im.session, im.child = nil, nil
			im.mu.Unlock()
			ch.kill()
			im.log.Warn("mcp import disconnected: calls fail with MCP_UNAVAILABLE until it reconnects")
		}
		select {
		case <-im.ctx.Done():
			return
		case <-time.After(b.Wait(attempt)):
		}
		ctx, cancel := context.WithTimeout(im.ctx, im.cfg.ConnectTimeout)
		tools, err := im.connect(ctx)
		cancel()
		if err != nil {
			attempt++
			im.log.Info("mcp import reconnect failed", "err", im.red.String(err.Error()))
			continue
		}
		attempt = 0
		im.logChanges(tools)
	}
}

func (im *Imported) logChanges(tools []*sdk.Tool) {
	known := map[string]bool{}
	for _, r := range im.regs {
		known[strings.TrimPrefix(r.Spec.Name, im.cfg.Prefix+"/")] = true
	}
	for _, t := range tools {
		if !known[t.Name] && toolNameRE.MatchString(t.Name) {
			im.log.Info("mcp import: a new tool is served from the next restart", "tool", t.Name)
		}
	}
}

// transport returns the session's transport; for stdio the child runs in its own process
// group with its own HOME, an environment from the config only, and stderr read line by line.
func (im *Imported) transport() (sdk.Transport, *child, error) {
	cfg := im.cfg
	if cfg.Transport == "http" {
		u, _ := upstream.CheckURL(cfg.URL, cfg.AllowLoopbackHTTP)
		hc := upstream.NewClient(upstream.Options{Origin: u, DialTimeout: cfg.ConnectTimeout})
		origin := upstream.Origin(u)
		tok := im.secrets[TokenCapability(cfg.Service)]
		hc.Transport = bearerOnly{base: hc.Transport, origin: origin, token: tok}
		return &sdk.StreamableClientTransport{Endpoint: cfg.URL, HTTPClient: hc, MaxRetries: -1}, nil, nil
	}
	home := filepath.Join(cfg.StateDir, "mcp", cfg.Service)
	if cfg.StateDir == "" {
		home = filepath.Join(os.TempDir(), "alknet-mcp-"+cfg.Service)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	for _, k := range sortedKeys(cfg.Env) {
		env = append(env, k+"="+cfg.Env[k])
	}
	for _, v := range sortedKeys(cfg.EnvFromCapability) {
		env = append(env, v+"="+string(im.secrets[cfg.EnvFromCapability[v]]))
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Env, cmd.Dir = env, home
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = w // a file: Wait does not wait for the child's children to close it
	ch := &child{cmd: cmd, stderrW: w}
	go im.readStderr(r)
	return &sdk.CommandTransport{Command: cmd, TerminateDuration: terminateAfter}, ch, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// readStderr logs the child's stderr at debug: lines cut at 1 KiB, redacted, at most 10 a
// second; never at info (docs/mcp.md §7.1).
func (im *Imported) readStderr(r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxStderrLine)
	var window time.Time
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if time.Since(window) > time.Second {
				window, n = time.Now(), 0
			}
			if n++; n <= 10 {
				im.log.Debug("mcp import stderr", "line", im.red.String(strings.TrimRight(string(line), "\r\n")))
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // the rest of a long line
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// child is a stdio server process.
type child struct {
	cmd     *exec.Cmd
	stderrW *os.File
	once    sync.Once
}

// started closes the parent's copy of the stderr pipe once the process runs.
func (c *child) started() {
	if c != nil && c.stderrW != nil {
		_ = c.stderrW.Close()
	}
}

// kill ends whatever is left of the child's process group.
func (c *child) kill() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.started()
		if c.cmd.Process != nil {
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
}

// bearerOnly adds the import's token to requests to its origin only.
type bearerOnly struct {
	base   http.RoundTripper
	origin string
	token  []byte
}

func (b bearerOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(b.token) > 0 && upstream.Origin(r.URL) == b.origin {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+string(b.token))
	}
	return b.base.RoundTrip(r)
}
