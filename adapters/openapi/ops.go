package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/alkdev/alknet/adapters/internal/schemadoc"
	"github.com/alkdev/alknet/call"
)

// param is one input property sent as a path, query or header value.
type param struct {
	name, in  string
	style     string
	explode   bool
	required  bool
	primitive bool
}

// importedOp is one operation to register and how to send it.
type importedOp struct {
	name        string // local name
	method      string
	path        string // the template, e.g. /pets/{id}
	params      []param
	hasBody     bool
	spec        call.OperationSpec
	credential  string // the capability it needs ("": none)
	authKind    string // "bearer", "header", "query"
	authName    string // the header or query name of an apiKey
	documented  map[int]bool
	outputKinds map[string]bool
}

type skippedOp struct{ op, reason string }

// Headers never inputs (docs/http.md §5.4): the client or the transport owns them.
var reservedHeaders = map[string]bool{"authorization": true, "cookie": true, "host": true, "content-length": true,
	"transfer-encoding": true, "te": true, "connection": true, "keep-alive": true, "upgrade": true, "expect": true,
	"trailer": true, "content-type": true, "accept": true, "user-agent": true}

var methods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete}

// buildOperations turns every supported operation of doc into an importedOp (docs/http.md
// §5.3–§5.6). Operations it cannot import are returned as skipped.
func buildOperations(doc *openapi3.T, cfg ImportConfig) ([]importedOp, []skippedOp, error) {
	conv, err := newSchemaConverter(doc)
	if err != nil {
		return nil, nil, err
	}
	var ops []importedOp
	var skipped []skippedOp
	seen := map[string]string{}
	paths := doc.Paths.Map()
	for _, path := range sortedKeys(paths) {
		item := paths[path]
		for _, method := range methods {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			id := op.OperationID
			if id == "" {
				id = strings.ToLower(method) + "_" + path
			}
			name := cfg.Prefix + "/" + schemadoc.Sanitize(id)
			remote := id
			if len(cfg.Include) > 0 && !matches(remote, cfg.Include) || matches(remote, cfg.Exclude) {
				continue
			}
			if prev, dup := seen[name]; dup {
				return nil, nil, fmt.Errorf("%s %s and %s both import as %s", method, path, prev, name)
			}
			seen[name] = method + " " + path
			io, reason := buildOperation(doc, conv, cfg, name, method, path, item, op)
			if reason != "" {
				skipped = append(skipped, skippedOp{name, reason})
				continue
			}
			ops = append(ops, io)
		}
	}
	return ops, skipped, nil
}

