package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/call"
)

// TimeoutHeader carries the caller's budget in milliseconds (docs/http.md §3.5.2).
const TimeoutHeader = "Alknet-Timeout-Ms"

const (
	allowOps  = "POST, OPTIONS"
	allowDoc  = "GET, HEAD, OPTIONS"
	allowMCP  = "GET, POST, DELETE, OPTIONS"
	corsAllow = "authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id, alknet-timeout-ms"
	corsShow  = "x-request-id, mcp-session-id, www-authenticate, retry-after"
)

// ServeHTTP routes one request (docs/http.md §3.3).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := call.NewRequestID()
	w.Header().Set("X-Request-Id", id)
	rec := &statusRecorder{ResponseWriter: w}
	ci := connInfoFrom(r.Context())
	op := ""
	defer func() {
		level := slog.LevelDebug
		if g.o.AccessLog {
			level = slog.LevelInfo
		}
		if !g.o.Logger.Enabled(r.Context(), level) {
			return
		}
		g.o.Logger.Log(r.Context(), level, "http", "request_id", id, "method", r.Method, "route", route(r.URL.Path),
			"op", op, "status", rec.status, "identity", rec.identity, "surface", ci.surface, "duration_ms", time.Since(start).Milliseconds())
	}()
	if ci.surface == SurfaceLoopback && !g.hostAllowed(r.Host) {
		writeProblem(rec, http.StatusForbidden, call.NewError(call.CodeForbidden, "host not allowed"), id)
		return
	}
	g.cors(rec, r)
	allow := ""
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/ops/"):
		allow = allowOps
	case path == "/openapi.json" && g.o.Document != nil:
		allow = allowDoc
	case path == "/mcp" && g.o.MCP != nil:
		allow = allowMCP
	default:
		notFound(rec, id)
		return
	}
	if r.Method == http.MethodOptions {
		g.preflight(rec, r, allow)
		return
	}
	if !methodAllowed(allow, r.Method) {
		rec.Header().Set("Allow", allow)
		badRequest(rec, http.StatusMethodNotAllowed, "method not allowed", id)
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodDelete {
		if err := g.csrf.Check(r); err != nil {
			writeProblem(rec, http.StatusForbidden, call.NewError(call.CodeForbidden, "cross-origin request refused"), id)
			return
		}
	}
	caller, ok := g.resolve(rec, r, ci, id)
	if !ok {
		return
	}
	rec.identity = caller.Key()
	ctx := catalog.WithCaller(r.Context(), caller)
	switch {
	case strings.HasPrefix(path, "/ops/"):
		op = strings.TrimPrefix(path, "/ops/")
		g.serveOp(ctx, rec, r, caller, op, id)
	case path == "/openapi.json":
		g.serveDocument(ctx, rec, r, caller, ci.surface, id)
	default:
		g.serveMCP(ctx, rec, r)
	}
}

// methodAllowed reports m as one of allow's methods (exactly: "POS" is not POST).
func methodAllowed(allow, m string) bool {
	for _, a := range strings.Split(allow, ", ") {
		if a == m {
			return true
		}
	}
	return false
}

// route is the access log's route: the path without the operation name.
func route(p string) string {
	if strings.HasPrefix(p, "/ops/") {
		return "/ops/{name}"
	}
	switch p {
	case "/openapi.json", "/mcp":
		return p
	}
	return "other"
}

// hostAllowed is the DNS rebinding check of the loopback surface (docs/http.md §3.3.2).
func (g *Gateway) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	switch {
	case strings.EqualFold(h, "localhost"), h == "127.0.0.1", h == "::1":
		return true
	case g.publicH != "" && strings.EqualFold(h, g.publicH):
		return true
	}
	return false
}

func (g *Gateway) originAllowed(origin string) bool {
	for _, o := range g.o.CORSOrigins {
		if o == origin {
			return true
		}
	}
	return false
}

// cors adds the CORS answer headers for an allowed origin (docs/http.md §3.3.4): never
// Access-Control-Allow-Credentials.
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !g.originAllowed(origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", corsShow)
}

