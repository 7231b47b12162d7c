package nodeconfig

import (
	"strings"
	"testing"
)

// docs/http.md §8.2 (checklist 34): --check names the key of every bad adapter setting.
func TestAdapterSections(t *testing.T) {
	const ok = `
[http]
enabled = true
loopback_listen = "127.0.0.1:0"
cors_origins = ["https://app.example"]
[mcp]
enabled = true
exclude = ["admin/*"]
[[openapi_import]]
service = "pets"
source = "http://127.0.0.1:3000/openapi.json"
allow_loopback_http = true
visibility = "external"
required_scopes = ["pets"]
[[mcp_import]]
service = "everything"
command = ["node", "server.js"]
visibility = "external"
required_scopes = ["tools"]
env_from_capability = { API_KEY = "api_key:everything" }
`
	f, err := Parse("a.toml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate("a.toml", nil, "127.0.0.1:7443"); err != nil {
		t.Fatal(err)
	}
	if f.OpenAPIImports[0].PrefixOf() != "pets" || f.MCPImports[0].Command[0] != "node" {
		t.Fatalf("%+v", f)
	}
	tests := []struct{ name, toml, want string }{
		{"nested in [[import]]", "[[import.openapi]]\nservice = \"x\"\n", "unknown key import.openapi"},
		{"loopback_listen off loopback", "[http]\nloopback_listen = \"0.0.0.0:80\"\n", "http.loopback_listen"},
		{"cors wildcard", "[http]\nenabled = true\ncors_origins = [\"*\"]\n", "http.cors_origins[0]"},
		{"cors with a path", "[http]\nenabled = true\ncors_origins = [\"https://a.example/x\"]\n", "http.cors_origins[0]"},
		{"mcp without a surface", "[mcp]\nenabled = true\n", "mcp.enabled"},
		{"duplicate service", "[[openapi_import]]\nservice = \"a\"\nsource = \"a.json\"\n[[mcp_import]]\nservice = \"a\"\nprefix = \"b\"\ncommand = [\"x\"]\n", "mcp_import[0].service"},
		{"prefix of an [[import]]", "[[import]]\npeer_id = \"w1\"\nticket = \"alk1x\"\n[[openapi_import]]\nservice = \"w\"\nprefix = \"w1\"\nsource = \"a.json\"\n", "openapi_import[0].prefix"},
		{"nested prefix", "[[openapi_import]]\nservice = \"a\"\nsource = \"a.json\"\n[[mcp_import]]\nservice = \"b\"\nprefix = \"a/b\"\ncommand = [\"x\"]\n", "mcp_import[0].prefix"},
		{"node namespace", "[[openapi_import]]\nservice = \"node\"\nsource = \"a.json\"\n", "openapi_import[0].prefix"},
		{"empty command", "[[mcp_import]]\nservice = \"a\"\n", "mcp_import[0].command"},
		{"http off loopback", "[[openapi_import]]\nservice = \"a\"\nsource = \"http://api.example.com/doc.json\"\n", "openapi_import[0].source"},
		{"bad mcp url", "[[mcp_import]]\nservice = \"a\"\ntransport = \"http\"\nurl = \"ftp://x\"\n", "mcp_import[0].url"},
		{"external without scopes", "[[openapi_import]]\nservice = \"a\"\nsource = \"a.json\"\nvisibility = \"external\"\n", "openapi_import[0].required_scopes"},
		{"bad visibility", "[[openapi_import]]\nservice = \"a\"\nsource = \"a.json\"\nvisibility = \"public\"\n", "openapi_import[0].visibility"},
		{"foreign capability in env", "[[mcp_import]]\nservice = \"a\"\ncommand = [\"x\"]\nenv_from_capability = { K = \"api_key:other\" }\n", "mcp_import[0].env_from_capability.K"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("b.toml", []byte(tc.toml))
			if err == nil {
				err = f.Validate("b.toml", nil, "127.0.0.1:7443")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error naming %s", err, tc.want)
			}
		})
	}
}
