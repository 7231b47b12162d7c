package call

import (
	"testing"
	"time"
)

// A callee's TIMEOUT that arrives once the caller's own budget has passed is the caller's
// timeout ("request timed out"); one that arrives earlier (the callee's own, shorter limit) and
// any other error stay the callee's.
func TestRemoteErrorAfterBudget(t *testing.T) {
	budget := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	remoteTimeout := &Error{code: CodeTimeout, message: msgDeadlineExceeded, retryable: true, remote: true}
	remoteNotFound := &Error{code: CodeNotFound, message: "operation not found: x", remote: true}
	for _, tc := range []struct {
		name       string
		budget     time.Time
		err        *Error
		now        time.Time
		wantMsg    string
		wantRemote bool
	}{
		{"before the budget", budget, remoteTimeout, budget.Add(-time.Millisecond), msgDeadlineExceeded, true},
		{"at the budget", budget, remoteTimeout, budget, msgRequestTimedOut, false},
		{"after the budget", budget, remoteTimeout, budget.Add(time.Millisecond), msgRequestTimedOut, false},
		{"subscription (no budget)", time.Time{}, remoteTimeout, budget, msgDeadlineExceeded, true},
		{"another code", budget, remoteNotFound, budget.Add(time.Second), "operation not found: x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pending{budget: tc.budget}
			got := p.remoteError(tc.err, tc.now)
			if got.Message() != tc.wantMsg || got.IsRemote() != tc.wantRemote {
				t.Fatalf("got %q remote=%v; want %q remote=%v", got.Message(), got.IsRemote(), tc.wantMsg, tc.wantRemote)
			}
		})
	}
}
