package conn

import (
	"sync"

	"github.com/alkdev/alknet/core/auth"
)

// idSlot holds a connection identity that is set at most once.
type idSlot struct {
	mu sync.Mutex
	id *auth.Identity
}

func (s *idSlot) SetIdentity(id auth.Identity) error {
	s.mu.Lock()
	if s.id != nil {
		s.mu.Unlock()
		return ErrIdentityAlreadySet
	}
	c := id.Clone()
	s.id = &c
	s.mu.Unlock()
	return nil
}

func (s *idSlot) Identity() (auth.Identity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == nil {
		return auth.Identity{}, false
	}
	return s.id.Clone(), true
}
