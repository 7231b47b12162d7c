// Package openapi writes the OpenAPI 3.1 document of the operations a caller may call
// (docs/http.md §4) and imports HTTP APIs described by OpenAPI as operations (§5).
package openapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/alkdev/alknet/adapters/internal/schemadoc"
	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/call/toolname"
)

// DocOptions describe the node and surface a document is for.
type DocOptions struct {
	ServerURL   string // the servers entry
	Fingerprint string // info.x-alknet-fingerprint
	Version     string // info.version
	MTLS        bool   // the TLS route: client certificates are a security scheme
	Logger      *slog.Logger
}

const (
	dialect2020 = "https://json-schema.org/draft/2020-12/schema"
	schemasRef  = "#/components/schemas/"
)

// problemSchema is the RFC 9457 problem document every gateway error is (docs/http.md §3.5.4).
var problemSchema = map[string]any{
	"type":     "object",
	"required": []any{"type", "title", "status", "code", "message", "retryable", "request_id"},
	"properties": map[string]any{
		"type":          map[string]any{"type": "string"},
		"title":         map[string]any{"type": "string"},
		"status":        map[string]any{"type": "integer"},
		"detail":        map[string]any{"type": "string"},
		"code":          map[string]any{"type": "string"},
		"message":       map[string]any{"type": "string"},
		"retryable":     map[string]any{"type": "boolean"},
		"details":       map[string]any{},
		"original_code": map[string]any{"type": "string"},
		"request_id":    map[string]any{"type": "string"},
	},
}

// Document returns the canonical bytes of the OpenAPI 3.1 document of specs, each operation
// named by names (docs/http.md §4). An operation the map cannot name is left out (warning).
func Document(specs []call.OperationSpec, names *toolname.Map, o DocOptions) ([]byte, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	schemas := map[string]any{"Problem": problemSchema}
	paths := map[string]any{}
	problemContent := map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": schemasRef + "Problem"}}}
	for _, spec := range specs {
		opID, ok := names.Name(spec.Name, nil)
		if !ok {
			log.Warn("openapi: operation left out: no free name", "op", spec.Name)
			continue
		}
		d := opDoc{spec: spec, id: opID, schemas: schemas, log: log, problem: problemContent, mtls: o.MTLS}
		paths[opPath(spec.Name)] = map[string]any{"post": d.operation()}
	}
	security := map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer",
		"description": "An alknet API key (alk_…) or peer token."}}
	if o.MTLS {
		security["mtls"] = map[string]any{"type": "mutualTLS", "description": "A client certificate whose fingerprint is a configured peer."}
	}
	info := map[string]any{"title": "alknet", "version": orDefault(o.Version, "dev")}
	if o.Fingerprint != "" {
		info["x-alknet-fingerprint"] = o.Fingerprint
	}
	doc := map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": dialect2020,
		"info":              info,
		"paths":             paths,
		"components": map[string]any{
			"schemas":         schemas,
			"responses":       map[string]any{"Problem": map[string]any{"description": "An error (RFC 9457 problem document).", "content": problemContent}},
			"securitySchemes": security,
		},
	}
	if o.ServerURL != "" {
		doc["servers"] = []any{map[string]any{"url": o.ServerURL}}
	}
	out, err := schemadoc.Canonical(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return append(out, '\n'), nil
}

