package openapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/alkdev/alknet/adapters/internal/schemadoc"
)

const componentsPrefix = "#/components/schemas/"

// schemaConverter turns an OpenAPI document's schemas into JSON Schema 2020-12 with every
// component they reference copied into $defs (docs/http.md §5.5).
type schemaConverter struct {
	v30        bool
	components map[string]any // component name → converted schema (refs still to components)
}

func newSchemaConverter(doc *openapi3.T) (*schemaConverter, error) {
	c := &schemaConverter{v30: !doc.IsOpenAPI31OrLater(), components: map[string]any{}}
	if doc.Components == nil {
		return c, nil
	}
	for name, ref := range doc.Components.Schemas {
		v, err := c.plain(ref)
		if err != nil {
			return nil, fmt.Errorf("components.schemas.%s: %w", name, err)
		}
		c.components[name] = v
	}
	return c, nil
}

// plain is a schema ref as converted JSON values.
func (c *schemaConverter) plain(ref *openapi3.SchemaRef) (any, error) {
	if ref == nil {
		return map[string]any{}, nil
	}
	b, err := json.Marshal(ref)
	if err != nil {
		return nil, err
	}
	v, err := schemadoc.Decode(b)
	if err != nil {
		return nil, err
	}
	if c.v30 {
		v = from30(v)
	}
	return v, nil
}

// schema returns ref as a self-contained 2020-12 schema: the components it reaches, at any
// depth, in its $defs.
func (c *schemaConverter) schema(ref *openapi3.SchemaRef) (any, error) {
	root, err := c.plain(ref)
	if err != nil {
		return nil, err
	}
	defs := map[string]any{}
	var walk func(v any) error
	walk = func(v any) error {
		var err error
		visitRefs(v, func(r string) string {
			name, ok := strings.CutPrefix(r, componentsPrefix)
			if !ok {
				if !strings.HasPrefix(r, "#") && err == nil {
					err = fmt.Errorf("external reference %q", r)
				}
				return r
			}
			if _, done := defs[name]; !done {
				comp, found := c.components[name]
				if !found {
					if err == nil {
						err = fmt.Errorf("reference to a missing component %q", name)
					}
					return r
				}
				cp := deepCopy(comp)
				defs[name] = cp
				if werr := walk(cp); werr != nil && err == nil {
					err = werr
				}
			}
			return "#/$defs/" + name
		})
		return err
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	if len(defs) > 0 {
		m, ok := root.(map[string]any)
		if !ok {
			m = map[string]any{"allOf": []any{root}}
			root = m
		}
		m["$defs"] = defs
	}
	return root, nil
}

// visitRefs rewrites every "$ref" string of v in place with f (data keywords excluded).
func visitRefs(v any, f func(string) string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "$ref" {
				x[k] = f(s)
				continue
			}
			switch k {
			case "const", "default", "enum", "examples", "example":
				continue
			}
			visitRefs(val, f)
		}
	case []any:
		for _, val := range x {
			visitRefs(val, f)
		}
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = deepCopy(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = deepCopy(val)
		}
		return out
	}
	return v
}

// from30 converts an OpenAPI 3.0 schema: nullable adds "null" to type, boolean
// exclusiveMaximum/Minimum become numbers, example becomes examples (docs/http.md §5.5).
func from30(v any) any { return schemadoc.EachSchema(v, convert30) }

func convert30(out map[string]any) map[string]any {
	if n, _ := out["nullable"].(bool); n {
		switch t := out["type"].(type) {
		case string:
			out["type"] = []any{t, "null"}
		case []any:
			out["type"] = append(t, "null")
		}
		if e, ok := out["enum"].([]any); ok {
			out["enum"] = append(e, nil)
		}
	}
	delete(out, "nullable")
	schemadoc.NumericExclusive(out)
	if ex, ok := out["example"]; ok {
		if _, has := out["examples"]; !has {
			out["examples"] = []any{ex}
		}
		delete(out, "example")
	}
	return out
}
