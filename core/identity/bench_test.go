package identity

import "testing"

func BenchmarkParseTicket(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTicket(ticketVector); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprintDER(b *testing.B) {
	k := rfcKey(b)
	der := selfSigned(b, k.Public(), k.PrivateKey(), "bench").Raw
	b.ReportAllocs()
	for b.Loop() {
		_ = FingerprintDER(der)
	}
}