func buildOperation(doc *openapi3.T, conv *schemaConverter, cfg ImportConfig, name, method, path string, item *openapi3.PathItem, op *openapi3.Operation) (importedOp, string) {
	io := importedOp{name: name, method: method, path: path, documented: map[int]bool{}, outputKinds: map[string]bool{}}
	cred, kind, authName, reason := security(doc, op, cfg)
	if reason != "" {
		return io, reason
	}
	io.credential, io.authKind, io.authName = cred, kind, authName
	props := map[string]any{}
	defs := map[string]any{} // components the inputs reference, at the input's root
	var required []any
	params := append(openapi3.Parameters{}, item.Parameters...)
	for _, p := range op.Parameters { // an operation's parameter replaces the path item's of the same name and place
		params = append(params, p)
	}
	byKey := map[string]*openapi3.Parameter{}
	var order []string
	for _, pr := range params {
		if pr == nil || pr.Value == nil {
			continue
		}
		k := pr.Value.In + ":" + pr.Value.Name
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = pr.Value
	}
	for _, k := range order {
		p := byKey[k]
		lname := strings.ToLower(p.Name)
		if p.In == openapi3.ParameterInHeader && (reservedHeaders[lname] || (kind == "header" && strings.EqualFold(p.Name, authName))) {
			continue
		}
		if p.In == openapi3.ParameterInQuery && kind == "query" && p.Name == authName {
			continue
		}
		if p.In == openapi3.ParameterInCookie {
			if p.Required {
				return io, fmt.Sprintf("required cookie parameter %q", p.Name)
			}
			continue
		}
		if _, dup := props[p.Name]; dup || p.Name == "body" {
			return io, fmt.Sprintf("parameter name %q used twice or reserved", p.Name)
		}
		if p.Content != nil {
			return io, fmt.Sprintf("parameter %q has content instead of a schema", p.Name)
		}
		style := p.Style
		if style == "" {
			style = map[string]string{"path": "simple", "header": "simple", "query": "form"}[p.In]
		}
		switch {
		case (p.In == "path" || p.In == "header") && style != "simple",
			p.In == "query" && style != "form" && style != "deepObject":
			return io, fmt.Sprintf("parameter %q: style %q is not supported", p.Name, style)
		}
		s, err := conv.schema(p.Schema)
		if err != nil {
			return io, fmt.Sprintf("parameter %q: %v", p.Name, err)
		}
		primitive := isPrimitive(s)
		if p.In == "path" && !primitive {
			return io, fmt.Sprintf("path parameter %q is not a primitive", p.Name)
		}
		explode := style == "form"
		if p.Explode != nil {
			explode = *p.Explode
		}
		props[p.Name] = hoistDefs(s, defs)
		if p.Required || p.In == "path" {
			required = append(required, p.Name)
		}
		io.params = append(io.params, param{name: p.Name, in: p.In, style: style, explode: explode, required: p.Required || p.In == "path", primitive: primitive})
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		mt := jsonMedia(rb.Value.Content)
		switch {
		case mt != nil:
			s, err := conv.schema(mt.Schema)
			if err != nil {
				return io, fmt.Sprintf("request body: %v", err)
			}
			props["body"] = hoistDefs(s, defs)
			io.hasBody = true
			if rb.Value.Required {
				required = append(required, "body")
			}
		case rb.Value.Required:
			return io, "the request body is required and not JSON"
		}
	}
	input := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		input["required"] = required
	}
	if len(defs) > 0 {
		input["$defs"] = defs
	}
	output, sseOnly, err := outputSchema(conv, op, &io)
	if err != nil {
		return io, err.Error()
	}
	if sseOnly {
		return io, "answers only text/event-stream"
	}
	opType := call.OpMutation
	if method == http.MethodGet {
		opType = call.OpQuery
	}
	desc := strings.TrimSpace(op.Summary)
	if d := strings.TrimSpace(op.Description); d != "" {
		if desc != "" {
			desc += "\n\n"
		}
		desc += d
	}
	if desc == "" {
		desc = method + " " + path
	}
	inRaw, _ := schemadoc.Canonical(input)
	outRaw, _ := schemadoc.Canonical(output)
	io.spec = call.OperationSpec{Name: name, Description: desc, Type: opType, Visibility: cfg.Visibility,
		InputSchema: inRaw, OutputSchema: outRaw, ErrorSchemas: errorSchemas(io, method)}
	if len(cfg.RequiredScopes) > 0 {
		io.spec.AccessControl.RequiredScopes = append([]string(nil), cfg.RequiredScopes...)
	}
	return io, ""
}

// jsonMedia returns the application/json (or */*+json) entry of content.
func jsonMedia(c openapi3.Content) *openapi3.MediaType {
	for _, k := range sortedKeys(c) {
		mt := strings.ToLower(strings.TrimSpace(strings.Split(k, ";")[0]))
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return c[k]
		}
	}
	return nil
}

func isPrimitive(s any) bool {
	m, _ := s.(map[string]any)
	switch t := m["type"].(type) {
	case string:
		return t == "string" || t == "integer" || t == "number" || t == "boolean"
	case []any:
		for _, x := range t {
			if x != "string" && x != "integer" && x != "number" && x != "boolean" && x != "null" {
				return false
			}
		}
		return len(t) > 0
	}
	return false
}

// outputSchema is the lowest 2xx JSON schema (anyOf when 2xx answers differ), null for
// 204 or none, string for text/*, a base64 string otherwise (docs/http.md §5.5).
func outputSchema(conv *schemaConverter, op *openapi3.Operation, io *importedOp) (any, bool, error) {
	var alts []any
	seen := map[string]bool{}
	sseOnly, any2xx := true, false
	responses := op.Responses.Map()
	for _, code := range sortedKeys(responses) {
		var status int
		if _, err := fmt.Sscanf(code, "%d", &status); err == nil {
			io.documented[status] = true
		}
		if !strings.HasPrefix(code, "2") {
			continue
		}
		any2xx = true
		r := responses[code]
		if r == nil || r.Value == nil || len(r.Value.Content) == 0 {
			sseOnly = false
			alts = appendAlt(alts, seen, map[string]any{"type": "null"})
			continue
		}
		for _, ct := range sortedKeys(r.Value.Content) {
			mt := strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
			if mt == "text/event-stream" {
				continue
			}
			sseOnly = false
			switch {
			case mt == "application/json" || strings.HasSuffix(mt, "+json"):
				s, err := conv.schema(r.Value.Content[ct].Schema)
				if err != nil {
					return nil, false, fmt.Errorf("response %s: %v", code, err)
				}
				alts = appendAlt(alts, seen, s)
			case strings.HasPrefix(mt, "text/"):
				alts = appendAlt(alts, seen, map[string]any{"type": "string"})
			default:
				alts = appendAlt(alts, seen, map[string]any{"type": "string", "contentEncoding": "base64"})
			}
		}
	}
	if !any2xx {
		return map[string]any{}, false, nil
	}
	if sseOnly {
		return nil, true, nil
	}
	switch len(alts) {
	case 0:
		return map[string]any{"type": "null"}, false, nil
	case 1:
		return alts[0], false, nil
	}
	// Definitions move to the top: each alternative's $defs are the same components.
	defs := map[string]any{}
	for i, a := range alts {
		alts[i] = hoistDefs(a, defs)
	}
	out := map[string]any{"anyOf": alts}
	if len(defs) > 0 {
		out["$defs"] = defs
	}
	return out, false, nil
}

