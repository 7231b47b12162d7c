package conn

import (
	"sync/atomic"

	"github.com/alkdev/alknet/core/auth"
)

// idSlot holds a connection identity that is set at most once. Reads are lock-free: every
// request on a connection reads it, concurrently.
type idSlot struct {
	id atomic.Pointer[auth.Identity]
}

func (s *idSlot) SetIdentity(id auth.Identity) error {
	c := id.Clone()
	if !s.id.CompareAndSwap(nil, &c) {
		return ErrIdentityAlreadySet
	}
	return nil
}

func (s *idSlot) Identity() (auth.Identity, bool) {
	id := s.id.Load()
	if id == nil {
		return auth.Identity{}, false
	}
	return id.Clone(), true
}
