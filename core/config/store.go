package config

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alkdev/alknet/core/auth"
)

// DynamicConfig is the hot-reloadable part: who may connect and how failed auth is limited.
type DynamicConfig struct {
	Peers      []auth.PeerEntry
	APIKeys    []auth.APIKeyEntry
	RateLimits auth.RateLimits
}

// Clone returns a deep copy.
func (d DynamicConfig) Clone() DynamicConfig {
	out := DynamicConfig{RateLimits: d.RateLimits}
	for _, p := range d.Peers {
		out.Peers = append(out.Peers, p.Clone())
	}
	for _, k := range d.APIKeys {
		out.APIKeys = append(out.APIKeys, k.Clone())
	}
	return out
}

type snapshot struct {
	cfg    *DynamicConfig
	policy *auth.Policy
}

// Store publishes DynamicConfig snapshots atomically: readers never lock, and every lookup
// that starts after Reload returns sees the new snapshot.
type Store struct {
	cur  atomic.Pointer[snapshot]
	now  func() time.Time
	mu   sync.Mutex // serialises Reload and subscriber changes
	subs map[int]func(old, new *DynamicConfig)
	next int
}

// NewStore validates d and returns a store holding it.
func NewStore(d DynamicConfig) (*Store, error) {
	s := &Store{now: time.Now, subs: make(map[int]func(old, new *DynamicConfig))}
	snap, err := s.build(d)
	if err != nil {
		return nil, err
	}
	s.cur.Store(snap)
	return s, nil
}

func (s *Store) build(d DynamicConfig) (*snapshot, error) {
	c := d.Clone()
	var errs []error
	if c.RateLimits.FailuresPerMinute < 0 && c.RateLimits.FailureBurst >= 0 {
		errs = append(errs, errors.New("rate_limits.failures_per_minute: must not be negative"))
	}
	p, err := auth.NewPolicy(c.Peers, c.APIKeys, s.now)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return &snapshot{cfg: &c, policy: p}, nil
}

// Load returns the current snapshot; callers must not modify it.
func (s *Store) Load() *DynamicConfig { return s.cur.Load().cfg }

// Reload validates d and publishes it with one atomic store. On error the previous snapshot
// stays in force and the error lists every problem. Subscribers run after the swap, in order.
func (s *Store) Reload(d DynamicConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.build(d)
	if err != nil {
		return err
	}
	old := s.cur.Swap(snap)
	ids := make([]int, 0, len(s.subs))
	for id := range s.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s.subs[id](old.cfg, snap.cfg)
	}
	return nil
}

// Subscribe registers fn to run after each successful Reload (it must not block).
func (s *Store) Subscribe(fn func(old, new *DynamicConfig)) (cancel func()) {
	s.mu.Lock()
	id := s.next
	s.next++
	s.subs[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

// RateLimits returns the current auth rate limits (for auth.NewAuthenticator).
func (s *Store) RateLimits() auth.RateLimits { return s.Load().RateLimits }

// Provider returns an IdentityProvider (and Revalidator) that reads the current snapshot at
// every lookup.
func (s *Store) Provider() auth.IdentityProvider { return storeProvider{s} }

type storeProvider struct{ s *Store }

func (p storeProvider) FromFingerprint(ctx context.Context, fp string) (auth.Identity, bool) {
	return p.s.cur.Load().policy.FromFingerprint(ctx, fp)
}

func (p storeProvider) FromToken(ctx context.Context, t string) (auth.Identity, bool) {
	return p.s.cur.Load().policy.FromToken(ctx, t)
}

func (p storeProvider) Revalidate(ctx context.Context, id auth.Identity) bool {
	return p.s.cur.Load().policy.Revalidate(ctx, id)
}
