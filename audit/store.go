package audit

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// Store keeps audit records in a database (the state store), as chains:
// each samd process (each replica of a cluster) appends to a chain of its
// own, numbered from 1.
type Store interface {
	// AppendAudit stores one record (its line, exactly) durably; a
	// sequence number already stored is an error.
	AppendAudit(ctx context.Context, chain string, seq uint64, record []byte) error
	// AuditRecords calls fn with a chain's records in the order they were
	// stored.
	AuditRecords(ctx context.Context, chain string, fn func(record []byte) error) error
	// AuditChains lists the chains.
	AuditChains(ctx context.Context) ([]string, error)
}

// StoreSink writes the audit log into a Store: every record is committed
// before Append returns, so a request is answered only after its record
// is durable, as with the file sink.
type StoreSink struct {
	st   Store
	name string

	mu     sync.Mutex
	chain  chain
	opened Tail
	closed bool
}

// OpenStore verifies a chain in the store and continues it.
func OpenStore(ctx context.Context, st Store, name string) (*StoreSink, error) {
	if name == "" {
		return nil, fmt.Errorf("audit: a chain needs a name")
	}
	s := &StoreSink{st: st, name: name}
	// The chain is verified as it streams by, in constant memory, as the
	// file sink verifies its file.
	n := 0
	err := st.AuditRecords(ctx, name, func(b []byte) error {
		n++
		r, err := parse(b)
		if err != nil {
			return &BrokenError{Seq: r.Seq, Line: n, Reason: err.Error()}
		}
		if err := check(&r, s.chain.seq+1, s.chain.prev, n); err != nil {
			return err
		}
		s.chain.commit(&r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: refusing to continue chain %s: %w", name, err)
	}
	s.opened = s.chain.tail()
	return s, nil
}

// Opened is how the chain ended when the sink opened it, as
// FileSink.Opened.
func (s *StoreSink) Opened() Tail { return s.opened }

// Append numbers, chains and stores r, then a checkpoint if one is due.
func (s *StoreSink) Append(ctx context.Context, r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.put(ctx, r); err != nil {
		return err
	}
	if s.chain.due() {
		cp, err := s.chain.checkpoint(false)
		if err == nil && cp != nil {
			err = s.put(ctx, cp)
		}
		if err != nil {
			s.chain.failed(err)
		}
	}
	return nil
}

// put stores one record; s.mu is held.
func (s *StoreSink) put(ctx context.Context, r *Record) error {
	if s.closed {
		return ErrClosed
	}
	line, err := s.chain.next(r)
	if err != nil {
		return err
	}
	if err := s.st.AppendAudit(context.WithoutCancel(ctx), s.name, r.Seq, line); err != nil {
		return fmt.Errorf("audit: store: %w", err)
	}
	s.chain.commit(r)
	return nil
}

// SetCheckpoints makes the sink sign checkpoints with c, as
// FileSink.SetCheckpoints does.
func (s *StoreSink) SetCheckpoints(c CheckpointSigner) {
	s.mu.Lock()
	s.chain.cp = &c
	s.mu.Unlock()
}

// Checkpoint appends a checkpoint record over the last record, as
// FileSink.Checkpoint does.
func (s *StoreSink) Checkpoint(ctx context.Context, final bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	cp, err := s.chain.checkpoint(final)
	if err != nil || cp == nil {
		return err
	}
	return s.put(ctx, cp)
}

// Close stops appends.
func (s *StoreSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// ReadStore reads a chain's records in stored order (verify them with
// Verify: a deleted, reordered or edited record breaks the chain there).
func ReadStore(ctx context.Context, st Store, chain string) ([]Record, error) {
	var buf bytes.Buffer
	err := st.AuditRecords(ctx, chain, func(b []byte) error {
		buf.Write(b)
		buf.WriteByte('\n')
		return nil
	})
	if err != nil {
		return nil, err
	}
	return Read(&buf)
}
