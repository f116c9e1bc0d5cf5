package listing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/state"
)

// SignMethod is the method of the audit records of list signatures,
// which samd makes on its own schedule rather than for a request.
const SignMethod = "samd.lists/SignList"

// batch is how many rows a document reads from the store at a time.
const batch = 5000

// run is the builder: every Tick, on the leading replica, each list that
// needs a version gets one. A failure is logged and retried at the next
// tick.
func (s *Service) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if err := s.step(s.ctx); err != nil && s.ctx.Err() == nil {
			s.cfg.Logger.Error("negative lists: building failed; retrying", "err", err)
		}
	}
}

func (s *Service) step(ctx context.Context) error {
	lead, err := s.cfg.State.Lead(ctx, "lists")
	if err != nil || !lead {
		return err
	}
	heads, err := s.cfg.State.ListHeads(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range heads {
		errs = append(errs, s.advance(ctx, h))
	}
	return errors.Join(errs...)
}

// advance publishes the list's version if its publication was cut short,
// or makes and publishes the next one when changes have waited
// BuildInterval or the current one's validity runs out.
func (s *Service) advance(ctx context.Context, h state.ListHead) error {
	now := s.cfg.Now()
	switch {
	case h.Version > h.Published:
	case h.Pending > 0 && now.Sub(h.PendingSince) >= s.cfg.BuildInterval:
	case h.Published > 0 && !now.Before(h.ValidUntil.Add(-s.cfg.RenewBefore)):
	default:
		return nil
	}
	// A version needs a signer: without one, no number is taken.
	signer, err := s.cfg.CA.ListSigner(ctx, h.Owner, now)
	if err != nil {
		s.warn(h.ListKey, err)
		return nil
	}
	n := h.Version
	if h.Version == h.Published {
		v, err := s.cfg.State.NewListVersion(ctx, state.ListVersion{ListKey: h.ListKey, Issued: now, ValidFrom: now, ValidUntil: now.Add(s.cfg.Validity)}, h.Version)
		if errkind.Of(err) == errkind.Exists {
			return nil // another replica took it
		}
		if err != nil {
			return err
		}
		n = v.Version
	}
	return s.publish(ctx, h.ListKey, n, signer)
}

// warn logs, at most once a minute per list, why a list that needs a
// version gets none.
func (s *Service) warn(key state.ListKey, err error) {
	s.mu.Lock()
	last := s.warned[key]
	due := time.Since(last) >= time.Minute
	if due {
		s.warned[key] = time.Now()
	}
	s.mu.Unlock()
	if due {
		s.cfg.Logger.Warn("negative lists: a list waits for a version it cannot be signed for", "owner", key.Owner, "kind", key.Kind, "err", err)
	}
}

// errTooLarge stops a delta that would not be smaller than the full list.
var errTooLarge = errors.New("the delta is not worth it")

// publish makes version n's document from its rows and signs it, and its
// deltas from the Deltas versions before it, and publishes them. Its
// issue time is now; it is valid for Validity, and never beyond its
// signer's certificate.
func (s *Service) publish(ctx context.Context, key state.ListKey, n uint64, signer ca.ListSigner) error {
	kind, err := lists.ParseKind(key.Kind)
	if err != nil {
		return errkind.Wrap(errkind.Internal, err, "lists: stored kind")
	}
	now := s.cfg.Now().UTC().Truncate(time.Second)
	h := lists.Header{Kind: kind, Owner: key.Owner, Version: n, Issued: now, ValidFrom: now, ValidUntil: now.Add(s.cfg.Validity)}
	if end := signer.Chain[0].NotAfter.UTC().Truncate(time.Second); h.ValidUntil.After(end) {
		h.ValidUntil = end
	}
	full, err := lists.WriteFull(io.Discard, h, s.entries(ctx, key, n))
	if err != nil {
		return err
	}
	sig, err := s.sign(ctx, signer, full)
	if err != nil {
		return err
	}
	v := state.ListVersion{ListKey: key, Version: n, Issued: h.Issued, ValidFrom: h.ValidFrom, ValidUntil: h.ValidUntil, Entries: full.Records,
		Size: full.Size, SHA256: full.SHA256.String(), ListDigest: full.List.String(), Signature: sig,
		Signer: signer.Record.CA + "/" + signer.Record.Serial, Published: s.cfg.Now()}
	var deltas []state.ListDelta
	for base := n - 1; base >= 1 && base+uint64(s.cfg.Deltas) >= n; base-- {
		bv, err := s.cfg.State.ListVersion(ctx, key, base)
		if err != nil || bv.Published.IsZero() {
			continue
		}
		var baseDigest lists.Digest
		if _, err := hex.Decode(baseDigest[:], []byte(bv.ListDigest)); err != nil {
			return errkind.Wrap(errkind.Internal, err, "lists: stored list digest of version %d", base)
		}
		// A delta is worth it while little changed; counted from the
		// indexes first, so that a large one is never streamed.
		limit := max(full.Records/8, 1000)
		rows, err := s.cfg.State.ListChangeRows(ctx, key, base, n)
		if err != nil {
			return err
		}
		if uint64(rows) > 2*limit {
			continue
		}
		dh := h
		dh.Base = base
		ds, err := lists.WriteDelta(io.Discard, dh, s.changes(ctx, key, base, n, limit), baseDigest, full.List)
		if errors.Is(err, errTooLarge) {
			continue
		}
		if err != nil {
			return err
		}
		dsig, err := s.sign(ctx, signer, ds)
		if err != nil {
			return err
		}
		deltas = append(deltas, state.ListDelta{ListKey: key, Base: base, Version: n, Records: ds.Records, Size: ds.Size, SHA256: ds.SHA256.String(), Signature: dsig})
	}
	err = s.cfg.State.PublishList(ctx, v, deltas, uint64(s.cfg.Deltas))
	if errkind.Of(err) == errkind.Exists {
		return nil // another replica published it first
	}
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("negative list published", "list", h.Name(), "entries", full.Records, "deltas", len(deltas), "valid_until", h.ValidUntil)
	return nil
}

// sign signs a document as the owner's list signer, with the signer's
// next counter taken durably first, and audits the signature: a
// signature that cannot be audited is not published.
func (s *Service) sign(ctx context.Context, signer ca.ListSigner, sum lists.Summary) ([]byte, error) {
	counter, err := s.cfg.State.NextSequence(ctx, "list-signer/"+signer.Record.CA+"/"+signer.Record.Serial, 1<<62)
	if err != nil {
		return nil, err
	}
	start := s.cfg.Now()
	sig, err := lists.Sign(rand.Reader, signer.Signer, signer.Chain, sum, s.cfg.Instance, counter)
	if err != nil {
		err = errkind.Wrap(errkind.Unavailable, err, "lists: sign %s", sum.Header.Name())
	}
	if s.cfg.Audit != nil {
		rec := &audit.Record{Time: start, RequestID: "lists", Method: SignMethod, Keys: []string{signer.Key}, Outcome: audit.OutcomeOK,
			Inputs:     []audit.Input{{Name: sum.Header.Name(), Size: int(sum.Size), SHA256: sum.SHA256.String()}},
			DurationUS: s.cfg.Now().Sub(start).Microseconds()}
		if err != nil {
			rec.Outcome, rec.Code, rec.Reason = audit.OutcomeError, errkind.Of(err).String(), err.Error()
		}
		if aerr := s.cfg.Audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
			return nil, errkind.Wrap(errkind.Internal, aerr, "lists: audit of %s", sum.Header.Name())
		}
	}
	return sig, err
}

