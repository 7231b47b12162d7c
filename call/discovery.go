package call

import (
	"context"
	"encoding/json"
)

// Discovery operation names.
const (
	OpServicesList      = "services/list"
	OpServicesSchema    = "services/schema"
	OpServicesListPeers = "services/list-peers"
)

// listEntry is one operation of services/list and services/list-peers.
type listEntry struct {
	Name        string        `json:"name"`
	Namespace   string        `json:"namespace"`
	OpType      OperationType `json:"op_type"`
	Via         []string      `json:"via,omitempty"`         // imports only: the nodes behind it, nearest first
	Description string        `json:"description,omitempty"` // an extension: absent when none (docs/protocol.md §6)
}

func entryOf(r *Registration) listEntry {
	return listEntry{Name: r.Spec.Name, Namespace: r.Spec.Namespace(), OpType: r.Spec.Type, Via: r.via, Description: r.Spec.Description}
}

// listPage encodes the entries named after `after` until the page would pass limit bytes (at
// least one entry), adding "next" (the last name listed) when more follow (§6.1 paging).
func listPage(regs []*Registration, after string, limit int) (json.RawMessage, error) {
	ops := []listEntry{}
	// The wrapper and a "next" of the longest name count too, so the page fits the limit.
	size := len(`{"operations":[],"next":""}`) + maxImportNameBytes
	next := ""
	for _, r := range regs {
		if after != "" && r.Spec.Name <= after {
			continue
		}
		e := entryOf(r)
		b, err := marshalNoEscape(e)
		if err != nil {
			return nil, err
		}
		if len(ops) > 0 && size+len(b)+1 > limit {
			next = ops[len(ops)-1].Name
			break
		}
		size += len(b) + 1
		ops = append(ops, e)
	}
	if next != "" {
		return marshalNoEscape(struct {
			Operations []listEntry `json:"operations"`
			Next       string      `json:"next"`
		}{ops, next})
	}
	return marshalNoEscape(map[string]any{"operations": ops})
}

// ListPeersRegistration returns services/list-peers (admin scope): the operations of this
// node ("local", core only) and of each attached peer layer in attach order, each filtered by
// its own access control against the caller; empty entries are left out (§6.3).
func ListPeersRegistration(d func() *Dispatcher) HandlerRegistration {
	return HandlerRegistration{
		Spec: OperationSpec{
			Name: OpServicesListPeers, Type: OpQuery, Visibility: VisibilityExternal,
			Description:   "List this node's operations and each attached peer's (admin).",
			InputSchema:   json.RawMessage(`{"type":"object","additionalProperties":false}`),
			AccessControl: AccessControl{RequiredScopes: []string{"admin"}},
		},
		Handler: func(ctx context.Context, oc *OperationContext, _ json.RawMessage) (json.RawMessage, error) {
			disp := d()
			type peerEntry struct {
				PeerID     string      `json:"peer_id"`
				Operations []listEntry `json:"operations"`
			}
			out := []peerEntry{}
			var local []listEntry
			for _, n := range disp.reg.names {
				r := disp.reg.regs[n]
				if r.Spec.Visibility == VisibilityExternal && checkAccess(ctx, &r.Spec, oc.Identity, disp.ownership, json.RawMessage("null"), disp.log.Warn) == nil {
					local = append(local, entryOf(r))
				}
			}
			if len(local) > 0 {
				out = append(out, peerEntry{"local", local})
			}
			for _, id := range oc.Env.PeerIDs() {
				var ops []listEntry
				for _, spec := range oc.Env.PeerOperations(id) {
					if checkAccess(ctx, &spec, oc.Identity, disp.ownership, json.RawMessage("null"), disp.log.Warn) != nil {
						continue
					}
					if c, ok := oc.Env.(*composite); ok {
						if r := c.peerRegistration(id, spec.Name); r != nil {
							ops = append(ops, entryOf(r))
							continue
						}
					}
					ops = append(ops, listEntry{Name: spec.Name, Namespace: spec.Namespace(), OpType: spec.Type, Description: spec.Description})
				}
				if len(ops) > 0 {
					out = append(out, peerEntry{id, ops})
				}
			}
			return marshalNoEscape(map[string]any{"peers": out})
		},
	}
}

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
					`"properties":{"name":{"type":"string"},"namespace":{"type":"string"},"op_type":{"type":"string"},` +
					`"via":{"type":"array","items":{"type":"string"}},"description":{"type":"string"}}}},"next":{"type":"string"}}}`),
			},
			Handler: func(ctx context.Context, oc *OperationContext, in json.RawMessage) (json.RawMessage, error) {
				var req struct {
					After string `json:"after"`
				}
				_ = json.Unmarshal(in, &req) // a missing or odd "after" lists from the start
				disp := d()
				return listPage(disp.visible(ctx, oc.Identity), req.After, disp.cfg.MaxFrameSize/2)
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
				for _, s := range d().Visible(ctx, oc.Identity) { // exposed imports included
					if s.Name == name {
						return s.schemaJSON()
					}
				}
				return nil, errNotFound(name)
			},
		},
	}
}
