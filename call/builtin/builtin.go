// Package builtin holds the operations every node registers: node/info and node/health
// (`alknet ls` on any node).
package builtin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/alkdev/alknet/call"
)

// Names of the built-in operations.
const (
	Info   = "node/info"
	Health = "node/health"
)

// NodeInfo is what node/info reports.
type NodeInfo struct {
	Fingerprint string
	Version     string
	Started     time.Time
	ALPNs       []string
	Operations  func() int // the registry size, known once it is built
}

// Registrations returns node/info and node/health.
func Registrations(info NodeInfo) []call.HandlerRegistration {
	empty := json.RawMessage(`{"type":"object","additionalProperties":false}`)
	return []call.HandlerRegistration{
		{
			Spec: call.OperationSpec{
				Name: Info, Type: call.OpQuery, Visibility: call.VisibilityExternal,
				Description: "Describe this node.",
				InputSchema: empty,
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"fingerprint":{"type":"string"},"version":{"type":"string"},` +
					`"uptime_ms":{"type":"integer"},"alpns":{"type":"array","items":{"type":"string"}},"operations":{"type":"integer"}},` +
					`"required":["fingerprint","version","uptime_ms","alpns","operations"],"additionalProperties":false}`),
			},
			Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
				n := 0
				if info.Operations != nil {
					n = info.Operations()
				}
				alpns := info.ALPNs
				if alpns == nil {
					alpns = []string{}
				}
				return json.Marshal(map[string]any{
					"fingerprint": info.Fingerprint, "version": info.Version,
					"uptime_ms": time.Since(info.Started).Milliseconds(), "alpns": alpns, "operations": n,
				})
			},
		},
		{
			Spec: call.OperationSpec{
				Name: Health, Type: call.OpQuery, Visibility: call.VisibilityExternal,
				Description:  "Report that the node is serving.",
				InputSchema:  empty,
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"status":{"const":"ok"}},"required":["status"],"additionalProperties":false}`),
			},
			Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{"status":"ok"}`), nil
			},
		},
	}
}
