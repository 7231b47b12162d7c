// Command mcpserver is a small MCP server on stdio for the from_mcp tests (docs/mcp.md §7):
// built by the tests, run as a child in its own process group.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func text(s string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
}

func args(req *sdk.CallToolRequest) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(req.Params.Arguments, &m)
	return m
}

func main() {
	s := sdk.NewServer(&sdk.Implementation{Name: "mcpserver", Version: "1"}, nil)
	obj := func(props string, required ...string) json.RawMessage {
		if required == nil {
			required = []string{}
		}
		r, _ := json.Marshal(required)
		return json.RawMessage(`{"type":"object","properties":` + props + `,"required":` + string(r) + `}`)
	}
	s.AddTool(&sdk.Tool{Name: "get-sum", Description: "Add a and b.", InputSchema: obj(`{"a":{"type":"number"},"b":{"type":"number"}}`, "a", "b"),
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		a := args(req)
		return text(fmt.Sprintf("The sum of %v and %v is %v.", a["a"], a["b"], a["a"].(float64)+a["b"].(float64))), nil
	})
	s.AddTool(&sdk.Tool{Name: "double", InputSchema: obj(`{"n":{"type":"number"}}`, "n"),
		OutputSchema: obj(`{"double":{"type":"number"}}`, "double")}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		n := args(req)["n"].(float64)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprint(2 * n)}}, StructuredContent: map[string]any{"double": 2 * n}}, nil
	})
	s.AddTool(&sdk.Tool{Name: "get-env", Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}, InputSchema: obj(`{"name":{"type":"string"}}`, "name")},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return text(os.Getenv(args(req)["name"].(string))), nil
		})
	s.AddTool(&sdk.Tool{Name: "stderr", InputSchema: obj(`{"text":{"type":"string"}}`, "text")},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			fmt.Fprintln(os.Stderr, args(req)["text"])
			return text("ok"), nil
		})
	s.AddTool(&sdk.Tool{Name: "fail", InputSchema: obj(`{}`)}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "boom: " + os.Getenv("SECRET_KEY")}}}, nil
	})
	s.AddTool(&sdk.Tool{Name: "pid", InputSchema: obj(`{}`)}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return text(fmt.Sprint(os.Getpid())), nil
	})
	s.AddTool(&sdk.Tool{Name: "bad name", InputSchema: obj(`{}`)}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return text("never"), nil
	})
	// A grandchild in the same process group: Close must end it too.
	if os.Getenv("SPAWN_SLEEPER") != "" {
		c := exec.Command("sleep", "300")
		_ = c.Start()
	}
	if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
		log.Print(err)
	}
}