// hoistDefs moves s's $defs (components, named alike everywhere) into defs and returns s
// without them: the references "#/$defs/<name>" then resolve from the enclosing root.
func hoistDefs(s any, defs map[string]any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	d, ok := m["$defs"].(map[string]any)
	if !ok {
		return s
	}
	for k, v := range d {
		defs[k] = v
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != "$defs" {
			out[k] = v
		}
	}
	return out
}

func appendAlt(alts []any, seen map[string]bool, s any) []any {
	b, _ := json.Marshal(s)
	if seen[string(b)] {
		return alts
	}
	seen[string(b)] = true
	return append(alts, s)
}

// errorCodes every import declares besides HTTP_<documented status> (docs/http.md §5.8).
var declaredStatuses = []int{400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 501, 502, 503, 504}

const (
	codeTransport   = "HTTP_TRANSPORT_ERROR"
	codeTooLarge    = "HTTP_RESPONSE_TOO_LARGE"
	codeInvalidResp = "HTTP_INVALID_RESPONSE"
)

var statusDetails = json.RawMessage(`{"type":"object","properties":{"status":{"type":"integer"},"content_type":{"type":"string"},"body":{}},"required":["status"]}`)

func errorSchemas(io importedOp, method string) []call.ErrorDefinition {
	statuses := map[int]bool{}
	for s := range io.documented {
		if s >= 400 && s <= 599 {
			statuses[s] = true
		}
	}
	for _, s := range declaredStatuses {
		statuses[s] = true
	}
	var codes []int
	for s := range statuses {
		codes = append(codes, s)
	}
	sort.Ints(codes)
	var out []call.ErrorDefinition
	for _, s := range codes {
		hs := s
		if s == 401 || s == 403 {
			hs = http.StatusBadGateway // the node's credential was refused: not the caller's fault
		}
		out = append(out, call.ErrorDefinition{Code: fmt.Sprintf("HTTP_%d", s), Description: fmt.Sprintf("the API answered %d", s),
			Schema: statusDetails, HTTPStatus: &hs})
	}
	bad := http.StatusBadGateway
	out = append(out,
		call.ErrorDefinition{Code: codeTransport, Description: "the API could not be reached", HTTPStatus: &bad},
		call.ErrorDefinition{Code: codeTooLarge, Description: "the API's answer is larger than max_response_bytes", HTTPStatus: &bad},
		call.ErrorDefinition{Code: codeInvalidResp, Description: "the API's answer does not match its content type", HTTPStatus: &bad})
	return out
}

// security picks the first satisfiable security requirement (docs/http.md §5.6): bearer from
// http_token:<service>, an apiKey header from api_key:<service>, an apiKey query parameter
// only with allow_query_credentials.
func security(doc *openapi3.T, op *openapi3.Operation, cfg ImportConfig) (credential, kind, name, reason string) {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	if len(reqs) == 0 {
		return "", "", "", ""
	}
	var schemes openapi3.SecuritySchemes
	if doc.Components != nil {
		schemes = doc.Components.SecuritySchemes
	}
	for _, req := range reqs {
		if len(req) == 0 {
			return "", "", "", "" // {}: no credential needed
		}
		if len(req) > 1 {
			continue // two schemes at once: not supported
		}
		for schemeName := range req {
			ref := schemes[schemeName]
			if ref == nil || ref.Value == nil {
				continue
			}
			s := ref.Value
			switch {
			case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
				return TokenCapability(cfg.Service), "bearer", "", ""
			case s.Type == "apiKey" && s.In == "header":
				return APIKeyCapability(cfg.Service), "header", s.Name, ""
			case s.Type == "apiKey" && s.In == "query" && cfg.AllowQueryCredentials:
				return APIKeyCapability(cfg.Service), "query", s.Name, ""
			}
		}
	}
	return "", "", "", "no supported security scheme (http bearer, or an apiKey header)"
}
