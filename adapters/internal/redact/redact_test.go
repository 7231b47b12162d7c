package redact

import "testing"

func TestRedact(t *testing.T) {
	r := New([]byte(`s3cr"et/+x`), []byte("ab"))
	defer r.Wipe()
	for in, want := range map[string]string{
		`{"echo":"s3cr\"et/+x"}`:  `{"echo":"[REDACTED]"}`,
		`token=s3cr%22et%2F%2Bx`:  `token=[REDACTED]`,
		`raw s3cr"et/+x here`:     `raw [REDACTED] here`,
		`ab is too short to hide`: `ab is too short to hide`,
	} {
		if got := r.String(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
	r.Wipe()
	if !r.Empty() {
		t.Fatal("not empty after Wipe")
	}
}
