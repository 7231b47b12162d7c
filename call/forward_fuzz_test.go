package call

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/alkdev/alknet/core/conn"
)

// FuzzCatalogue: services/list entries and services/schema outputs from a peer never panic
// the importer and never yield a registration NewRegistration rejects.
func FuzzCatalogue(f *testing.F) {
	f.Add([]byte(`{"name":"demo/echo","namespace":"demo","op_type":"query","via":["ed25519:aa"]}`),
		[]byte(`{"name":"demo/echo","description":"d","op_type":"query","input_schema":{"type":"object"},"output_schema":null,"error_schemas":[{"code":"X","description":"x","schema":{"type":"string"},"http_status":null}],"access_control":{"required_scopes":["a"],"required_scopes_any":null,"resource_type":"doc","resource_action":"read"}}`))
	f.Add([]byte(`{"name":5,"op_type":"subscription"}`), []byte(`{"op_type":"subscription","input_schema":{"type":"nope"}}`))
	f.Add([]byte(`{"name":"a/b","op_type":"mutation","via":"x"}`), []byte(`{"error_schemas":[{"code":"INTERNAL"},{"code":""},{"code":"Y","schema":{"$ref":"http://x"}}],"access_control":{"required_scopes_any":[]}}`))
	f.Add([]byte(`null`), []byte(`[]`))
	a, b := conn.Pipe(ALPN)
	c := NewConn(a, nil, ConnOptions{Logger: slog.New(slog.DiscardHandler)})
	f.Cleanup(func() { _ = c.Close(); _ = b.Close(0, "") })
	fwd := newForwarder(c, ImportConfig{Peer: "w1", KeepRemoteVisibility: true})
	f.Fuzz(func(t *testing.T, entry, schemaOut []byte) {
		l := parseListed(json.RawMessage(entry))
		for _, v := range l.via {
			if len(v) > 128 {
				t.Fatalf("via entry of %d bytes", len(v))
			}
		}
		for _, typ := range []OperationType{OpQuery, OpMutation, OpSubscription} {
			hr, err := fwd.registration("w1/x", "x", typ, json.RawMessage(schemaOut), []string{"ed25519:aa"})
			if err != nil {
				continue
			}
			if _, err := NewRegistration(hr); err != nil {
				t.Fatalf("an invalid registration was built: %v", err)
			}
			if hr.Spec.AccessControl.ResourceType != "" || hr.Spec.AccessControl.ResourceAction != "" || hr.Provenance != ProvenanceFromCall {
				t.Fatalf("registration %+v", hr.Spec)
			}
		}
	})
}
