package identity

import (
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"errors"
	"testing"
)

func FuzzParseTicket(f *testing.F) {
	f.Add(ticketVector)
	f.Add("alk1")
	f.Add("ALK1" + ticketVector[4:])
	f.Add(rawTicket(rec(recKeyFingerprint, make([]byte, 32)), rec(0x90, []byte("x")), rec(recServerName, []byte("n"))))
	// The iroh records' vectors.
	f.Add("alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcgqqcazdamzogaxdcmjtfy3tunbugmzyagtior2ha4z2f4xxezlmmf4s4zlymfwxa3dffzxgk5bpqeitembtfyyc4mjrgmxdoorrgezdanebcnntembqge5giyryhi5doxj2geytembuomritli")
	f.Add("alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcguaacaq4mjsg4xdalrqfyytunbsgqzd6irl24")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := ParseTicket(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidTicket) {
				t.Fatalf("error %v does not match ErrInvalidTicket", err)
			}
			return
		}
		if CheckFingerprint(tk.Fingerprint) != nil {
			t.Fatalf("decoded an invalid fingerprint %q", tk.Fingerprint)
		}
		enc, err := tk.Encode()
		if err != nil {
			t.Fatalf("decoded ticket does not re-encode: %v", err)
		}
		back, err := ParseTicket(enc)
		if err != nil {
			t.Fatalf("re-encoded ticket does not parse: %v", err)
		}
		if diff := cmp.Diff(tk, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-encoded ticket differs (-first +second):\n%s", diff)
		}
	})
}

func FuzzCheckFingerprint(f *testing.F) {
	f.Add(rfc8032FP)
	f.Add("SHA256:" + rfc8032FP[8:])
	f.Add("ed25519:")
	f.Fuzz(func(t *testing.T, s string) {
		if err := CheckFingerprint(s); err != nil {
			return
		}
		if len(s) != 8+64 && len(s) != 7+64 {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
	})
}

func FuzzFingerprintDER(f *testing.F) {
	k := rfcKey(f)
	f.Add(selfSigned(f, k.Public(), k.PrivateKey(), "seed").Raw)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		if err := CheckFingerprint(FingerprintDER(der)); err != nil {
			t.Fatalf("FingerprintDER produced an invalid fingerprint: %v", err)
		}
	})
}