func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	if origin := r.Header.Get("Origin"); origin != "" && g.originAllowed(origin) {
		w.Header().Set("Access-Control-Allow-Methods", "POST, GET, DELETE")
		w.Header().Set("Access-Control-Allow-Headers", corsAllow)
		w.Header().Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// resolve finds the caller once per request: a Bearer token replaces the connection identity
// (docs/http.md §3.4). Past the connection's (or address's) failure budget it answers 429 and
// closes the connection.
func (g *Gateway) resolve(w http.ResponseWriter, r *http.Request, ci *connInfo, id string) (catalog.Caller, bool) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="alknet", error="invalid_request"`)
			badRequest(w, http.StatusUnauthorized, "authorization must be a Bearer token", id)
			return catalog.Caller{}, false
		}
		token = strings.TrimSpace(rest)
	}
	blocked := token != "" && g.blocked(ci)
	caller := catalog.ResolveCaller(r.Context(), g.o.Catalog, ci.identity, token)
	if caller.TokenRejected && blocked {
		w.Header().Set("Retry-After", "60")
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close") // net/http closes it once the answer is written
		}
		writeProblem(w, http.StatusTooManyRequests, call.NewError(call.CodeForbidden, "too many failed tokens"), id)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		time.AfterFunc(50*time.Millisecond, ci.close) // HTTP/2: after the answer is on its way
		return catalog.Caller{}, false
	}
	return caller, true
}

// blocked reports a connection (loopback, or identified by its certificate) or an anonymous
// TLS client's address that has used up its failed-token budget.
func (g *Gateway) blocked(ci *connInfo) bool {
	if ci.failures != nil && ci.failures.Blocked() {
		return true
	}
	return ci.surface == SurfaceTLS && ci.identity == nil && g.auth != nil && g.auth.Blocked(ci.remote)
}

// writeCallError answers a call error as problem+json; a 401 names a rejected token.
func writeCallError(w http.ResponseWriter, err error, spec call.OperationSpec, caller catalog.Caller, id string) {
	ce := asCallError(err)
	status := statusOf(ce, spec, caller.Identity != nil)
	if status == http.StatusUnauthorized && caller.TokenRejected {
		w.Header().Set("WWW-Authenticate", `Bearer realm="alknet", error="invalid_token"`)
	}
	writeProblem(w, status, ce, id)
}

// timeoutOf reads Alknet-Timeout-Ms (absent: 0).
func timeoutOf(r *http.Request) (time.Duration, bool) {
	v := r.Header.Get(TimeoutHeader)
	if v == "" {
		return 0, true
	}
	return ParseTimeout(v)
}

// ParseTimeout parses an Alknet-Timeout-Ms value: digits only, 1 … 2^31−1 milliseconds, as
// the wire's timeout_ms (docs/http.md §3.5.2).
func ParseTimeout(v string) (time.Duration, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 1 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// reserve takes an in-flight slot (503 past MaxInFlight).
func (g *Gateway) reserve() bool {
	if g.inFlight.Add(1) > int64(g.o.MaxInFlight) {
		g.inFlight.Add(-1)
		return false
	}
	return true
}

func (g *Gateway) release() { g.inFlight.Add(-1) }

func tooBusy(w http.ResponseWriter, id string) {
	writeProblem(w, http.StatusServiceUnavailable, call.NewError(call.CodeInternal, "too many in-flight requests").WithRetryable(true), id)
}

// smallBody is the largest announced body read into a buffer of its announced size; larger
// or unannounced (chunked) bodies grow with the bytes that arrive.
const smallBody = 64 << 10

// chunks are the scratch buffers of bodies read as they arrive.
var chunks = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// readBody reads a JSON body within MaxBodyBytes, charging the node-wide byte budget as it
// arrives (docs/http.md §3.5.1): memory follows the bytes received, never those announced.
// The budget is released by the returned func (or when the call starts).
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, id string) (json.RawMessage, func(), bool) {
	noop := func() {}
	ct := r.Header.Get("Content-Type")
	if r.ContentLength > g.o.MaxBodyBytes {
		badRequest(w, http.StatusRequestEntityTooLarge, "request body too large", id)
		return nil, noop, false
	}
	if r.ContentLength > 0 && !jsonContentType(ct) {
		badRequest(w, http.StatusUnsupportedMediaType, "content type must be application/json", id)
		return nil, noop, false
	}
	// Bytes held before the call starts count against the node-wide partial-frame budget
	// (docs/http.md §3.2), as a wire request's partial frames do.
	var held int64
	hold := func(n int64) bool {
		if g.node != nil && !g.node.Dispatcher().HoldBytes(n) {
			return false
		}
		held += n
		return true
	}
	release := func() {
		if g.node != nil && held > 0 {
			g.node.Dispatcher().ReleaseBytes(held)
		}
		held = 0
	}
	fail := func(status int, msg string) (json.RawMessage, func(), bool) {
		release()
		if status == http.StatusServiceUnavailable {
			tooBusy(w, id)
		} else {
			badRequest(w, status, msg, id)
		}
		return nil, noop, false
	}
	var body []byte
	if r.ContentLength != 0 {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(g.o.BodyTimeout))
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	switch {
	case r.ContentLength == 0:
	case r.ContentLength > 0 && r.ContentLength <= smallBody:
		if !hold(r.ContentLength) {
			return fail(http.StatusServiceUnavailable, "")
		}
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return fail(http.StatusBadRequest, "could not read the request body")
		}
	default:
		chunk := chunks.Get().(*[]byte)
		defer chunks.Put(chunk)
		for {
			n, err := r.Body.Read(*chunk)
			if n > 0 {
				if int64(len(body)+n) > g.o.MaxBodyBytes {
					return fail(http.StatusRequestEntityTooLarge, "request body too large")
				}
				if !hold(int64(n)) {
					return fail(http.StatusServiceUnavailable, "")
				}
				body = append(body, (*chunk)[:n]...)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return fail(http.StatusRequestEntityTooLarge, "request body too large")
				}
				return fail(http.StatusBadRequest, "could not read the request body")
			}
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		release()
		return json.RawMessage(`{}`), noop, true
	}
	if !jsonContentType(ct) {
		return fail(http.StatusUnsupportedMediaType, "content type must be application/json")
	}
	// json.Valid accepts exactly one value (whitespace around it); it does not check UTF-8.
	if !utf8.Valid(body) || !json.Valid(body) {
		return fail(http.StatusBadRequest, "invalid JSON body")
	}
	return json.RawMessage(body), release, true
}

// jsonContentType accepts application/json and */*+json, with no charset but utf-8.
func jsonContentType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// serveOp calls one operation (docs/http.md §3.5, §3.6).
func (g *Gateway) serveOp(ctx context.Context, w *statusRecorder, r *http.Request, caller catalog.Caller, op, id string) {
	timeout, ok := timeoutOf(r)
	if !ok {
		badRequest(w, http.StatusBadRequest, TimeoutHeader+" must be 1 to 2147483647 milliseconds", id)
		return
	}
	if !g.reserve() {
		tooBusy(w, id)
		return
	}
	defer g.release()
	input, release, ok := g.readBody(w, r, id)
	if !ok {
		return
	}
	req := caller.Request("http", op, input)
	req.ID, req.Timeout = id, timeout
	spec, known := g.o.Catalog.Spec(op)
	if known && spec.Type == call.OpSubscription {
		g.serveSSE(ctx, w, caller, spec, req, release)
		return
	}
	req.OnStart = release // the body is the pipeline's now
	out, err := g.o.Catalog.Call(ctx, req)
	release()
	if err != nil {
		writeCallError(w, err, spec, caller, id)
		return
	}
	if r.ProtoMajor < 2 {
		// HTTP/2 bounds a stalled reader with the connection's WriteByteTimeout (write_timeout)
		// without a timer per answer; HTTP/1.1 gets the deadline here.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(g.o.WriteTimeout))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// serveSSE streams a subscription as Server-Sent Events (docs/http.md §3.6).
func (g *Gateway) serveSSE(ctx context.Context, w *statusRecorder, caller catalog.Caller, spec call.OperationSpec, req call.RootRequest, release func()) {
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 4<<10)
	// The stream ends at Shutdown (the gateway's base context) as well as when the client goes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnShutdown := context.AfterFunc(g.base, cancel)
	defer stopOnShutdown()
	wctx, wcancel := context.WithCancel(ctx)
	var keepalive sync.WaitGroup
	// The keep-alive writer ends before this handler returns: nothing writes to w after it.
	defer keepalive.Wait()
	defer wcancel()
	started := false
	var mu sync.Mutex
	// write sends one event within sse_write_timeout; a stuck reader ends the stream.
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		_ = rc.SetWriteDeadline(time.Now().Add(g.o.SSEWriteTimeout))
		if _, err := bw.Write(b); err != nil {
			cancel()
			return err
		}
		if err := bw.Flush(); err != nil {
			cancel()
			return err
		}
		if err := rc.Flush(); err != nil {
			cancel()
			return err
		}
		return nil
	}
	req.OnStart = func() {
		release()
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		if write(nil) == nil {
			keepalive.Go(func() { g.keepalive(wctx, write) })
		}
	}
	n := 0
	var line []byte
	err := g.o.Catalog.Subscribe(ctx, req, func(item json.RawMessage) error {
		line = line[:0]
		line = append(line, "id: "...)
		line = strconv.AppendInt(line, int64(n), 10)
		line = append(line, "\ndata: "...)
		line = appendCompact(line, item)
		line = append(line, "\n\n"...)
		n++
		return write(line)
	})
	wcancel()
	keepalive.Wait()
	if !started {
		release()
		if err == nil {
			err = call.NewError(call.CodeInternal, "subscription ended before it started")
		}
		writeCallError(w, err, spec, caller, req.ID)
		return
	}
	if err != nil {
		ce := asCallError(err)
		body, _ := json.Marshal(newProblem(statusOf(ce, spec, caller.Identity != nil), ce, req.ID))
		_ = write(append(append([]byte("event: error\ndata: "), body...), "\n\n"...))
		return
	}
	_ = write([]byte("event: done\ndata: {}\n\n"))
}

func (g *Gateway) keepalive(ctx context.Context, write func([]byte) error) {
	t := time.NewTicker(g.o.SSEKeepalive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if write([]byte(": keep-alive\n\n")) != nil {
				return
			}
		}
	}
}

// appendCompact appends item on one line (an SSE data field cannot hold a newline).
func appendCompact(dst []byte, item json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, item) != nil {
		return append(dst, "null"...)
	}
	return append(dst, b.Bytes()...)
}

func (g *Gateway) serveDocument(ctx context.Context, w *statusRecorder, r *http.Request, caller catalog.Caller, surface, id string) {
	doc, err := g.o.Document(ctx, caller, surface)
	if err != nil {
		writeCallError(w, err, call.OperationSpec{}, caller, id)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Authorization")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(doc)
	}
}

func (g *Gateway) serveMCP(ctx context.Context, w *statusRecorder, r *http.Request) {
	g.o.MCP.ServeHTTP(&deadlineWriter{statusRecorder: w, timeout: g.o.WriteTimeout}, r.WithContext(ctx))
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	identity string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// deadlineWriter gives every write of an /mcp answer the write deadline (docs/http.md §3.2).
type deadlineWriter struct {
	*statusRecorder
	timeout time.Duration
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	_ = http.NewResponseController(d.statusRecorder).SetWriteDeadline(time.Now().Add(d.timeout))
	return d.statusRecorder.Write(b)
}

func (d *deadlineWriter) Flush() {
	_ = http.NewResponseController(d.statusRecorder).SetWriteDeadline(time.Now().Add(d.timeout))
	d.statusRecorder.Flush()
}
