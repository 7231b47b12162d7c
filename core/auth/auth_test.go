package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fpA = "ed25519:" + "aa00000000000000000000000000000000000000000000000000000000000000"
	fpB = "ed25519:" + "bb00000000000000000000000000000000000000000000000000000000000000"
	fpC = "SHA256:" + "cc00000000000000000000000000000000000000000000000000000000000000"

	vectorToken  = "alk_test-token-do-not-use-000000000000000000"
	vectorPrefix = "alk_test"
	vectorHash   = "sha256:aa638ae08c723a5bbdc39a4359317ddd1383a0132ad0b1e8a82fd38423a7e681"
)

func TestTokenVector(t *testing.T) {
	if got := HashToken(vectorToken); got != vectorHash {
		t.Fatalf("HashToken = %s, want %s", got, vectorHash)
	}
	if vectorToken[:APIKeyPrefixLen] != vectorPrefix {
		t.Fatal("prefix")
	}
}

func TestNewToken(t *testing.T) {
	tok, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != 4+43 || hash != HashToken(tok) || !validHash(hash) {
		t.Fatalf("token %q hash %q", tok, hash)
	}
	existing := []APIKeyEntry{{Prefix: tok[:8]}}
	tok2, e, err := NewAPIKey([]string{"read"}, "ci", time.Time{}, existing)
	if err != nil {
		t.Fatal(err)
	}
	if e.Prefix == tok[:8] || e.Prefix != tok2[:8] || e.Hash != HashToken(tok2) {
		t.Fatalf("entry %+v", e)
	}
}

func mustPolicy(t *testing.T, peers []PeerEntry, keys []APIKeyEntry, now func() time.Time) *Policy {
	t.Helper()
	p, err := NewPolicy(peers, keys, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyFingerprint(t *testing.T) {
	ctx := context.Background()
	peers := []PeerEntry{
		{PeerID: "alice", Fingerprints: []string{fpA, fpC}, Scopes: []string{"admin"}, Resources: map[string][]string{"doc": {"read"}}, Enabled: true},
		{PeerID: "bob", Fingerprints: []string{fpB}, Scopes: []string{"read"}, AuthTokenHash: HashToken("bob-secret"), Enabled: false},
	}
	p := mustPolicy(t, peers, nil, nil)
	for _, fp := range []string{fpA, fpC} {
		id, ok := p.FromFingerprint(ctx, fp)
		if !ok || id.ID != "alice" || !id.HasScope("admin") || id.Resources["doc"][0] != "read" {
			t.Fatalf("%s: %+v %v", fp, id, ok)
		}
		id.Scopes[0] = "mutated"
		id.Resources["doc"][0] = "mutated"
	}
	if id, _ := p.FromFingerprint(ctx, fpA); id.Scopes[0] != "admin" || id.Resources["doc"][0] != "read" {
		t.Fatal("mutating a returned identity changed the policy")
	}
	peers[0].Scopes[0] = "changed-after"
	if id, _ := p.FromFingerprint(ctx, fpA); id.Scopes[0] != "admin" {
		t.Fatal("policy aliases its input")
	}
	if _, ok := p.FromFingerprint(ctx, fpB); ok {
		t.Fatal("disabled peer resolved by fingerprint")
	}
	if _, ok := p.FromToken(ctx, "bob-secret"); ok {
		t.Fatal("disabled peer resolved by token")
	}
	if _, ok := p.FromFingerprint(ctx, "ed25519:unknown"); ok {
		t.Fatal("unknown fingerprint resolved")
	}
}

func TestPolicyTokens(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	peers := []PeerEntry{{PeerID: "svc", Scopes: []string{"svc"}, AuthTokenHash: vectorHash, Enabled: true}}
	keys := []APIKeyEntry{
		{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"read"}},
		{Prefix: "alk_exp0", Hash: HashToken("alk_exp0-rest"), Scopes: []string{"read"}, ExpiresAt: now},
		{Prefix: "alk_live", Hash: HashToken("alk_live-rest"), Scopes: []string{"read", "write"}, ExpiresAt: now.Add(time.Second)},
	}
	// A token matching both a peer and an API key resolves to the peer.
	p := mustPolicy(t, peers, keys, clock)
	if id, ok := p.FromToken(ctx, vectorToken); !ok || id.ID != "svc" {
		t.Fatalf("peer precedence: %+v %v", id, ok)
	}
	p = mustPolicy(t, nil, keys, clock)
	id, ok := p.FromToken(ctx, vectorToken)
	if !ok || id.ID != vectorPrefix || !id.HasScope("read") || id.Resources != nil {
		t.Fatalf("api key: %+v %v", id, ok)
	}
	if id, ok := p.FromToken(ctx, "alk_live-rest"); !ok || len(id.Scopes) != 2 {
		t.Fatalf("unexpired key: %+v %v", id, ok)
	}
	for name, tok := range map[string]string{
		"no alk_ prefix":   "test-token-do-not-use-000000000000000000",
		"under 8":          "alk_tes",
		"unknown prefix":   "alk_zzzz-token",
		"wrong hash":       vectorToken + "x",
		"expired at now":   "alk_exp0-rest",
		"empty":            "",
		"over 512 bytes":   "alk_test" + strings.Repeat("x", 510),
		"prefix only hash": "alk_test",
	} {
		if _, ok := p.FromToken(ctx, tok); ok {
			t.Errorf("%s: resolved", name)
		}
	}
}

func TestPolicyValidationReportsAll(t *testing.T) {
	peers := []PeerEntry{
		{PeerID: "x", Fingerprints: []string{fpA}, Scopes: []string{"a"}, Enabled: true},
		{PeerID: "x", Fingerprints: []string{fpA}, Enabled: true},
		{PeerID: "alk_bad", Enabled: true},
		{PeerID: "sp ace", AuthTokenHash: "sha256:XYZ", Enabled: true},
		{PeerID: strings.Repeat("a", 129), Fingerprints: []string{"ED25519:00"}, Enabled: true},
		{PeerID: "", Scopes: []string{""}, Enabled: true},
	}
	keys := []APIKeyEntry{{Prefix: "alk_abc", Hash: vectorHash}, {Prefix: "key_abcd", Hash: "nope"}}
	_, err := NewPolicy(peers, keys, nil)
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"peers[1].peer_id: duplicate peer_id: x",
		"peers[1].fingerprints[0]",
		"peers[2].peer_id",
		"peers[3].peer_id",
		"peers[3].auth_token_hash",
		"peers[4].peer_id: longer than 128",
		"peers[4].fingerprints[0]",
		"peers[5].peer_id: empty",
		"peers[5].scopes[0]",
		"api_keys[0].prefix",
		"api_keys[1].prefix",
		"api_keys[1].hash",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), vectorHash) {
		t.Error("validation error shows a token hash")
	}
}

