package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FileSink appends records as JSON lines to a file.
//
// Each record is written to the file (the kernel) before Append returns,
// so a crash of samd loses no acknowledged record. With a sync interval of
// zero, Append also returns only once the record is on disk: concurrent
// appends share fsyncs (group commit: one caller syncs everything written
// so far while the others wait for it), so durability does not serialise
// the request path. With an interval, the file is fsynced that often and on
// Close, which bounds what a power loss can take.
type FileSink struct {
	mu     sync.Mutex
	f      *os.File
	seq    uint64
	prev   string
	closed bool
	// syncEach makes every Append wait for an fsync covering its record.
	syncEach bool
	done     chan struct{}
	wg       sync.WaitGroup

	syncMu  sync.Mutex
	cond    *sync.Cond
	synced  uint64 // every record up to this seq is on disk
	syncing bool
	written atomic.Uint64 // seq of the last record written to the file
}

var _ Sink = (*FileSink)(nil)

// OpenFile opens (or creates) an audit log, verifies its chain and
// continues it. syncEvery is the fsync interval; 0 means every record.
//
// A last line without its newline is a write torn by a crash or power
// loss: its request never got an answer (a request is answered only after
// its record is written), so the torn line is cut off before the chain is
// verified.
func OpenFile(path string, syncEvery time.Duration) (*FileSink, error) {
	if err := cutTornLine(path); err != nil {
		return nil, err
	}
	last, err := verifyFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: refusing to continue %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s := &FileSink{f: f, done: make(chan struct{}), syncEach: syncEvery <= 0}
	s.cond = sync.NewCond(&s.syncMu)
	if last != nil {
		s.seq, s.prev = last.Seq, last.Hash
		s.synced = s.seq
		s.written.Store(s.seq)
	}
	if syncEvery > 0 {
		s.wg.Add(1)
		go s.syncLoop(syncEvery)
	}
	return s, nil
}

func (s *FileSink) syncLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.closed {
				_ = s.f.Sync()
			}
			s.mu.Unlock()
		}
	}
}

// Append numbers, chains and writes r, and with syncing on every record
// waits until it is on disk.
func (s *FileSink) Append(ctx context.Context, r *Record) error {
	seq, err := s.write(r)
	if err != nil || !s.syncEach {
		return err
	}
	return s.waitSynced(seq)
}

// waitSynced returns once an fsync that started after record seq was
// written has finished. The first waiter to find no fsync running starts
// one for everything written so far.
func (s *FileSink) waitSynced(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for s.synced < seq {
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		target := s.written.Load()
		s.syncMu.Unlock()
		err := s.f.Sync()
		s.syncMu.Lock()
		s.syncing = false
		s.cond.Broadcast()
		if err != nil {
			return fmt.Errorf("audit: sync: %w", err)
		}
		if target > s.synced {
			s.synced = target
		}
	}
	return nil
}

func (s *FileSink) write(r *Record) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(r)
}

// writeLocked numbers, chains and writes r; s.mu is held.
func (s *FileSink) writeLocked(r *Record) (uint64, error) {
	if s.closed {
		return 0, ErrClosed
	}
	// UTC at microsecond precision, so the JSON form is canonical and the
	// hash can be recomputed from the stored line.
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	r.Seq = s.seq + 1
	r.Prev = s.prev
	if err := seal(r); err != nil {
		return 0, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	b = append(b, '\n')
	if _, err := s.f.Write(b); err != nil {
		return 0, fmt.Errorf("audit: write: %w", err)
	}
	s.seq, s.prev = r.Seq, r.Hash
	s.written.Store(r.Seq)
	return r.Seq, nil
}

// Close syncs and closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// verifyFile checks the chain of an audit log as it streams it, in
// constant memory, and returns its last record (nil for a new log).
func verifyFile(path string) (*Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var last *Record
	prev, n := "", 0
	err = scan(f, func(line int, r Record) error {
		n++
		if err := check(&r, uint64(n), prev, line); err != nil {
			return err
		}
		prev, last = r.Hash, &r
		return nil
	})
	return last, err
}

// check verifies one record at position n (from 1) after a record whose
// hash is prev.
func check(r *Record, n uint64, prev string, line int) error {
	if r.Seq != n {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "sequence number out of order (a record was deleted, inserted or moved)"}
	}
	if r.Prev != prev {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "does not link to the record before it"}
	}
	c := *r
	if err := seal(&c); err != nil {
		return err
	}
	if c.Hash != r.Hash {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "content does not match its hash (edited)"}
	}
	return nil
}

// scan calls f with each record of a JSON-lines log and its line number.
func scan(rd io.Reader, f func(line int, r Record) error) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return &BrokenError{Line: line, Reason: "not a record: " + err.Error()}
		}
		if err := f(line, rec); err != nil {
			return err
		}
	}
	return sc.Err()
}

// ReadFile reads every record of an audit log.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read reads JSON-lines records.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	err := scan(r, func(_ int, rec Record) error {
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func cutTornLine(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || len(b) == 0 || b[len(b)-1] == '\n' {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1))
}

// Checkpoint appends a checkpoint record, signed by signer (an ECDSA
// audit key in the HSM), over the last record written, and syncs the file.
// Appends wait while it signs, so that the checkpoint directly follows the
// record it covers. A log with no record yet gets none.
func (s *FileSink) Checkpoint(_ context.Context, signer crypto.Signer, keyRef string, now time.Time) error {
	s.mu.Lock()
	covers, digest := s.seq, s.prev
	if covers == 0 || s.closed {
		s.mu.Unlock()
		return nil
	}
	sig, err := signer.Sign(rand.Reader, CheckpointDigest(covers, digest), crypto.SHA256)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	r := &Record{Time: now, RequestID: "checkpoint", Method: CheckpointMethod, Outcome: OutcomeOK,
		Checkpoint: &Checkpoint{Key: keyRef, Covers: covers, Digest: digest, Signature: hex.EncodeToString(sig)}}
	seq, err := s.writeLocked(r)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.waitSynced(seq)
}
