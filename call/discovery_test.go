package call_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/alkdev/alknet/call"
	"github.com/alkdev/alknet/core"
)

// Checklist 61, 62.
func TestDiscovery(t *testing.T) {
	secret := constOp("disc/admin", `1`)
	secret.Spec.AccessControl = call.AccessControl{RequiredScopes: []string{"admin"}}
	hidden := constOp("disc/internal", `1`)
	hidden.Spec.Visibility = call.VisibilityInternal
	d := buildDispatcher(t, nodeOpts{regs: append(demoRegs(), secret, hidden)}, nil)
	list := func(id *core.Identity) string {
		out, ce := ingressCall(t, d, call.RootRequest{Operation: "services/list", Input: js(`{}`), ConnIdentity: id})
		if ce != nil {
			t.Fatal(ce)
		}
		return string(out)
	}
	anon := list(nil)
	if strings.Contains(anon, "disc/admin") || strings.Contains(anon, "disc/internal") ||
		!strings.HasPrefix(anon, `{"operations":[{"name":"demo/add","namespace":"demo","op_type":"query","description":"Add two numbers (as float64)."},`) {
		t.Fatalf("anonymous list: %s", anon)
	}
	if adm := list(&core.Identity{ID: "a", Scopes: []string{"admin"}}); !strings.Contains(adm, `{"name":"disc/admin","namespace":"disc","op_type":"query"}`) || strings.Contains(adm, "disc/internal") {
		t.Fatalf("admin list: %s", adm)
	}
	schema := func(in string, id *core.Identity) (string, *call.Error) {
		out, ce := ingressCall(t, d, call.RootRequest{Operation: "services/schema", Input: js(in), ConnIdentity: id})
		return string(out), ce
	}
	if _, ce := schema(`{}`, nil); ce == nil || ce.Code() != "INVALID_INPUT" || ce.Message() != "missing required field: name" {
		t.Fatalf("no name: %v", ce)
	}
	if _, ce := schema(`{"name":5}`, nil); ce == nil || ce.Code() != "INVALID_INPUT" {
		t.Fatalf("bad name: %v", ce)
	}
	for _, name := range []string{"disc/internal", "nope/nope", "disc/admin"} {
		if _, ce := schema(fmt.Sprintf(`{"name":%q}`, name), nil); ce == nil || ce.Code() != "NOT_FOUND" || ce.Message() != "operation not found: "+name {
			t.Fatalf("%s: %v", name, ce)
		}
	}
	out, ce := schema(`{"name":"/demo/sleep"}`, nil)
	if ce != nil {
		t.Fatal(ce)
	}
	want := `{"name":"demo/sleep","namespace":"demo","description":"Wait ms milliseconds (absent: until the call's context ends).","op_type":"query","visibility":"external",` +
		`"input_schema":{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},"additionalProperties":false},` +
		`"output_schema":{"type":"object","properties":{"slept_ms":{"type":"integer"}},"required":["slept_ms"],"additionalProperties":false},` +
		`"error_schemas":[],"access_control":{"required_scopes":[],"required_scopes_any":null,"resource_type":null,"resource_action":null}}`
	if out != want {
		t.Fatalf("schema\n got %s\nwant %s", out, want)
	}
	out, _ = schema(`{"name":"services/list"}`, nil)
	if !strings.Contains(out, `"input_schema":{}`) {
		t.Fatalf("services/list schema: %s", out)
	}
}