func TestRevalidate(t *testing.T) {
	ctx := context.Background()
	peers := []PeerEntry{{PeerID: "alice", Fingerprints: []string{fpA}, Scopes: []string{"a", "b"}, Enabled: true}}
	keys := []APIKeyEntry{{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"read"}}}
	p := mustPolicy(t, peers, keys, nil)
	if !p.Revalidate(ctx, Identity{ID: "alice", Scopes: []string{"b", "a"}}) {
		t.Fatal("same identity (scopes reordered) not revalidated")
	}
	if p.Revalidate(ctx, Identity{ID: "alice", Scopes: []string{"a"}}) {
		t.Fatal("changed scopes revalidated")
	}
	if !p.Revalidate(ctx, Identity{ID: vectorPrefix, Scopes: []string{"read"}}) {
		t.Fatal("api key not revalidated")
	}
	if p.Revalidate(ctx, Identity{ID: "carol"}) {
		t.Fatal("unknown id revalidated")
	}
}

func TestIdentityEqualClone(t *testing.T) {
	a := Identity{ID: "x", Scopes: []string{"s1", "s2"}, Resources: map[string][]string{"doc": {"r", "w"}}}
	b := Identity{ID: "x", Scopes: []string{"s2", "s1"}, Resources: map[string][]string{"doc": {"w", "r"}}}
	if !a.Equal(b) {
		t.Fatal("set equality")
	}
	c := a.Clone()
	c.Resources["doc"][0] = "z"
	if a.Resources["doc"][0] != "r" || a.Equal(c) {
		t.Fatal("Clone is shallow")
	}
	if a.Equal(Identity{ID: "x", Scopes: a.Scopes}) {
		t.Fatal("resources ignored")
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestAuthenticatorRateLimit(t *testing.T) {
	ctx := context.Background()
	p := mustPolicy(t, nil, []APIKeyEntry{{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"r"}}}, nil)
	clk := &clock{now: time.Unix(1_000_000, 0)}
	var logs bytes.Buffer
	a := NewAuthenticator(p, AuthenticatorOptions{Limits: func() RateLimits { return RateLimits{FailuresPerMinute: 6, FailureBurst: 3} },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: clk.Now})
	bad := Context{ALPN: "alknet/call", RemoteAddr: &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 5}}
	other := Context{ALPN: "alknet/call", RemoteAddr: &net.TCPAddr{IP: net.ParseIP("203.0.113.8"), Port: 5}}
	for i := range 3 {
		if a.Blocked(bad.RemoteAddr) {
			t.Fatalf("blocked after %d failures", i)
		}
		if _, err := a.Token(ctx, bad, "alk_nope-nope"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if !a.Blocked(bad.RemoteAddr) {
		t.Fatal("not blocked after FailureBurst failures")
	}
	if _, err := a.Token(ctx, bad, vectorToken); !errors.Is(err, ErrAuthBlocked) {
		t.Fatalf("blocked IP with a good token: %v", err)
	}
	if a.Blocked(other.RemoteAddr) {
		t.Fatal("another IP is blocked")
	}
	if _, err := a.Token(ctx, other, vectorToken); err != nil {
		t.Fatalf("other IP: %v", err)
	}
	clk.Add(10 * time.Second) // 6 per minute: one token per 10 s
	if a.Blocked(bad.RemoteAddr) {
		t.Fatal("still blocked after the refill interval")
	}
	if _, err := a.Token(ctx, bad, "alk_nope-nope"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("one attempt after refill: %v", err)
	}
	if !a.Blocked(bad.RemoteAddr) {
		t.Fatal("not blocked again after the refilled attempt failed")
	}
	// Blocked lines are rate limited: one so far, more attempts add none.
	for range 5 {
		_, _ = a.Token(ctx, bad, vectorToken)
	}
	if n := strings.Count(logs.String(), "result=blocked"); n != 1 {
		t.Fatalf("%d blocked lines, want 1:\n%s", n, logs.String())
	}
}

// A local connection's failures count on the connection only: past the burst it is blocked,
// 127.0.0.1 never is, and a new connection resolves tokens at once (docs/http.md §2.2).
func TestLocalConnFailures(t *testing.T) {
	p := mustPolicy(t, nil, []APIKeyEntry{{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"r"}}}, nil)
	a := NewAuthenticator(p, AuthenticatorOptions{Limits: func() RateLimits { return RateLimits{FailuresPerMinute: 6, FailureBurst: 3} },
		Logger: slog.New(slog.DiscardHandler)})
	local := Context{ALPN: "http/1.1", RemoteAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5}}
	cf := NewLocalConnFailures(nil)
	ctx := WithConnFailures(context.Background(), cf)
	for i := range 3 {
		if _, err := a.Token(ctx, local, "alk_nope-nope"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if !cf.Blocked() {
		t.Fatal("connection not blocked after the burst")
	}
	if _, err := a.Token(ctx, local, vectorToken); !errors.Is(err, ErrAuthBlocked) {
		t.Fatalf("blocked connection with a good token: %v", err)
	}
	if a.Blocked(local.RemoteAddr) {
		t.Fatal("127.0.0.1 is blocked")
	}
	fresh := WithConnFailures(context.Background(), NewLocalConnFailures(nil))
	if _, err := a.Token(fresh, local, vectorToken); err != nil {
		t.Fatalf("a new local connection: %v", err)
	}
}

func TestAuthenticatorLimitsOffAndReload(t *testing.T) {
	ctx := context.Background()
	p := mustPolicy(t, nil, nil, nil)
	var mu sync.Mutex
	limits := RateLimits{FailureBurst: -1}
	a := NewAuthenticator(p, AuthenticatorOptions{Limits: func() RateLimits { mu.Lock(); defer mu.Unlock(); return limits }, Logger: slog.New(slog.DiscardHandler)})
	ac := Context{RemoteAddr: &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}}
	for range 20 {
		_, _ = a.Token(ctx, ac, "x")
	}
	if a.Blocked(ac.RemoteAddr) {
		t.Fatal("blocked with limiting off")
	}
	mu.Lock()
	limits = RateLimits{FailuresPerMinute: 1, FailureBurst: 1}
	mu.Unlock()
	_, _ = a.Token(ctx, ac, "x")
	// Same /64, another address: shares the key.
	if !a.Blocked(&net.UDPAddr{IP: net.ParseIP("2001:db8::2"), Port: 1}) {
		t.Fatal("reloaded limits not applied, or /64 not shared")
	}
	// No IP address: never limited.
	for range 10 {
		_, _ = a.Token(ctx, Context{}, "x")
	}
	if a.Blocked(nil) {
		t.Fatal("nil address blocked")
	}
}

func TestAuditLines(t *testing.T) {
	ctx := context.Background()
	p := mustPolicy(t, []PeerEntry{{PeerID: "alice", Fingerprints: []string{fpA}, Scopes: []string{"a"}, Enabled: true}},
		[]APIKeyEntry{{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"r"}}}, nil)
	var logs bytes.Buffer
	a := NewAuthenticator(p, AuthenticatorOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ac := Context{ALPN: "alknet/call", Fingerprint: fpA, RemoteAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 9}}
	if _, ok := a.Fingerprint(ctx, ac); !ok {
		t.Fatal("fingerprint")
	}
	if _, ok := a.Fingerprint(ctx, Context{Fingerprint: fpB}); ok {
		t.Fatal("unknown fingerprint resolved")
	}
	if _, err := a.Token(ctx, ac, vectorToken); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(ctx, Context{ALPN: "alknet/call", RemoteAddr: &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 1}}, "alk_wrong-token"); err == nil {
		t.Fatal("wrong token accepted")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 audit lines (unknown fingerprints are not attempts), got:\n%s", logs.String())
	}
	keys := regexp.MustCompile(`(\w+)=`)
	for _, l := range lines {
		var got []string
		for _, m := range keys.FindAllStringSubmatch(l, -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, ",") != "time,level,msg,remote_addr,fingerprint,peer_id,alpn,result" {
			t.Fatalf("keys %v in %q", got, l)
		}
	}
	if !strings.Contains(lines[0], `msg=auth remote_addr=2001:db8::7 fingerprint=`+fpA+` peer_id=alice alpn=alknet/call result=accept`) {
		t.Fatalf("line 0: %s", lines[0])
	}
	if !strings.Contains(lines[1], `peer_id=alk_test alpn=alknet/call result=accept`) {
		t.Fatalf("line 1: %s", lines[1])
	}
	fail2ban := regexp.MustCompile(`^.* msg=auth remote_addr=203\.0\.113\.7 .* result=(reject|blocked)$`)
	if !fail2ban.MatchString(lines[2]) {
		t.Fatalf("fail2ban regex does not match %q", lines[2])
	}
	for _, secret := range []string{vectorToken, vectorHash, vectorHash[7:], "alk_wrong-token"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("log contains a token or hash: %s", secret)
		}
	}
}

