// Package mcp projects a node's operations as MCP tools (to_mcp: docs/mcp.md §6) and imports
// the tools of MCP servers as operations (from_mcp: §7), over the MCP Go SDK.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/alkdev/alknet/adapters/catalog"
	"github.com/alkdev/alknet/adapters/gateway"
	"github.com/alkdev/alknet/adapters/internal/schemadoc"
	"github.com/alkdev/alknet/call"
)

// Protocol versions the projection speaks, newest first (docs/mcp.md §6.1.1).
var protocolVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}

// toolDef is one operation as a tool: the tool, and how its arguments become the input.
type toolDef struct {
	tool    *sdk.Tool
	op      string
	wrapped bool   // the input is the "input" argument (a non-object input schema)
	digest  string // what the tool says, to diff on catalogue changes
}

// buildTool returns spec as a tool named name (docs/mcp.md §6.1).
func buildTool(spec call.OperationSpec, name string, log *slog.Logger) toolDef {
	desc := spec.Description
	if desc == "" {
		desc = fmt.Sprintf("%s (%s)", spec.Name, spec.Type)
	}
	t := &sdk.Tool{Name: name, Description: desc, Meta: sdk.Meta{"alknet/op": spec.Name}}
	if spec.Type == call.OpQuery {
		t.Annotations = &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true}
	}
	d := toolDef{tool: t, op: spec.Name}
	in, err := publish(spec.InputSchema)
	switch {
	case err != nil:
		log.Warn("mcp: input schema shown as an object", "op", spec.Name, "reason", err.Error())
		t.InputSchema = map[string]any{"type": "object", "x-alknet-schema-omitted": err.Error()}
	case isEmptySchema(in):
		t.InputSchema = map[string]any{"type": "object"}
	case topType(in) == "object":
		t.InputSchema = in
	default:
		defs := map[string]any{}
		root, rerr := schemadoc.Relocate(in, "input", "#/$defs/", defs)
		if rerr != nil {
			t.InputSchema = map[string]any{"type": "object", "x-alknet-schema-omitted": rerr.Error()}
			break
		}
		wrapper := map[string]any{"type": "object", "properties": map[string]any{"input": root},
			"required": []any{"input"}, "additionalProperties": false}
		if len(defs) > 0 {
			defs["input"] = root
			wrapper["properties"] = map[string]any{"input": map[string]any{"$ref": "#/$defs/input"}}
			wrapper["$defs"] = defs
		}
		t.InputSchema, d.wrapped = wrapper, true
	}
	if out, err := publish(spec.OutputSchema); err == nil && topType(out) == "object" {
		t.OutputSchema = out
	}
	b, _ := schemadoc.Canonical(map[string]any{"t": t, "w": d.wrapped})
	d.digest = string(b)
	return d
}

// publish is a schema as the projections publish it: 2020-12, no $schema (docs/http.md §2.5.3).
func publish(raw json.RawMessage) (any, error) {
	v, err := schemadoc.Decode(raw)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return map[string]any{}, nil
	}
	return schemadoc.Translate(v)
}

func isEmptySchema(s any) bool {
	if b, ok := s.(bool); ok {
		return b
	}
	m, ok := s.(map[string]any)
	return ok && len(m) == 0
}

func topType(s any) string {
	m, _ := s.(map[string]any)
	t, _ := m["type"].(string)
	return t
}

// excluded reports an operation [mcp] exclude leaves out: a name, or "ns/*" for a namespace.
func excluded(op string, exclude []string) bool {
	for _, e := range exclude {
		if e == op || strings.HasSuffix(e, "/*") && strings.HasPrefix(op, strings.TrimSuffix(e, "*")) {
			return true
		}
	}
	return false
}

// callerFunc returns the caller a tool call runs as (the session's latest resolved identity).
type callerFunc func(req *sdk.CallToolRequest) catalog.Caller

// handler calls the tool's operation (docs/mcp.md §6.1.4).
func (p *Projection) toolHandler(d toolDef, caller callerFunc) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (res *sdk.CallToolResult, err error) {
		defer func() {
			if r := recover(); r != nil {
				p.o.Logger.Error("mcp: tool handler panicked", "op", d.op, "panic", fmt.Sprint(r))
				res, err = errorResult(call.NewError(call.CodeInternal, "internal error")), nil
			}
		}()
		rel, ok := p.inFlight(req)
		if !ok {
			return errorResult(call.NewError(call.CodeInternal, "too many in-flight requests").WithRetryable(true)), nil
		}
		defer rel()
		input := json.RawMessage(req.Params.Arguments)
		if len(bytes.TrimSpace(input)) == 0 || string(input) == "null" {
			input = json.RawMessage(`{}`)
		}
		if d.wrapped {
			var args map[string]json.RawMessage
			if json.Unmarshal(input, &args) != nil {
				return errorResult(call.NewError(call.CodeInvalidInput, "arguments must be an object")), nil
			}
			input = args["input"]
			if input == nil {
				return errorResult(call.NewError(call.CodeInvalidInput, `missing argument "input"`)), nil
			}
		}
		r := caller(req).Request("mcp", d.op, input)
		if req.Extra != nil && req.Extra.Header != nil {
			if v := req.Extra.Header.Get(gateway.TimeoutHeader); v != "" {
				timeout, ok := gateway.ParseTimeout(v)
				if !ok {
					return errorResult(call.NewError(call.CodeInvalidInput, gateway.TimeoutHeader+" must be 1 to 2147483647 milliseconds")), nil
				}
				r.Timeout = timeout
			}
		}
		out, cerr := p.o.Catalog.Call(ctx, r)
		if cerr != nil {
			var ce *call.Error
			if !errors.As(cerr, &ce) {
				ce = call.NewError(call.CodeInternal, "internal error")
			}
			return errorResult(ce), nil
		}
		var compact bytes.Buffer
		if json.Compact(&compact, out) != nil {
			compact.Write(out)
		}
		result := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: compact.String()}}}
		if bytes.HasPrefix(bytes.TrimSpace(out), []byte("{")) {
			result.StructuredContent = json.RawMessage(compact.Bytes())
		}
		return result, nil
	}
}

// errorResult is a call error as a tool error: "<CODE>: <message>", the body in _meta.
func errorResult(ce *call.Error) *sdk.CallToolResult {
	body, _ := json.Marshal(ce)
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: ce.Code() + ": " + ce.Message()}},
		Meta: sdk.Meta{"alknet/error": json.RawMessage(body)}}
}

// sessionCounter counts a session's tool calls in flight.
type sessionCounter struct{ n atomic.Int64 }
