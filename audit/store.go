package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Store keeps audit records in a database (the state store), as chains:
// each samd process (each replica of a cluster) appends to a chain of its
// own, numbered from 1.
type Store interface {
	// AuditTail returns a chain's last sequence number and hash (0, ""
	// for a new chain).
	AuditTail(ctx context.Context, chain string) (seq uint64, hash string, err error)
	// AppendAudit stores one record (its JSON, as hashed) durably; a
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
	st    Store
	chain string

	mu     sync.Mutex
	seq    uint64
	prev   string
	closed bool
}

// OpenStore continues a chain in the store.
func OpenStore(ctx context.Context, st Store, chain string) (*StoreSink, error) {
	if chain == "" {
		return nil, fmt.Errorf("audit: a chain needs a name")
	}
	seq, prev, err := st.AuditTail(ctx, chain)
	if err != nil {
		return nil, err
	}
	return &StoreSink{st: st, chain: chain, seq: seq, prev: prev}, nil
}

// Append numbers, chains and stores r.
func (s *StoreSink) Append(ctx context.Context, r *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(ctx, r)
}

func (s *StoreSink) appendLocked(ctx context.Context, r *Record) error {
	if s.closed {
		return ErrClosed
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	r.Seq = s.seq + 1
	r.Prev = s.prev
	if err := seal(r); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.st.AppendAudit(context.WithoutCancel(ctx), s.chain, r.Seq, b); err != nil {
		return fmt.Errorf("audit: store: %w", err)
	}
	s.seq, s.prev = r.Seq, r.Hash
	return nil
}

// Checkpoint appends a checkpoint record signed by signer over the last
// record, as FileSink.Checkpoint does.
func (s *StoreSink) Checkpoint(ctx context.Context, signer crypto.Signer, keyRef string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	covers, digest := s.seq, s.prev
	if covers == 0 || s.closed {
		return nil
	}
	sig, err := signer.Sign(rand.Reader, CheckpointDigest(covers, digest), crypto.SHA256)
	if err != nil {
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	return s.appendLocked(ctx, &Record{Time: now, RequestID: "checkpoint", Method: CheckpointMethod, Outcome: OutcomeOK,
		Checkpoint: &Checkpoint{Key: keyRef, Covers: covers, Digest: digest, Signature: hex.EncodeToString(sig)}})
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
