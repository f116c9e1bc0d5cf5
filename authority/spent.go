package authority

import (
	"crypto/sha256"
	"sync"
)

// spentTokens remembers the session tokens that may serve once, until they
// expire: a token is spent by its first use, and a second use of the same
// token is refused. It is per process: in a cluster, a token could be
// spent once on each replica, no more (README "Card sessions"). Memory is
// bounded by the tokens that can be made within a token's life: entries
// go when they expire.
type spentTokens struct {
	mu    sync.Mutex
	m     map[[sha256.Size]byte]int64 // digest of the token → its expiry, Unix seconds
	prune int                         // prune expired entries when the map reaches this size
}

// spend reports whether the token was not spent yet, and spends it.
func (s *spentTokens) spend(token string, expires, now int64) bool {
	d := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[sha256.Size]byte]int64{}
	}
	if len(s.m) >= s.prune {
		for k, e := range s.m {
			if e <= now {
				delete(s.m, k)
			}
		}
		s.prune = 2*len(s.m) + 1024
	}
	if _, ok := s.m[d]; ok {
		return false
	}
	s.m[d] = expires
	return true
}
