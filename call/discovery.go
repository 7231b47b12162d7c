package call

import (
	"context"
	"encoding/json"
)

// Discovery operation names.
const (
	OpServicesList   = "services/list"
	OpServicesSchema = "services/schema"
)

// DiscoveryRegistrations returns services/list and services/schema bound to the dispatcher
// that resolves d() at call time (the registry must exist before its dispatcher).
func DiscoveryRegistrations(d func() *Dispatcher) []HandlerRegistration {
	return []HandlerRegistration{
		{
			Spec: OperationSpec{
				Name: OpServicesList, Type: OpQuery, Visibility: VisibilityExternal,
				Description: "List the operations this caller may call.",
				InputSchema: json.RawMessage(`{}`),
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"operations":{"type":"array","items":{"type":"object",` +
					`"properties":{"name":{"type":"string"},"namespace":{"type":"string"},"op_type":{"type":"string"},"description":{"type":"string"}}}}}}`),
			},
			Handler: func(ctx context.Context, oc *OperationContext, _ json.RawMessage) (json.RawMessage, error) {
				type entry struct {
					Name        string        `json:"name"`
					Namespace   string        `json:"namespace"`
					OpType      OperationType `json:"op_type"`
					Description string        `json:"description,omitempty"` // an extension: absent when none (docs/protocol.md §6)
				}
				ops := []entry{}
				for _, s := range d().Visible(ctx, oc.Identity) {
					ops = append(ops, entry{s.Name, s.Namespace(), s.Type, s.Description})
				}
				return marshalNoEscape(map[string]any{"operations": ops})
			},
		},
		{
			Spec: OperationSpec{
				Name: OpServicesSchema, Type: OpQuery, Visibility: VisibilityExternal,
				Description: "Describe one operation: schemas, errors and access control.",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}}}`),
			},
			Handler: func(ctx context.Context, oc *OperationContext, in json.RawMessage) (json.RawMessage, error) {
				var req struct {
					Name *string `json:"name"`
				}
				if json.Unmarshal(in, &req) != nil || req.Name == nil {
					return nil, &Error{code: CodeInvalidInput, message: msgMissingName}
				}
				name := stripSlash(*req.Name)
				// Hidden and Internal operations answer like unknown ones.
				for _, s := range d().Visible(ctx, oc.Identity) {
					if s.Name == name {
						return s.schemaJSON()
					}
				}
				return nil, errNotFound(name)
			},
		},
	}
}
