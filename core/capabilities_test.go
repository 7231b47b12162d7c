package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestCapabilitiesNeverPrint(t *testing.T) {
	secret := []byte("sk-live-0123456789")
	in := map[string][]byte{"api_key:svc": secret}
	c := NewCapabilities(in)
	if _, err := json.Marshal(c); err == nil {
		t.Fatal("json.Marshal succeeded")
	}
	if _, err := json.Marshal(struct{ C Capabilities }{c}); err == nil {
		t.Fatal("json.Marshal of a struct holding capabilities succeeded")
	}
	if _, err := c.MarshalText(); err == nil {
		t.Fatal("MarshalText succeeded")
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "caps", c)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "caps", c)
	for _, s := range []string{fmt.Sprintf("%v|%#v|%s|%+v|%x|%q", c, c, c, c, c, c), logs.String()} {
		if strings.Contains(s, "sk-live") || !strings.Contains(s, Redacted) {
			t.Fatalf("rendering %q", s)
		}
	}
	// Mutating the input map or a returned slice has no effect.
	secret[0] = 'X'
	in["api_key:svc"] = []byte("other")
	in["new"] = []byte("n")
	got, ok := c.Get("api_key:svc")
	if !ok || string(got) != "sk-live-0123456789" {
		t.Fatalf("Get = %q", got)
	}
	got[0] = 'Y'
	again, _ := c.Get("api_key:svc")
	if string(again) != "sk-live-0123456789" {
		t.Fatal("returned slice aliases the stored value")
	}
	if _, ok := c.Get("new"); ok {
		t.Fatal("input map aliased")
	}
	if names := c.Names(); len(names) != 1 || names[0] != "api_key:svc" {
		t.Fatalf("Names = %v", names)
	}
	c.Wipe()
	if _, ok := c.Get("api_key:svc"); ok {
		t.Fatal("Get after Wipe")
	}
	var zero Capabilities
	if _, ok := zero.Get("x"); ok || zero.Names() != nil {
		t.Fatal("zero Capabilities")
	}
	zero.Wipe()
}
