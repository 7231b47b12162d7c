package openapi

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/alkdev/alknet/adapters/internal/schemadoc"
	"github.com/alkdev/alknet/call"
)

// FuzzImportDocument: any document either fails to load or gives operations whose schemas
// are valid JSON and whose registrations are checked, without a panic (docs/http.md §5).
func FuzzImportDocument(f *testing.F) {
	f.Add([]byte(`{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{"/a/{id}":{"get":{"operationId":"a","parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"string","nullable":true}}],"responses":{"200":{"description":"x","content":{"application/json":{"schema":{"$ref":"#/components/schemas/A"}}}}}}}},"components":{"schemas":{"A":{"type":"object","properties":{"b":{"$ref":"#/components/schemas/A"}}}}}}`))
	f.Add([]byte(`{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/p":{"post":{"requestBody":{"required":true,"content":{"application/json":{"schema":{"type":["string","null"]}}}},"responses":{"204":{"description":"x"}}}}}}`))
	f.Add([]byte(`openapi: 3.0.0
info: {title: x, version: "1"}
paths: {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseDocument(context.Background(), data, nil)
		if err != nil {
			return
		}
		ops, _, err := buildOperations(doc, ImportConfig{Service: "f", Prefix: "f", Visibility: call.VisibilityExternal})
		if err != nil {
			return
		}
		for _, op := range ops {
			for _, s := range [][]byte{op.spec.InputSchema, op.spec.OutputSchema} {
				if !json.Valid(s) {
					t.Fatalf("%s: invalid schema %s", op.name, s)
				}
				if _, err := schemadoc.Decode(s); err != nil {
					t.Fatal(err)
				}
			}
			_, _ = call.NewRegistration(call.HandlerRegistration{Spec: op.spec, Provenance: call.ProvenanceFromOpenAPI,
				Handler: func(context.Context, *call.OperationContext, json.RawMessage) (json.RawMessage, error) {
					return nil, nil
				}})
		}
	})
}
