package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// appends share writes and fsyncs (group commit: records are numbered and
// chained as they come, and one caller writes every line chained so far
// with one write and one fsync while the others wait for it), so
// durability does not serialise the request path. A write or fsync that
// fails fails every record it carried and every later one: the chain in
// memory has then run ahead of the file, and samd refuses requests until
// it is restarted on the file as it is (a torn last line is cut then).
// With an interval, each record is written before Append returns, the
// file is fsynced that often and on Close, which bounds what a power loss
// can take.
type FileSink struct {
	mu     sync.Mutex
	f      *os.File
	chain  chain
	opened Tail
	closed bool
	// syncEach makes every Append wait for an fsync covering its record.
	syncEach bool
	done     chan struct{}
	wg       sync.WaitGroup
	// pending (syncEach) holds the lines chained and not yet written, up
	// to record pendingSeq; spare is the buffer the next group fills.
	// broken is why the file fell behind the chain: every Append fails.
	pending, spare []byte
	pendingSeq     uint64
	broken         error

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
	c, err := verifyFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: refusing to continue %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s := &FileSink{f: f, chain: c, opened: c.tail(), done: make(chan struct{}), syncEach: syncEvery <= 0}
	s.cond = sync.NewCond(&s.syncMu)
	s.synced = c.seq
	s.written.Store(c.seq)
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

// waitSynced returns once record seq is on disk. The first waiter to
// find no group under way leads the next: it writes every line chained
// so far and fsyncs them, while records chained meanwhile wait for the
// group after.
func (s *FileSink) waitSynced(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for s.synced < seq {
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		s.syncMu.Unlock()
		target, err := s.flush()
		if err == nil {
			if err = s.f.Sync(); err != nil {
				err = fmt.Errorf("audit: sync: %w", err)
				s.fail(err)
			}
		}
		s.syncMu.Lock()
		s.syncing = false
		s.cond.Broadcast()
		if err != nil {
			return err
		}
		if target > s.synced {
			s.synced = target
		}
	}
	return nil
}

// flush writes the pending lines (syncEach) and returns the sequence
// number of the last record written so far. Only a group's leader (or
// Close, once no group is under way) calls it, so lines reach the file in
// their order.
func (s *FileSink) flush() (uint64, error) {
	s.mu.Lock()
	if s.broken != nil {
		s.mu.Unlock()
		return 0, s.broken
	}
	buf, target := s.pending, s.pendingSeq
	s.pending, s.spare = s.spare[:0], nil
	s.mu.Unlock()
	if len(buf) == 0 {
		return s.written.Load(), nil
	}
	if _, err := s.f.Write(buf); err != nil {
		err = fmt.Errorf("audit: write: %w", err)
		s.fail(err)
		return 0, err
	}
	s.written.Store(target)
	s.mu.Lock()
	s.spare = buf[:0]
	s.mu.Unlock()
	return target, nil
}

// fail breaks the sink: the file is behind the chain.
func (s *FileSink) fail(err error) {
	s.mu.Lock()
	if s.broken == nil {
		s.broken = err
	}
	s.mu.Unlock()
}

func (s *FileSink) write(r *Record) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(r)
}

// writeLocked numbers, chains and writes r, then a checkpoint if one is
// due; s.mu is held. It returns the sequence number of the last record
// written.
func (s *FileSink) writeLocked(r *Record) (uint64, error) {
	if err := s.put(r); err != nil {
		return 0, err
	}
	if s.chain.due() {
		cp, err := s.chain.checkpoint(false)
		if err == nil && cp != nil {
			err = s.put(cp)
		}
		if err != nil {
			// The request's record is written; the checkpoint is retried
			// after another Every records, or on demand.
			s.chain.failed(err)
		}
	}
	return s.chain.seq, nil
}

// put chains one record and writes it (syncEach: queues it for its
// group's write); s.mu is held.
func (s *FileSink) put(r *Record) error {
	switch {
	case s.closed:
		return ErrClosed
	case s.broken != nil:
		return s.broken
	}
	line, err := s.chain.next(r)
	if err != nil {
		return err
	}
	if s.syncEach {
		s.pending = append(append(s.pending, line...), '\n')
		s.chain.commit(r)
		s.pendingSeq = r.Seq
		return nil
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	s.chain.commit(r)
	s.written.Store(r.Seq)
	return nil
}

// Close writes what is pending, syncs and closes the file.
func (s *FileSink) Close() error {
	// No group is under way once Close holds syncing: the lines pending
	// are written here, in order.
	s.syncMu.Lock()
	for s.syncing {
		s.cond.Wait()
	}
	s.syncing = true
	s.syncMu.Unlock()
	defer func() {
		s.syncMu.Lock()
		s.syncing = false
		s.cond.Broadcast()
		s.syncMu.Unlock()
	}()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	_, werr := s.flush()
	s.mu.Lock()
	s.closed = true
	close(s.done)
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = werr
	}
	s.mu.Unlock()
	if err == nil {
		// Appends waiting for a group are on disk too.
		s.syncMu.Lock()
		s.synced = max(s.synced, s.written.Load())
		s.syncMu.Unlock()
	}
	s.wg.Wait()
	return err
}

// verifyFile checks the chain of an audit log as it streams it, in
// constant memory, and returns the chain's state at its end.
func verifyFile(path string) (chain, error) {
	var c chain
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	defer f.Close()
	err = scan(f, func(line int, r Record) error {
		if err := check(&r, c.seq+1, c.prev, line); err != nil {
			return err
		}
		c.commit(&r)
		return nil
	})
	return c, err
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

// Opened is how the log ended when the sink opened it: a log that does
// not end with a final checkpoint was left by a crash, or cut.
func (s *FileSink) Opened() Tail { return s.opened }

// SetCheckpoints makes the sink sign checkpoints with c: one by itself
// after every c.Every records, and one whenever Checkpoint is called.
func (s *FileSink) SetCheckpoints(c CheckpointSigner) {
	s.mu.Lock()
	s.chain.cp = &c
	s.mu.Unlock()
}

// Checkpoint appends a checkpoint record over the last record written, if
// any was written since the last checkpoint (or, with final, unless the
// log already ends with a final one), and syncs the file. A final
// checkpoint is the last record of a clean shutdown. Appends wait while it
// signs, so that the checkpoint directly follows the record it covers.
// Without SetCheckpoints it does nothing.
func (s *FileSink) Checkpoint(_ context.Context, final bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	cp, err := s.chain.checkpoint(final)
	if err == nil && cp != nil {
		err = s.put(cp)
	}
	seq := s.chain.seq
	s.mu.Unlock()
	if err != nil || cp == nil {
		return err
	}
	return s.waitSynced(seq)
}
