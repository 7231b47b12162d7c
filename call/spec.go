package call

import (
	"encoding/json"
	"strings"
)

// OperationType is how an operation is called.
type OperationType string

// Operation types.
const (
	OpQuery        OperationType = "query"
	OpMutation     OperationType = "mutation"
	OpSubscription OperationType = "subscription"
)

// Visibility says whether an operation is reachable from the wire.
type Visibility string

// Visibilities.
const (
	VisibilityExternal Visibility = "external"
	VisibilityInternal Visibility = "internal"
)

// ErrorDefinition declares a domain error code of an operation.
type ErrorDefinition struct {
	Code        string          `json:"code"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	HTTPStatus  *int            `json:"http_status"`
}

// AccessControl says who may call an operation (§9).
type AccessControl struct {
	RequiredScopes    []string // all required
	RequiredScopesAny []string // nil = unset; else at least one
	ResourceType      string
	ResourceAction    string
}

// IsEmpty reports whether no field is set (anyone may call, even anonymously).
func (a AccessControl) IsEmpty() bool {
	return len(a.RequiredScopes) == 0 && a.RequiredScopesAny == nil && a.ResourceType == "" && a.ResourceAction == ""
}

// MarshalJSON writes the services/schema shape: arrays for required_scopes, null for unset.
func (a AccessControl) MarshalJSON() ([]byte, error) {
	w := struct {
		RequiredScopes    []string `json:"required_scopes"`
		RequiredScopesAny []string `json:"required_scopes_any"`
		ResourceType      *string  `json:"resource_type"`
		ResourceAction    *string  `json:"resource_action"`
	}{RequiredScopes: a.RequiredScopes, RequiredScopesAny: a.RequiredScopesAny}
	if w.RequiredScopes == nil {
		w.RequiredScopes = []string{}
	}
	if a.ResourceType != "" {
		w.ResourceType = &a.ResourceType
	}
	if a.ResourceAction != "" {
		w.ResourceAction = &a.ResourceAction
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the services/schema shape.
func (a *AccessControl) UnmarshalJSON(b []byte) error {
	var w struct {
		RequiredScopes    []string `json:"required_scopes"`
		RequiredScopesAny []string `json:"required_scopes_any"`
		ResourceType      *string  `json:"resource_type"`
		ResourceAction    *string  `json:"resource_action"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = AccessControl{RequiredScopes: w.RequiredScopes, RequiredScopesAny: w.RequiredScopesAny}
	if w.ResourceType != nil {
		a.ResourceType = *w.ResourceType
	}
	if w.ResourceAction != nil {
		a.ResourceAction = *w.ResourceAction
	}
	return nil
}

// OperationSpec describes one operation.
type OperationSpec struct {
	Name           string            // "fs/readFile": service/op, no leading slash
	Description    string            // human text
	Type           OperationType     // query | mutation | subscription
	Visibility     Visibility        // external | internal
	InputSchema    json.RawMessage   // JSON Schema 2020-12; empty = accept all
	OutputSchema   json.RawMessage   // JSON Schema 2020-12; empty = accept all
	ErrorSchemas   []ErrorDefinition // declared domain codes
	AccessControl  AccessControl
	ResourceIDPath string // "" = none (§9.3)
}

// Namespace is the first segment of the name (the whole name if it has no "/").
func (s OperationSpec) Namespace() string {
	ns, _, _ := strings.Cut(s.Name, "/")
	return ns
}

// Path is "/" + Name.
func (s OperationSpec) Path() string { return "/" + s.Name }

// declares reports whether code is a domain code declared by the spec.
func (s OperationSpec) declares(code string) (ErrorDefinition, bool) {
	for _, d := range s.ErrorSchemas {
		if d.Code == code {
			return d, true
		}
	}
	return ErrorDefinition{}, false
}

// schemaJSON is the services/schema output for s.
func (s OperationSpec) schemaJSON() ([]byte, error) {
	nullable := func(raw json.RawMessage) json.RawMessage {
		if len(raw) == 0 {
			return json.RawMessage("null")
		}
		return raw
	}
	type errDef struct {
		Code        string          `json:"code"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		HTTPStatus  *int            `json:"http_status"`
	}
	errs := make([]errDef, 0, len(s.ErrorSchemas))
	for _, d := range s.ErrorSchemas {
		errs = append(errs, errDef{d.Code, d.Description, nullable(d.Schema), d.HTTPStatus})
	}
	var desc *string
	if s.Description != "" {
		desc = &s.Description
	}
	return marshalNoEscape(struct {
		Name          string          `json:"name"`
		Namespace     string          `json:"namespace"`
		Description   *string         `json:"description"`
		OpType        OperationType   `json:"op_type"`
		Visibility    Visibility      `json:"visibility"`
		InputSchema   json.RawMessage `json:"input_schema"`
		OutputSchema  json.RawMessage `json:"output_schema"`
		ErrorSchemas  []errDef        `json:"error_schemas"`
		AccessControl AccessControl   `json:"access_control"`
	}{s.Name, s.Namespace(), desc, s.Type, s.Visibility, nullable(s.InputSchema), nullable(s.OutputSchema), errs, s.AccessControl})
}

// validName: non-empty, no leading or trailing "/", no empty segments.
func validName(n string) bool {
	if n == "" || strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") || strings.Contains(n, "//") {
		return false
	}
	return true
}
