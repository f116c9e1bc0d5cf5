package lists

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"
)

// ErrBaseMismatch is wrapped by Apply's error when the list a delta is
// applied to is not the delta's base version (its digest differs, or the
// delta removes an entry the list does not have).
var ErrBaseMismatch = errors.New("lists: the list is not the delta's base version")

// Diff yields the changes that turn the full list old into the full list
// new, by a streaming merge of the two (each must be in strictly
// increasing key order): a put for every entry of new that old lacks or
// has with other fields, a remove for every key of old that new lacks. It
// holds one entry of each list at a time.
func Diff(old, new iter.Seq2[Entry, error]) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		nextOld, stopOld := iter.Pull2(old)
		defer stopOld()
		nextNew, stopNew := iter.Pull2(new)
		defer stopNew()
		var ko, kn keyBuf
		pull := func(next func() (Entry, error, bool), k *keyBuf, which string) (Entry, bool, error) {
			e, err, ok := next()
			switch {
			case !ok:
				return Entry{}, false, nil
			case err != nil:
				return Entry{}, false, fmt.Errorf("lists: reading the %s list: %w", which, err)
			}
			if err := k.ordered(e); err != nil {
				return Entry{}, false, fmt.Errorf("lists: the %s list: %w", which, err)
			}
			return e, true, nil
		}
		o, okO, err := pull(nextOld, &ko, "old")
		if err != nil {
			yield(Change{}, err)
			return
		}
		n, okN, err := pull(nextNew, &kn, "new")
		if err != nil {
			yield(Change{}, err)
			return
		}
		for okO || okN {
			var c Change
			var emit, advO, advN bool
			switch cmp := compareOpt(o, okO, n, okN); {
			case cmp < 0: // only in old
				c, emit, advO = Change{Op: OpRemove, Entry: Entry{Card: o.Card, Target: o.Target}}, true, true
			case cmp > 0: // only in new
				c, emit, advN = Change{Op: OpPut, Entry: n}, true, true
			default:
				c, emit, advO, advN = Change{Op: OpPut, Entry: n}, !o.Equal(n), true, true
			}
			if emit && !yield(c, nil) {
				return
			}
			if advO {
				if o, okO, err = pull(nextOld, &ko, "old"); err != nil {
					yield(Change{}, err)
					return
				}
			}
			if advN {
				if n, okN, err = pull(nextNew, &kn, "new"); err != nil {
					yield(Change{}, err)
					return
				}
			}
		}
	}
}

// compareOpt compares two keys of which either may be absent (an absent
// one sorts after every present one).
func compareOpt(a Entry, okA bool, b Entry, okB bool) int {
	switch {
	case !okA:
		return 1
	case !okB:
		return -1
	}
	return Compare(a, b)
}

// Apply yields the full list that the delta gives when applied to base,
// the receiver's full list of the delta's base version (in strictly
// increasing key order, of the delta's kind), by a streaming merge. It
// checks what the delta's trailer promises: that base's list digest is
// the delta's base digest (else ErrBaseMismatch) and that the list it
// yields has the delta's result digest (else ErrMalformed). Those checks
// end the sequence, so the receiver keeps what Apply yielded only if the
// sequence ended without an error (write it aside, then replace).
//
// delta must be a Decoder positioned at its first record, over a document
// Verify accepted.
func Apply(base iter.Seq2[Entry, error], delta *Decoder) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		h := delta.Header()
		if !h.Delta() {
			yield(Entry{}, errors.New("lists: Apply needs a delta, not a full list"))
			return
		}
		nextBase, stop := iter.Pull2(base)
		defer stop()
		var kb keyBuf
		baseSum, outSum := sha256.New(), sha256.New()
		var scratch []byte
		pullBase := func() (Entry, bool, error) {
			e, err, ok := nextBase()
			switch {
			case !ok:
				return Entry{}, false, nil
			case err != nil:
				return Entry{}, false, fmt.Errorf("lists: reading the base list: %w", err)
			}
			if err := checkEntry(h.Kind, OpPut, e); err != nil {
				return Entry{}, false, fmt.Errorf("%w: base entry %x/%x: %v", ErrBaseMismatch, e.Card, e.Target, err)
			}
			if err := kb.ordered(e); err != nil {
				return Entry{}, false, fmt.Errorf("%w: the base list: %v", ErrBaseMismatch, err)
			}
			scratch = appendRecord(scratch[:0], OpPut, e)
			baseSum.Write(scratch)
			return e, true, nil
		}
		pullDelta := func() (Change, bool, error) {
			c, err := delta.Next()
			switch {
			case err == nil:
				return c, true, nil
			case err == io.EOF:
				return Change{}, false, nil
			}
			return Change{}, false, err
		}
		out := func(e Entry) bool {
			scratch = appendRecord(scratch[:0], OpPut, e)
			outSum.Write(scratch)
			return yield(e, nil)
		}
		b, okB, err := pullBase()
		if err != nil {
			yield(Entry{}, err)
			return
		}
		c, okC, err := pullDelta()
		if err != nil {
			yield(Entry{}, err)
			return
		}
		for okB || okC {
			cmp := compareOpt(b, okB, c.Entry, okC)
			switch {
			case cmp > 0 && c.Op == OpRemove:
				yield(Entry{}, fmt.Errorf("%w: the delta removes %x/%x, which the list does not have", ErrBaseMismatch, c.Entry.Card, c.Entry.Target))
				return
			case cmp > 0 || cmp == 0 && c.Op == OpPut:
				if !out(c.Entry) {
					return
				}
			case cmp < 0:
				if !out(b) {
					return
				}
			}
			if cmp <= 0 {
				if b, okB, err = pullBase(); err != nil {
					yield(Entry{}, err)
					return
				}
			}
			if cmp >= 0 {
				if c, okC, err = pullDelta(); err != nil {
					yield(Entry{}, err)
					return
				}
			}
		}
		t, err := delta.Trailer()
		switch {
		case err != nil:
			yield(Entry{}, err)
		case !bytes.Equal(baseSum.Sum(nil), t.Base[:]):
			yield(Entry{}, fmt.Errorf("%w: the list's digest is not the delta's base digest %s", ErrBaseMismatch, t.Base))
		case !bytes.Equal(outSum.Sum(nil), t.List[:]):
			yield(Entry{}, fmt.Errorf("%w: the list the delta gives is not its result digest %s", ErrMalformed, t.List))
		}
	}
}
