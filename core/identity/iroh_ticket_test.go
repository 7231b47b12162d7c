package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// RFC 8032 TEST 1's public key: the iroh vectors' endpoint id (iroh spec §7 as amended in core).
const vectorKeyFP = "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

func TestIrohTicketVectors(t *testing.T) {
	tests := []struct {
		name string
		t    Ticket
		want string
	}{
		{"quic and iroh with a relay", Ticket{Fingerprint: vectorKeyFP, QUIC: []string{"203.0.113.7:4433"},
			Iroh: &IrohAddr{RelayURL: "https://relay.example.net/", Addrs: []string{"203.0.113.7:11204", "[2001:db8::7]:11204"}}},
			"alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcgqqcazdamzogaxdcmjtfy3tunbugmzyagtior2ha4z2f4xxezlmmf4s4zlymfwxa3dffzxgk5bpqeitembtfyyc4mjrgmxdoorrgezdanebcnntembqge5giyryhi5doxj2geytembuomritli"},
		{"iroh only, no relay", Ticket{Fingerprint: vectorKeyFP, Iroh: &IrohAddr{Addrs: []string{"127.0.0.1:4242"}}},
			"alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcguaacaq4mjsg4xdalrqfyytunbsgqzd6irl24"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.t.Encode()
			if err != nil || got != tc.want {
				t.Fatalf("Encode = %q, %v\nwant     %q", got, err, tc.want)
			}
			back, err := ParseTicket(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.t, back); d != "" {
				t.Fatalf("ParseTicket (-want +got):\n%s", d)
			}
		})
	}
}

func TestIrohTicketRejections(t *testing.T) {
	fp := rec(recKeyFingerprint, make([]byte, 32))
	relay := rec(recIrohRelay, []byte("https://relay.example.net/"))
	addr := func(a string) []byte { return rec(recIrohAddr, []byte(a)) }
	nine := [][]byte{fp, relay}
	for i := 0; i < 9; i++ {
		nine = append(nine, addr("10.0.0.1:1"))
	}
	for name, raw := range map[string]string{
		"second 0x80":             rawTicket(fp, relay, relay),
		"0x81 without 0x80":       rawTicket(fp, addr("10.0.0.1:1")),
		"0x80 with a cert fp":     rawTicket(rec(recCertFingerprint, make([]byte, 32)), relay),
		"DNS host in 0x81":        rawTicket(fp, relay, addr("relay.example.net:1")),
		"empty host in 0x81":      rawTicket(fp, relay, addr(":1")),
		"port 0":                  rawTicket(fp, relay, addr("10.0.0.1:0")),
		"port 65536":              rawTicket(fp, relay, addr("10.0.0.1:65536")),
		"a ninth 0x81":            rawTicket(nine...),
		"http relay off loopback": rawTicket(fp, rec(recIrohRelay, []byte("http://relay.example.net/"))),
		"relative relay URL":      rawTicket(fp, rec(recIrohRelay, []byte("relay.example.net"))),
		"ftp relay URL":           rawTicket(fp, rec(recIrohRelay, []byte("ftp://relay.example.net/"))),
	} {
		if _, err := ParseTicket(raw); !errors.Is(err, ErrInvalidTicket) {
			t.Errorf("%s: %v, want ErrInvalidTicket", name, err)
		}
	}
	// Accepted: a loopback http relay, a trailing dot kept.
	for _, u := range []string{"http://127.0.0.1:3340/", "https://relay.example.net./"} {
		tk, err := ParseTicket(rawTicket(fp, rec(recIrohRelay, []byte(u))))
		if err != nil || tk.Iroh == nil || tk.Iroh.RelayURL != u {
			t.Errorf("%s: %+v %v", u, tk.Iroh, err)
		}
	}
	// Encode refuses what decode would.
	if _, err := (Ticket{Fingerprint: "SHA256:" + strings.Repeat("ab", 32), Iroh: &IrohAddr{}}).Encode(); !errors.Is(err, ErrInvalidTicket) {
		t.Fatalf("iroh with a certificate fingerprint: %v", err)
	}
	// Records an inspection tool shows.
	recs, err := TicketRecords(rawTicket(fp, relay, addr("10.0.0.1:1")))
	if err != nil || len(recs) != 3 || recs[1].Name != "iroh_relay" || recs[2].Name != "iroh" || recs[2].Value != "10.0.0.1:1" {
		t.Fatalf("%+v %v", recs, err)
	}
}