// opPath is /ops/<name>, each segment percent-encoded as needed.
func opPath(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/ops/" + strings.Join(segs, "/")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// opDoc builds one operation object.
type opDoc struct {
	spec    call.OperationSpec
	id      string
	schemas map[string]any
	log     *slog.Logger
	problem map[string]any
	mtls    bool
}

func (d opDoc) operation() map[string]any {
	spec := d.spec
	desc := spec.Description
	if desc == "" {
		desc = fmt.Sprintf("%s (%s)", spec.Name, spec.Type)
	}
	summary, _, _ := strings.Cut(desc, "\n")
	if len(summary) > 120 {
		summary = truncateUTF8(summary, 117) + "…"
	}
	op := map[string]any{
		"operationId":      d.id,
		"summary":          summary,
		"description":      desc,
		"x-alknet-name":    spec.Name,
		"x-alknet-op-type": string(spec.Type),
		"parameters": []any{map[string]any{
			"name": "Alknet-Timeout-Ms", "in": "header", "required": false,
			"description": "The caller's budget in milliseconds.",
			"schema":      map[string]any{"type": "integer", "minimum": 1, "maximum": 2147483647},
		}},
	}
	in, empty := d.schema(spec.InputSchema, d.id+".Input")
	body := map[string]any{"required": !empty, "content": map[string]any{"application/json": map[string]any{"schema": in}}}
	op["requestBody"] = body
	out, _ := d.schema(spec.OutputSchema, d.id+".Output")
	responses := map[string]any{
		"400":     map[string]any{"description": "Invalid input.", "content": d.problem},
		"default": map[string]any{"$ref": "#/components/responses/Problem"},
	}
	if spec.Type == call.OpSubscription {
		// The item schema is named, not referenced: a $ref inside an extension is not
		// resolved by OpenAPI tools (redocly: spec-strict-refs).
		responses["200"] = map[string]any{"description": "Server-Sent Events: one data line per item, then event: done or event: error.",
			"content": map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string"}, "x-alknet-item-schema": out["$ref"]}}}
	} else {
		responses["200"] = map[string]any{"description": "The operation's output.", "content": map[string]any{"application/json": map[string]any{"schema": out}}}
	}
	security := []any{map[string]any{"bearer": []any{}}}
	if d.mtls {
		security = append(security, map[string]any{"mtls": []any{}})
	}
	if spec.AccessControl.IsEmpty() {
		security = append([]any{map[string]any{}}, security...)
	} else {
		responses["401"] = map[string]any{"description": "No or an unknown credential.", "content": d.problem}
		responses["403"] = map[string]any{"description": "Not allowed.", "content": d.problem}
	}
	op["security"] = security
	var codes []any
	byStatus := map[string][]any{}
	for _, e := range spec.ErrorSchemas {
		codes = append(codes, e.Code)
		status := "422"
		if e.HTTPStatus != nil && *e.HTTPStatus >= 400 && *e.HTTPStatus <= 599 {
			status = fmt.Sprint(*e.HTTPStatus)
		}
		name := d.id + ".Error." + schemadoc.Sanitize(e.Code)
		details, _ := d.schema(e.Schema, name+".Details")
		d.schemas[name] = map[string]any{"type": "object", "properties": map[string]any{
			"code": map[string]any{"const": e.Code}, "details": details}}
		byStatus[status] = append(byStatus[status], map[string]any{"allOf": []any{
			map[string]any{"$ref": schemasRef + "Problem"}, map[string]any{"$ref": schemasRef + name}}})
	}
	for status, alts := range byStatus {
		schema := alts[0]
		if len(alts) > 1 {
			schema = map[string]any{"oneOf": alts}
		}
		responses[status] = map[string]any{"description": "A declared error.",
			"content": map[string]any{"application/problem+json": map[string]any{"schema": schema}}}
	}
	if codes != nil {
		op["x-alknet-errors"] = codes
	}
	op["responses"] = responses
	return op
}

// schema publishes raw under components/schemas/name and returns a reference to it; empty
// reports an absent, true or {} schema (a body is then not required).
func (d opDoc) schema(raw []byte, name string) (ref map[string]any, empty bool) {
	v, err := schemadoc.Decode(raw)
	if err != nil {
		d.omit(name, "invalid JSON")
		return map[string]any{"$ref": schemasRef + name}, true
	}
	if v == nil || v == true {
		v = map[string]any{}
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		empty = true
	}
	t, err := schemadoc.Translate(v)
	if err == nil {
		t, err = schemadoc.Relocate(t, name, schemasRef, d.schemas)
	}
	switch {
	case errors.Is(err, schemadoc.ErrOmitted):
		d.omit(name, err.Error())
	case err != nil:
		d.omit(name, "cannot be published")
	default:
		if b, isBool := t.(bool); isBool && !b {
			t = map[string]any{"not": map[string]any{}}
		}
		d.schemas[name] = t
	}
	return map[string]any{"$ref": schemasRef + name}, empty
}

func (d opDoc) omit(name, reason string) {
	d.log.Warn("openapi: schema shown as {}", "schema", name, "reason", reason)
	d.schemas[name] = map[string]any{"x-alknet-schema-omitted": reason}
}

func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
