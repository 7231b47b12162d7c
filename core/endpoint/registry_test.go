package endpoint_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alkdev/alknet/core/auth"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/endpoint"
)

func handler(alpn string) endpoint.ProtocolHandler {
	return endpoint.HandlerFunc{Protocol: alpn, Func: func(context.Context, conn.Connection, auth.Context) error { return nil }}
}

func TestRegistry(t *testing.T) {
	_, err := endpoint.NewRegistry(handler("alknet/call"), handler("alknet/call"))
	if !errors.Is(err, endpoint.ErrRegistry) || !strings.Contains(err.Error(), `duplicate ALPN "alknet/call"`) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []string{"", "acme-tls/1", "Alknet/x", "alknet/", "alknet/a/", "alknet/A", "alknet/" + strings.Repeat("a", 249)} {
		if _, err := endpoint.NewRegistry(handler(bad)); !errors.Is(err, endpoint.ErrRegistry) {
			t.Errorf("ALPN %q accepted", bad)
		}
	}
	r, err := endpoint.NewRegistry(handler("alknet/call"), handler("h2"), handler("http/1.1"), handler("alknet/x.y_z-1/v2"))
	if err != nil {
		t.Fatal(err)
	}
	got := r.ALPNs()
	if strings.Join(got, ",") != "alknet/call,h2,http/1.1,alknet/x.y_z-1/v2" {
		t.Fatalf("ALPNs = %v", got)
	}
	got[0] = "mutated"
	if r.ALPNs()[0] != "alknet/call" {
		t.Fatal("ALPNs is not a copy")
	}
	if _, ok := r.Lookup("alknet/call"); !ok {
		t.Fatal("Lookup")
	}
	if _, err := endpoint.New(endpoint.Options{}); err == nil {
		t.Fatal("endpoint.New accepted no registry")
	}
	empty, err := endpoint.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := endpoint.New(endpoint.Options{Registry: empty}); err == nil {
		t.Fatal("endpoint.New accepted an empty registry")
	}
}
