package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/alkdev/alknet/call"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// defaultOutput is the output of a tool without an outputSchema (docs/mcp.md §7.3).
var defaultOutput = json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"content":{"type":"array"},"structured":{}},"required":["text","content"]}`)

var errorDetails = json.RawMessage(`{"type":"object"}`)

// declaredErrors are declared on every imported tool (docs/mcp.md §7.5).
func declaredErrors() []call.ErrorDefinition {
	s502, s503 := 502, 503
	return []call.ErrorDefinition{
		{Code: CodeToolError, Description: "the tool reported an error", Schema: errorDetails, HTTPStatus: &s502},
		{Code: CodeProtocolError, Description: "the MCP server answered with a JSON-RPC error", Schema: errorDetails, HTTPStatus: &s502},
		{Code: CodeUnavailable, Description: "the MCP server is not connected (retry later)", HTTPStatus: &s503},
		{Code: CodeTooLarge, Description: "the tool's result is larger than max_result_bytes", HTTPStatus: &s502},
	}
}

// registrations turns the first session's tools into operations (docs/mcp.md §7.3).
func (im *Imported) registrations(tools []*sdk.Tool) []call.HandlerRegistration {
	cfg := im.cfg
	var regs []call.HandlerRegistration
	for _, t := range tools {
		if !toolNameRE.MatchString(t.Name) {
			im.log.Warn("mcp import: tool skipped: its name has characters outside [A-Za-z0-9._-]", "tool", t.Name)
			continue
		}
		if len(cfg.Include) > 0 && !slices.Contains(cfg.Include, t.Name) || slices.Contains(cfg.Exclude, t.Name) {
			continue
		}
		// Annotations are the server's word, not a guarantee: queries, when given, decide.
		opType := call.OpMutation
		if cfg.Queries != nil && slices.Contains(cfg.Queries, t.Name) || cfg.Queries == nil && t.Annotations != nil && t.Annotations.ReadOnlyHint {
			opType = call.OpQuery
		}
		in, err := json.Marshal(t.InputSchema)
		if err != nil || string(in) == "null" {
			in = json.RawMessage(`{"type":"object"}`)
		}
		outSchema, structured := defaultOutput, false
		if t.OutputSchema != nil {
			if b, err := json.Marshal(t.OutputSchema); err == nil && string(b) != "null" {
				outSchema, structured = b, true
			}
		}
		spec := call.OperationSpec{Name: cfg.Prefix + "/" + t.Name, Description: t.Description, Type: opType, Visibility: cfg.Visibility,
			InputSchema: in, OutputSchema: outSchema, ErrorSchemas: declaredErrors()}
		if len(cfg.RequiredScopes) > 0 {
			spec.AccessControl.RequiredScopes = append([]string(nil), cfg.RequiredScopes...)
		}
		hr := call.HandlerRegistration{Spec: spec, Provenance: call.ProvenanceFromMCP, Handler: im.handler(t.Name, structured)}
		if _, err := call.NewRegistration(hr); err != nil {
			im.log.Warn("mcp import: tool skipped", "tool", t.Name, "reason", err.Error())
			continue
		}
		regs = append(regs, hr)
	}
	return regs
}

// handler calls one tool (docs/mcp.md §7.4–§7.6): under the handler's context (a cancel sends
// notifications/cancelled), at most MaxConcurrent at once, within the import's timeout.
func (im *Imported) handler(tool string, structured bool) call.Handler {
	return func(ctx context.Context, _ *call.OperationContext, in json.RawMessage) (json.RawMessage, error) {
		im.mu.Lock()
		s, has := im.session, im.tools[tool]
		im.mu.Unlock()
		if s == nil {
			return nil, call.NewError(CodeUnavailable, "the MCP server is not connected").WithRetryable(true)
		}
		if !has {
			return nil, call.NewError(CodeUnavailable, "the MCP server no longer has this tool").WithRetryable(false)
		}
		select {
		case im.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-im.sem }()
		cctx, cancel := context.WithTimeout(ctx, im.cfg.Timeout)
		defer cancel()
		res, err := s.CallTool(cctx, &sdk.CallToolParams{Name: tool, Arguments: in})
		if err != nil {
			return nil, im.callError(ctx, cctx, err)
		}
		return im.result(res, structured)
	}
}

// callError maps a failed tools/call (docs/mcp.md §7.5).
func (im *Imported) callError(ctx, cctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return call.NewError(call.CodeTimeout, "the MCP server timed out").WithRetryable(true)
	}
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		if we.Code == -32602 {
			return call.NewError(call.CodeInvalidInput, im.red.String(we.Message))
		}
		d, _ := json.Marshal(map[string]any{"jsonrpc_code": we.Code, "message": im.red.String(we.Message)})
		return call.NewError(CodeProtocolError, "the MCP server answered with an error").WithDetails(d)
	}
	if errors.Is(err, sdk.ErrConnectionClosed) {
		return call.NewError(CodeUnavailable, "the MCP server is not connected").WithRetryable(true)
	}
	return call.NewError(CodeUnavailable, "the MCP server could not be reached").WithRetryable(true)
}

// result is a tool's result as the operation's output (docs/mcp.md §7.4), redacted.
func (im *Imported) result(res *sdk.CallToolResult, structured bool) (json.RawMessage, error) {
	content, err := json.Marshal(res.Content)
	if err != nil {
		return nil, call.NewError(CodeProtocolError, "the tool's content could not be encoded")
	}
	if int64(len(content)) > im.cfg.MaxResultBytes {
		return nil, call.NewError(CodeTooLarge, "the tool's result is larger than max_result_bytes")
	}
	content = im.red.Bytes(content)
	if res.IsError {
		first := ""
		for _, c := range res.Content {
			if tc, ok := c.(*sdk.TextContent); ok {
				first = tc.Text
				break
			}
		}
		if len(first) > maxToolErrorText {
			first = first[:maxToolErrorText]
		}
		d, _ := json.Marshal(map[string]any{"content": json.RawMessage(content)})
		msg := im.red.String(strings.ToValidUTF8(first, ""))
		if msg == "" {
			msg = "the tool reported an error"
		}
		return nil, call.NewError(CodeToolError, msg).WithDetails(d)
	}
	var sc json.RawMessage
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return nil, call.NewError(CodeProtocolError, "the tool's structured content could not be encoded")
		}
		if int64(len(b)+len(content)) > im.cfg.MaxResultBytes {
			return nil, call.NewError(CodeTooLarge, "the tool's result is larger than max_result_bytes")
		}
		sc = im.red.Bytes(b)
	}
	if structured {
		if sc == nil {
			return nil, call.NewError(CodeProtocolError, "the tool has an output schema but returned no structured content")
		}
		return sc, nil
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	out := map[string]any{"text": im.red.String(strings.Join(texts, "\n")), "content": json.RawMessage(content)}
	if sc != nil {
		out["structured"] = sc
	}
	return json.Marshal(out)
}
