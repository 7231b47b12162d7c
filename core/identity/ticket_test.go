package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const ticketVector = "alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcgqqcazdamzogaxdcmjtfy3tunbugmzrcdzsgazs4mbogeytglrxhi2dim5yjqhau"

var vectorTicket = Ticket{Fingerprint: rfc8032FP, QUIC: []string{"203.0.113.7:4433"}, TCP: []string{"203.0.113.7:443"}}

func TestTicketVector(t *testing.T) {
	got, err := vectorTicket.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got != ticketVector {
		t.Fatalf("Encode = %s\nwant     %s", got, ticketVector)
	}
	for _, in := range []string{ticketVector, strings.ToUpper(ticketVector), "  \n" + ticketVector + "\t\n"} {
		back, err := ParseTicket(in)
		if err != nil {
			t.Fatalf("ParseTicket(%q): %v", in, err)
		}
		if diff := cmp.Diff(vectorTicket, back); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestTicketRoundTrip(t *testing.T) {
	tests := []Ticket{
		{Fingerprint: rfc8032FP},
		{Fingerprint: "SHA256:" + strings.Repeat("0f", 32), TCP: []string{"[2001:db8::1]:443", "example.com:8443"}, ServerName: "node.example.com"},
		{Fingerprint: rfc8032FP, QUIC: []string{"127.0.0.1:1", "127.0.0.1:65535"}},
	}
	for _, tt := range tests {
		s, err := tt.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTicket(s)
		if err != nil {
			t.Fatalf("ParseTicket(%s): %v", s, err)
		}
		if diff := cmp.Diff(tt, got); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
		if tt.String() != s {
			t.Fatal("String differs from Encode")
		}
	}
}

// rawTicket builds a ticket from raw records with a valid checksum.
func rawTicket(recs ...[]byte) string {
	var b []byte
	for _, r := range recs {
		b = append(b, r...)
	}
	return encodeWithChecksum(b)
}

func rec(typ byte, v []byte) []byte { return append([]byte{typ, byte(len(v))}, v...) }

func TestParseTicketRejects(t *testing.T) {
	fp := make([]byte, 32)
	addr := func(s string) []byte { return rec(recQUICAddr, []byte(s)) }
	nineQUIC := [][]byte{rec(recKeyFingerprint, fp)}
	for range 9 {
		nineQUIC = append(nineQUIC, addr("127.0.0.1:1"))
	}
	changed := []byte(ticketVector)
	if changed[20] == 'a' {
		changed[20] = 'b'
	} else {
		changed[20] = 'a'
	}
	tests := []struct {
		name string
		in   string
	}{
		{"changed character", string(changed)},
		{"bad prefix", "alk2" + ticketVector[4:]},
		{"no prefix", ticketVector[4:]},
		{"invalid character", ticketVector[:10] + "1" + ticketVector[11:]},
		{"inner newline", ticketVector[:10] + "\n" + ticketVector[10:]},
		{"padding", ticketVector + "===="},
		{"empty", ""},
		{"type 0x30", rawTicket(rec(recKeyFingerprint, fp), rec(0x30, []byte("x")))},
		{"reserved 0x12", rawTicket(rec(recKeyFingerprint, fp), rec(0x12, []byte("x")))},
		{"two fingerprints", rawTicket(rec(recKeyFingerprint, fp), rec(recCertFingerprint, fp))},
		{"no fingerprint", rawTicket(addr("127.0.0.1:1"))},
		{"fingerprint not first", rawTicket(addr("127.0.0.1:1"), rec(recKeyFingerprint, fp))},
		{"short fingerprint", rawTicket(rec(recKeyFingerprint, fp[:31]))},
		{"port 0", rawTicket(rec(recKeyFingerprint, fp), addr("127.0.0.1:0"))},
		{"port 65536", rawTicket(rec(recKeyFingerprint, fp), addr("127.0.0.1:65536"))},
		{"empty host", rawTicket(rec(recKeyFingerprint, fp), addr(":443"))},
		{"nine QUIC addresses", rawTicket(nineQUIC...)},
		{"truncated record", rawTicket(rec(recKeyFingerprint, fp), []byte{recQUICAddr, 10, 'a'})},
		{"two server names", rawTicket(rec(recKeyFingerprint, fp), rec(recServerName, []byte("a")), rec(recServerName, []byte("b")))},
		{"too long", rawTicket(append([][]byte{rec(recKeyFingerprint, fp)}, repeatRec(rec(0x90, make([]byte, 200)), 6)...)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseTicket(tt.in); !errors.Is(err, ErrInvalidTicket) {
				t.Fatalf("err = %v, want ErrInvalidTicket", err)
			}
		})
	}
}

func repeatRec(r []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func TestParseTicketSkipsExtensions(t *testing.T) {
	fp := make([]byte, 32)
	s := rawTicket(rec(recKeyFingerprint, fp), rec(0x90, []byte("future")), rec(recTCPAddr, []byte("h:1")))
	got, err := ParseTicket(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.TCP) != 1 || got.TCP[0] != "h:1" {
		t.Fatalf("got %+v", got)
	}
	// TicketRecords shows every record, the skipped extension included, in order.
	recs, err := TicketRecords(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []TicketRecord{
		{Type: recKeyFingerprint, Name: "key_fingerprint", Value: strings.Repeat("00", 32)},
		{Type: 0x90, Name: "extension", Value: "667574757265"},
		{Type: recTCPAddr, Name: "tcp", Value: "h:1"},
	}
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	if _, err := TicketRecords(s[:len(s)-1]); err == nil {
		t.Fatal("a damaged ticket has records")
	}
}

func TestTicketEncodeRejects(t *testing.T) {
	nine := make([]string, 9)
	for i := range nine {
		nine[i] = "h:1"
	}
	for _, tt := range []Ticket{
		{},
		{Fingerprint: "ed25519:zz"},
		{Fingerprint: rfc8032FP, QUIC: []string{"nohost"}},
		{Fingerprint: rfc8032FP, TCP: []string{"h:0"}},
		{Fingerprint: rfc8032FP, QUIC: nine},
	} {
		if _, err := tt.Encode(); !errors.Is(err, ErrInvalidTicket) {
			t.Errorf("%+v: err = %v", tt, err)
		}
		if tt.String() != "" {
			t.Errorf("%+v: String should be empty for an invalid ticket", tt)
		}
	}
}