// entries streams version n's entries in key order, batch by batch.
func (s *Service) entries(ctx context.Context, key state.ListKey, n uint64) iter.Seq2[lists.Entry, error] {
	return func(yield func(lists.Entry, error) bool) {
		card, target := "", ""
		for {
			b, err := s.cfg.State.ListEntries(ctx, key, n, card, target, batch)
			if err != nil {
				yield(lists.Entry{}, err)
				return
			}
			for _, e := range b {
				le, err := entry(e)
				if !yield(le, err) || err != nil {
					return
				}
			}
			if len(b) < batch {
				return
			}
			card, target = b[len(b)-1].Card, b[len(b)-1].Target
		}
	}
}

// changes streams the changes from version base to n in key order, batch
// by batch; limit, if not 0, stops it with errTooLarge after that many.
func (s *Service) changes(ctx context.Context, key state.ListKey, base, n, limit uint64) iter.Seq2[lists.Change, error] {
	return func(yield func(lists.Change, error) bool) {
		card, target := "", ""
		var count uint64
		for {
			b, err := s.cfg.State.ListChanges(ctx, key, base, n, card, target, batch)
			if err != nil {
				yield(lists.Change{}, err)
				return
			}
			if len(b) == 0 {
				return
			}
			for _, c := range b {
				if count++; limit > 0 && count > limit {
					yield(lists.Change{}, fmt.Errorf("%w: more than %d records", errTooLarge, limit))
					return
				}
				e, err := entry(c.Entry)
				op := lists.OpPut
				if c.Remove {
					op = lists.OpRemove
				}
				if !yield(lists.Change{Op: op, Entry: e}, err) || err != nil {
					return
				}
			}
			card, target = b[len(b)-1].Entry.Card, b[len(b)-1].Entry.Target
		}
	}
}
