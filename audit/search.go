package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"os"
)

// ChainSearch is what a search found in one chain (one log): the newest
// records that matched, among those it verified, and how far the chain
// verified.
type ChainSearch struct {
	Name string
	// Records are the newest matches, newest first; Matched counts every
	// match.
	Records []Record
	Matched int
	// Read is the number of records read and verified: all of them, or
	// those before Broken.
	Read uint64
	// Broken is the first record that breaks the chain (or fails its
	// checkpoint); nil if the chain verified to its end. Nothing at or
	// after it is returned.
	Broken *BrokenError
	// Coverage is how far the verified checkpoints reach; nil without a
	// checkpoint key to verify them with.
	Coverage *Coverage
}

// Searcher verifies a chain record by record, as [Verify] and
// [VerifyCheckpoints] do, and keeps the newest records that match a
// filter: it holds at most limit records, whatever the chain's length.
// It is not safe for concurrent use.
type Searcher struct {
	f     Filter
	limit int
	pub   *ecdsa.PublicKey
	res   ChainSearch
	prev  Record
	cov   Coverage
	// ring holds the newest matches; next is where the next one goes.
	ring []Record
	next int
}

// NewSearcher searches the chain named name for records that match f,
// keeping the newest limit of them (at least one). With pub, every
// checkpoint must verify under it, and the result says how far the
// checkpoints reach.
func NewSearcher(name string, f Filter, limit int, pub *ecdsa.PublicKey) *Searcher {
	return &Searcher{f: f, limit: max(limit, 1), pub: pub, res: ChainSearch{Name: name}}
}

// Line verifies the chain's next stored line (without its newline). Once
// the chain is broken, it returns the [*BrokenError] and reads nothing
// more: a record is matched only once it and every record before it
// verified.
func (s *Searcher) Line(b []byte) error {
	if s.res.Broken != nil {
		return s.res.Broken
	}
	line := int(s.res.Read) + 1
	r, err := parse(b)
	if err == nil {
		err = check(&r, s.res.Read+1, s.prev.Hash, line)
	} else {
		err = &BrokenError{Seq: r.Seq, Line: line, Reason: err.Error()}
	}
	if err == nil && s.pub != nil {
		var prev *Record
		if s.res.Read > 0 {
			prev = &s.prev
		}
		err = s.cov.add(&r, prev, line, s.pub)
	}
	if err != nil {
		var be *BrokenError
		if !errors.As(err, &be) {
			be = &BrokenError{Seq: r.Seq, Line: line, Reason: err.Error()}
		}
		s.res.Broken = be
		return be
	}
	s.res.Read++
	r.line = nil // the record is verified; its stored bytes are not kept
	s.prev = r
	if s.f.Match(&r) {
		s.res.Matched++
		if len(s.ring) < s.limit {
			s.ring = append(s.ring, r)
		} else {
			s.ring[s.next] = r
		}
		s.next = (s.next + 1) % s.limit
	}
	return nil
}

// Result is what the search found so far.
func (s *Searcher) Result() ChainSearch {
	res := s.res
	res.Records = make([]Record, 0, len(s.ring))
	for i := 1; i <= len(s.ring); i++ {
		// Newest first: the one before next, then backwards round the ring.
		res.Records = append(res.Records, s.ring[(s.next-i+len(s.ring))%len(s.ring)])
	}
	if s.pub != nil {
		cov := s.cov
		res.Coverage = &cov
	}
	return res
}

// SearchFile searches an audit log file until ctx ends. A last line
// without its newline (a record being written as the file is read) is not
// read; a file that does not exist is an empty chain.
func SearchFile(ctx context.Context, path string, f Filter, limit int, pub *ecdsa.PublicKey) (ChainSearch, error) {
	s := NewSearcher(path, f, limit, pub)
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return s.Result(), nil
	}
	if err != nil {
		return ChainSearch{}, err
	}
	defer fh.Close()
	rd := bufio.NewReaderSize(fh, 64<<10)
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ChainSearch{}, ctx.Err()
		}
		b, err := rd.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return s.Result(), nil // b, if any, is a line still being written
		}
		if err != nil {
			return ChainSearch{}, err
		}
		if s.Line(bytes.TrimSuffix(b, []byte{'\n'})) != nil {
			return s.Result(), nil
		}
	}
}

// errStop ends a store's iteration at a broken record.
var errStop = errors.New("audit: chain broken")

// SearchStore searches a chain of a store-kept audit log.
func SearchStore(ctx context.Context, st Store, chain string, f Filter, limit int, pub *ecdsa.PublicKey) (ChainSearch, error) {
	s := NewSearcher(chain, f, limit, pub)
	err := st.AuditRecords(ctx, chain, func(b []byte) error {
		if s.Line(b) != nil {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return ChainSearch{}, err
	}
	return s.Result(), nil
}