func TestAuthenticatorAsProvider(t *testing.T) {
	p := mustPolicy(t, nil, []APIKeyEntry{{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"r"}}}, nil)
	a := NewAuthenticator(p, AuthenticatorOptions{Logger: slog.New(slog.DiscardHandler)})
	ctx := NewContext(context.Background(), Context{ALPN: "alknet/call"})
	if ac, ok := FromContext(ctx); !ok || ac.ALPN != "alknet/call" {
		t.Fatal("context round trip")
	}
	var ip IdentityProvider = a
	if id, ok := ip.FromToken(ctx, vectorToken); !ok || id.ID != vectorPrefix {
		t.Fatal("FromToken through the authenticator")
	}
	if !a.Revalidate(ctx, Identity{ID: vectorPrefix, Scopes: []string{"r"}}) {
		t.Fatal("Revalidate through the authenticator")
	}
}

// TestConstantTimeCompareOnlyInHelper is a source check: token
// hashes are compared only through ctEqual.
func TestConstantTimeCompareOnlyInHelper(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	hashCompare := regexp.MustCompile(`(Hash|hash|h)\s*[!=]=|[!=]=\s*(\w+\.)?(Hash|AuthTokenHash|hash)\b|bytes\.Equal\(|subtle\.`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if f == "ctequal.go" && strings.Contains(line, "subtle.ConstantTimeCompare") {
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			// A comparison with the empty string only asks whether a hash is configured.
			if hashCompare.MatchString(strings.NewReplacer(`!= ""`, "", `== ""`, "").Replace(line)) {
				t.Errorf("%s:%d compares a secret-derived value outside ctEqual: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// iroh spec §7 (auth): a connection without an IP address is limited by its fingerprint;
// another fingerprint, and every IP, stay unblocked.
func TestFingerprintKeyedFailures(t *testing.T) {
	p := mustPolicy(t, nil, []APIKeyEntry{{Prefix: vectorPrefix, Hash: vectorHash, Scopes: []string{"r"}}}, nil)
	a := NewAuthenticator(p, AuthenticatorOptions{Limits: func() RateLimits { return RateLimits{FailuresPerMinute: 6, FailureBurst: 3} },
		Logger: slog.New(slog.DiscardHandler)})
	relayed := Context{ALPN: "alknet/call", Fingerprint: "ed25519:" + strings.Repeat("ab", 32)}
	other := Context{ALPN: "alknet/call", Fingerprint: "ed25519:" + strings.Repeat("cd", 32)}
	for i := range 3 {
		if _, err := a.Token(context.Background(), relayed, "alk_nope-nope"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if !a.BlockedPeer(relayed) {
		t.Fatal("a fingerprint past its budget is not blocked")
	}
	if _, err := a.Token(context.Background(), relayed, vectorToken); !errors.Is(err, ErrAuthBlocked) {
		t.Fatalf("blocked fingerprint with a good token: %v", err)
	}
	if a.BlockedPeer(other) || a.Blocked(nil) {
		t.Fatal("another fingerprint, or no address at all, is blocked")
	}
	if _, err := a.Token(context.Background(), other, vectorToken); err != nil {
		t.Fatalf("another fingerprint: %v", err)
	}
}
