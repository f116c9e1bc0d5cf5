package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Negative lists keep three kinds of rows:
//
//   - list_pending: the changes asked for and not yet in a version, in
//     the order asked (n);
//   - list_entry: every entry's lives, each valid from the version that
//     made it (from_version) until the version that changed or removed
//     it (to_version, exclusive; NULL: still listed). Version V of a list
//     is its rows with from_version <= V < to_version, so a version's
//     content never changes while it is served, and a delta from M to N
//     is the rows that begin or end in (M, N];
//   - list_head: the last version number taken, and how many changes wait
//     since when; the row every change and every new version of a list
//     locks first.
//
// Ops in list_pending: 1 put, 2 remove (lists.OpPut, lists.OpRemove).
const (
	opPut    = 1
	opRemove = 2
)

// lockList creates the list's head if need be and reads its last version
// with the dialect's lock: its changes and versions are made under this
// lock, one process at a time, so a change is either in a version or
// waiting for the next, never lost between.
func lockList(ctx context.Context, c conn, key state.ListKey) (uint64, error) {
	if _, err := c.exec(ctx, `INSERT INTO list_head (owner, kind, version) VALUES (?, ?, 0) ON CONFLICT (owner, kind) DO NOTHING`, key.Owner, key.Kind); err != nil {
		return 0, err
	}
	var v int64
	err := c.row(ctx, `SELECT version FROM list_head WHERE owner = ? AND kind = ?`+c.d.ForUpdate(), key.Owner, key.Kind).Scan(&v)
	return uint64(v), err
}

// ChangeList implements state.Lists. A guard with cards locks every
// head of the owner, in kind order (the only transaction that takes
// more than one head's lock), so that no change to another of its lists
// slips between the guard's reads and this change.
func (s *Store) ChangeList(ctx context.Context, key state.ListKey, changes []state.ListChange, at time.Time, guard *state.ListGuard) (int64, error) {
	var pending int64
	err := s.tx(ctx, func(c conn) error {
		if err := lockListsFor(ctx, c, key, guard); err != nil {
			return err
		}
		if err := checkGuard(ctx, c, key, guard); err != nil {
			return err
		}
		stmt, err := c.prepare(ctx, `INSERT INTO list_pending (owner, kind, card, target, op, action, reason, effective, data, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		t := c.time(at)
		if _, err := c.exec(ctx, `UPDATE list_head SET pending = pending + ?, pending_since = coalesce(pending_since, ?) WHERE owner = ? AND kind = ?`,
			len(changes), t, key.Owner, key.Kind); err != nil {
			return err
		}
		for _, ch := range changes {
			e, op := ch.Entry, opPut
			if ch.Remove {
				e, op = state.ListEntry{Card: e.Card, Target: e.Target}, opRemove
			}
			if _, err := stmt.ExecContext(ctx, key.Owner, key.Kind, e.Card, e.Target, op, e.Action, e.Reason, e.Effective, e.Data, t); err != nil {
				return err
			}
		}
		return c.row(ctx, `SELECT pending FROM list_head WHERE owner = ? AND kind = ?`, key.Owner, key.Kind).Scan(&pending)
	})
	return pending, err
}

// lockListsFor locks the list's head, and, for a guard with cards, every
// head of its owner in kind order.
func lockListsFor(ctx context.Context, c conn, key state.ListKey, guard *state.ListGuard) error {
	if guard == nil || len(guard.Cards) == 0 {
		_, err := lockList(ctx, c, key)
		return err
	}
	if _, err := c.exec(ctx, `INSERT INTO list_head (owner, kind, version) VALUES (?, ?, 0) ON CONFLICT (owner, kind) DO NOTHING`, key.Owner, key.Kind); err != nil {
		return err
	}
	rows, err := c.rows(ctx, `SELECT kind FROM list_head WHERE owner = ? ORDER BY kind`+c.d.ForUpdate(), key.Owner)
	_, err = collect(rows, err, func(rows *sql.Rows) (string, error) {
		var k string
		return k, rows.Scan(&k)
	})
	return err
}

// checkGuard refuses a change the guard forbids: a key of the list, or
// an entry of a card in any of the owner's lists, that holds the guard's
// action and that the guard's Allow refuses (KindDenied without Allow).
func checkGuard(ctx context.Context, c conn, key state.ListKey, g *state.ListGuard) error {
	if g == nil {
		return nil
	}
	refuse := func(k state.ListKey, e state.ListEntry) error {
		if g.Allow != nil {
			return g.Allow(e)
		}
		return errkind.Errorf(errkind.Denied, "lists: %s/%s holds action %d for card %s (target %q): only its issuer with list.block-permanent changes it (APTA §5.5.1.7)",
			k.Kind, k.Owner, g.Action, e.Card, e.Target)
	}
	if len(g.Cards) > 0 {
		rows, err := c.rows(ctx, `SELECT kind FROM list_head WHERE owner = ? ORDER BY kind`, key.Owner)
		kinds, err := collect(rows, err, func(rows *sql.Rows) (string, error) {
			var k string
			return k, rows.Scan(&k)
		})
		if err != nil {
			return err
		}
		for _, kind := range kinds {
			k := state.ListKey{Owner: key.Owner, Kind: kind}
			held, err := holding(ctx, c, k, g.Action, g.Cards)
			if err != nil {
				return err
			}
			for _, e := range held {
				if err := refuse(k, e); err != nil {
					return err
				}
			}
		}
	}
	if len(g.Keys) == 0 {
		return nil
	}
	guarded := map[[2]string]bool{}
	var cards []string
	for _, e := range g.Keys {
		guarded[[2]string{e.Card, e.Target}] = true
		cards = append(cards, e.Card)
	}
	held, err := holding(ctx, c, key, g.Action, cards)
	if err != nil {
		return err
	}
	for _, e := range held {
		if guarded[[2]string{e.Card, e.Target}] {
			if err := refuse(key, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// holdingBatch is how many cards one ListHolding query names.
const holdingBatch = 500

// ListHolding implements state.Lists.
func (s *Store) ListHolding(ctx context.Context, key state.ListKey, action int, cards []string) ([]state.ListEntry, error) {
	return holding(ctx, s.read(), key, action, cards)
}

// holding reads, per batch of cards, the listed entries and the waiting
// changes of those cards; a key's last waiting change decides, else its
// listed entry.
func holding(ctx context.Context, c conn, key state.ListKey, action int, cards []string) ([]state.ListEntry, error) {
	var out []state.ListEntry
	for len(cards) > 0 {
		b := cards[:min(len(cards), holdingBatch)]
		cards = cards[len(b):]
		in := strings.Repeat("?, ", len(b)-1) + "?"
		args := []any{key.Owner, key.Kind}
		for _, card := range b {
			args = append(args, card)
		}
		rows, err := c.rows(ctx, `SELECT card, target, action, reason, effective, data FROM list_entry
			WHERE owner = ? AND kind = ? AND to_version IS NULL AND card IN (`+in+`)`, args...)
		listed, err := collect(rows, err, func(rows *sql.Rows) (state.ListEntry, error) {
			var e state.ListEntry
			err := rows.Scan(&e.Card, &e.Target, &e.Action, &e.Reason, &e.Effective, &e.Data)
			return e, err
		})
		if err != nil {
			return nil, err
		}
		rows, err = c.rows(ctx, `SELECT card, target, op, action, reason, effective, data FROM list_pending
			WHERE owner = ? AND kind = ? AND card IN (`+in+`) ORDER BY n`, args...)
		type change struct {
			e  state.ListEntry
			op int
		}
		waiting, err := collect(rows, err, func(rows *sql.Rows) (change, error) {
			var ch change
			err := rows.Scan(&ch.e.Card, &ch.e.Target, &ch.op, &ch.e.Action, &ch.e.Reason, &ch.e.Effective, &ch.e.Data)
			return ch, err
		})
		if err != nil {
			return nil, err
		}
		next := map[[2]string]*state.ListEntry{}
		for i := range listed {
			next[[2]string{listed[i].Card, listed[i].Target}] = &listed[i]
		}
		for i := range waiting { // in the order asked: the last one stands
			k := [2]string{waiting[i].e.Card, waiting[i].e.Target}
			if waiting[i].op == opPut {
				next[k] = &waiting[i].e
			} else {
				delete(next, k)
			}
		}
		for _, e := range next {
			if e.Action == action {
				out = append(out, *e)
			}
		}
	}
	return out, nil
}

// ListHeads implements state.Lists.
func (s *Store) ListHeads(ctx context.Context) ([]state.ListHead, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT h.owner, h.kind, h.version,
		coalesce((SELECT max(v.version) FROM list_version v WHERE v.owner = h.owner AND v.kind = h.kind AND v.published IS NOT NULL), 0),
		(SELECT v.valid_until FROM list_version v WHERE v.owner = h.owner AND v.kind = h.kind AND v.published IS NOT NULL ORDER BY v.version DESC LIMIT 1),
		h.pending, h.pending_since FROM list_head h ORDER BY h.owner, h.kind`)
	return collect(rows, err, func(rows *sql.Rows) (state.ListHead, error) {
		var h state.ListHead
		var v, p int64
		err := rows.Scan(&h.Owner, &h.Kind, &v, &p, c.scanTime(&h.ValidUntil), &h.Pending, c.scanTime(&h.PendingSince))
		h.Version, h.Published = uint64(v), uint64(p)
		return h, err
	})
}

// The last waiting change of each key, up to change hw: the one a new
// version applies.
const lastPending = `l.owner = ? AND l.kind = ? AND l.n <= ?
	AND l.n = (SELECT max(m.n) FROM list_pending m WHERE m.owner = l.owner AND m.kind = l.kind AND m.card = l.card AND m.target = l.target AND m.n <= ?)`

// NewListVersion implements state.Lists. Under the head's lock, in one
// transaction: the entries whose last waiting change differs from them
// end at the new version; the last waiting put of each key not listed
// then begins at it; the changes applied are deleted.
func (s *Store) NewListVersion(ctx context.Context, v state.ListVersion, after uint64) (state.ListVersion, error) {
	err := s.tx(ctx, func(c conn) error {
		last, err := lockList(ctx, c, v.ListKey)
		if err != nil {
			return err
		}
		if last != after {
			return errkind.Errorf(errkind.Exists, "lists: %s/%s is at version %d, not %d", v.Kind, v.Owner, last, after)
		}
		v.Version = after + 1
		n, o, k := int64(v.Version), v.Owner, v.Kind
		var hw int64
		if err := c.row(ctx, `SELECT coalesce(max(n), 0) FROM list_pending WHERE owner = ? AND kind = ?`, o, k).Scan(&hw); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE list_entry SET to_version = ? WHERE owner = ? AND kind = ? AND to_version IS NULL AND (card, target) IN (
			SELECT l.card, l.target FROM list_pending l WHERE `+lastPending+`
			AND NOT (l.op = 1 AND EXISTS (SELECT 1 FROM list_entry e WHERE e.owner = l.owner AND e.kind = l.kind AND e.card = l.card AND e.target = l.target
				AND e.to_version IS NULL AND e.action = l.action AND e.reason = l.reason AND e.effective = l.effective AND e.data = l.data)))`,
			n, o, k, o, k, hw, hw); err != nil {
			return fmt.Errorf("ending changed entries: %w", err)
		}
		if _, err := c.exec(ctx, `INSERT INTO list_entry (owner, kind, card, target, from_version, to_version, action, reason, effective, data)
			SELECT l.owner, l.kind, l.card, l.target, CAST(? AS BIGINT), NULL, l.action, l.reason, l.effective, l.data FROM list_pending l WHERE `+lastPending+`
			AND l.op = 1 AND NOT EXISTS (SELECT 1 FROM list_entry e WHERE e.owner = l.owner AND e.kind = l.kind AND e.card = l.card AND e.target = l.target AND e.to_version IS NULL)`,
			n, o, k, hw, hw); err != nil {
			return fmt.Errorf("adding entries: %w", err)
		}
		if _, err := c.exec(ctx, `DELETE FROM list_pending WHERE owner = ? AND kind = ? AND n <= ?`, o, k, hw); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO list_version (owner, kind, version, issued, valid_from, valid_until) VALUES (?, ?, ?, ?, ?, ?)`,
			o, k, n, c.time(v.Issued), c.time(v.ValidFrom), c.time(v.ValidUntil)); err != nil {
			return err
		}
		// Under the head's lock no change arrived meanwhile: none waits now.
		_, err = c.exec(ctx, `UPDATE list_head SET version = ?, pending = 0, pending_since = NULL WHERE owner = ? AND kind = ?`, n, o, k)
		return err
	})
	return v, err
}

// ListEntries implements state.Lists.
func (s *Store) ListEntries(ctx context.Context, key state.ListKey, version uint64, afterCard, afterTarget string, limit int) ([]state.ListEntry, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT card, target, action, reason, effective, data FROM list_entry
		WHERE owner = ? AND kind = ? AND from_version <= ? AND (to_version IS NULL OR to_version > ?) AND (card, target) > (?, ?)
		ORDER BY card, target LIMIT ?`, key.Owner, key.Kind, int64(version), int64(version), afterCard, afterTarget, limit)
	return collect(rows, err, func(rows *sql.Rows) (state.ListEntry, error) {
		var e state.ListEntry
		err := rows.Scan(&e.Card, &e.Target, &e.Action, &e.Reason, &e.Effective, &e.Data)
		return e, err
	})
}

// entryLife is one row of list_entry: an entry from one version until
// another (0: still listed).
type entryLife struct {
	e        state.ListEntry
	from, to int64
}

func (l entryLife) in(v int64) bool { return l.from <= v && (l.to == 0 || l.to > v) }

// ListChanges implements state.Lists: the rows that begin or end between
// the versions, grouped by key, each key compared as it stood at base and
// at version. A key whose rows cancel out (changed and changed back) is
// no change; batches are read until one gives a change or the rows end.
func (s *Store) ListChanges(ctx context.Context, key state.ListKey, base, version uint64, afterCard, afterTarget string, limit int) ([]state.ListChange, error) {
	c := s.read()
	m, n := int64(base), int64(version)
	const query = `SELECT card, target, from_version, coalesce(to_version, 0), action, reason, effective, data FROM list_entry
		WHERE owner = ? AND kind = ? AND ((from_version > ? AND from_version <= ?) OR (to_version > ? AND to_version <= ?))`
	scan := func(rows *sql.Rows) (entryLife, error) {
		var l entryLife
		err := rows.Scan(&l.e.Card, &l.e.Target, &l.from, &l.to, &l.e.Action, &l.e.Reason, &l.e.Effective, &l.e.Data)
		return l, err
	}
	limit = max(limit, 1)
	for {
		rows, err := c.rows(ctx, query+` AND (card, target) > (?, ?) ORDER BY card, target, from_version LIMIT ?`,
			key.Owner, key.Kind, m, n, m, n, afterCard, afterTarget, limit)
		lives, err := collect(rows, err, scan)
		if err != nil || len(lives) == 0 {
			return nil, err
		}
		if len(lives) == limit {
			// The batch may have cut the last key's rows: drop that key,
			// or, if it is the only one, read all of its rows.
			last := lives[len(lives)-1].e
			cut := len(lives)
			for cut > 0 && lives[cut-1].e.Card == last.Card && lives[cut-1].e.Target == last.Target {
				cut--
			}
			if cut > 0 {
				lives = lives[:cut]
			} else {
				rows, err := c.rows(ctx, query+` AND card = ? AND target = ? ORDER BY from_version`, key.Owner, key.Kind, m, n, m, n, last.Card, last.Target)
				if lives, err = collect(rows, err, scan); err != nil {
					return nil, err
				}
			}
		}
		if out := netChanges(lives, m, n); len(out) > 0 {
			return out, nil
		}
		afterCard, afterTarget = lives[len(lives)-1].e.Card, lives[len(lives)-1].e.Target
	}
}

// ListChangeRows implements state.Lists: two index range counts (a row
// that begins and ends between the versions counts twice).
func (s *Store) ListChangeRows(ctx context.Context, key state.ListKey, base, version uint64) (int64, error) {
	var n int64
	err := s.read().row(ctx, `SELECT (SELECT count(*) FROM list_entry WHERE owner = ? AND kind = ? AND from_version > ? AND from_version <= ?)
		+ (SELECT count(*) FROM list_entry WHERE owner = ? AND kind = ? AND to_version > ? AND to_version <= ?)`,
		key.Owner, key.Kind, int64(base), int64(version), key.Owner, key.Kind, int64(base), int64(version)).Scan(&n)
	if err != nil {
		return 0, Unavailable(err)
	}
	return n, nil
}

// netChanges turns rows grouped by key into the change of each key from
// version m to version n: a put of the entry at n if it differs from the
// one at m, a remove if the key is listed at m and not at n.
func netChanges(lives []entryLife, m, n int64) []state.ListChange {
	var out []state.ListChange
	for i := 0; i < len(lives); {
		j := i
		var atBase, atVersion *state.ListEntry
		for ; j < len(lives) && lives[j].e.Card == lives[i].e.Card && lives[j].e.Target == lives[i].e.Target; j++ {
			if lives[j].in(m) {
				atBase = &lives[j].e
			}
			if lives[j].in(n) {
				atVersion = &lives[j].e
			}
		}
		switch {
		case atVersion != nil && (atBase == nil || *atBase != *atVersion):
			out = append(out, state.ListChange{Entry: *atVersion})
		case atVersion == nil && atBase != nil:
			out = append(out, state.ListChange{Remove: true, Entry: state.ListEntry{Card: atBase.Card, Target: atBase.Target}})
		}
		i = j
	}
	return out
}

// PublishList implements state.Lists.
func (s *Store) PublishList(ctx context.Context, v state.ListVersion, deltas []state.ListDelta, keep uint64) error {
	return s.tx(ctx, func(c conn) error {
		if _, err := lockList(ctx, c, v.ListKey); err != nil {
			return err
		}
		res, err := c.exec(ctx, `UPDATE list_version SET issued = ?, valid_from = ?, valid_until = ?, entries = ?, size = ?, sha256 = ?, list_digest = ?,
			signature = ?, signer = ?, published = ? WHERE owner = ? AND kind = ? AND version = ? AND published IS NULL`,
			c.time(v.Issued), c.time(v.ValidFrom), c.time(v.ValidUntil), int64(v.Entries), v.Size, v.SHA256, v.ListDigest,
			v.Signature, v.Signer, c.time(v.Published), v.Owner, v.Kind, int64(v.Version))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errkind.Errorf(errkind.Exists, "lists: version %d of %s/%s is published already, or was never made", v.Version, v.Kind, v.Owner)
		}
		for _, d := range deltas {
			if _, err := c.exec(ctx, `INSERT INTO list_delta (owner, kind, base, version, records, size, sha256, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				v.Owner, v.Kind, int64(d.Base), int64(v.Version), int64(d.Records), d.Size, d.SHA256, d.Signature); err != nil {
				return err
			}
		}
		if _, err := c.exec(ctx, `DELETE FROM list_delta WHERE owner = ? AND kind = ? AND version < ?`, v.Owner, v.Kind, int64(v.Version)); err != nil {
			return err
		}
		if v.Version <= keep {
			return nil
		}
		_, err = c.exec(ctx, `DELETE FROM list_entry WHERE owner = ? AND kind = ? AND to_version IS NOT NULL AND to_version <= ?`,
			v.Owner, v.Kind, int64(v.Version-keep))
		return err
	})
}

const versionColumns = `version, issued, valid_from, valid_until, entries, size, sha256, list_digest, signature, signer, published`

// ListVersion implements state.Lists.
func (s *Store) ListVersion(ctx context.Context, key state.ListKey, version uint64) (state.ListVersion, error) {
	c := s.read()
	v := state.ListVersion{ListKey: key}
	q := `SELECT ` + versionColumns + ` FROM list_version WHERE owner = ? AND kind = ? AND version = ?`
	args := []any{key.Owner, key.Kind, int64(version)}
	if version == 0 {
		q = `SELECT ` + versionColumns + ` FROM list_version WHERE owner = ? AND kind = ? AND published IS NOT NULL ORDER BY version DESC LIMIT 1`
		args = args[:2]
	}
	var n, entries int64
	err := c.row(ctx, q, args...).Scan(&n, c.scanTime(&v.Issued), c.scanTime(&v.ValidFrom), c.scanTime(&v.ValidUntil),
		&entries, &v.Size, &v.SHA256, &v.ListDigest, &v.Signature, &v.Signer, c.scanTime(&v.Published))
	if errors.Is(err, sql.ErrNoRows) {
		if version == 0 {
			return v, errkind.Errorf(errkind.NotFound, "lists: no version of %s/%s is published", key.Kind, key.Owner)
		}
		return v, errkind.Errorf(errkind.NotFound, "lists: %s/%s has no version %d", key.Kind, key.Owner, version)
	}
	if err != nil {
		return v, Unavailable(err)
	}
	v.Version, v.Entries = uint64(n), uint64(entries)
	return v, nil
}

// ListDelta implements state.Lists.
func (s *Store) ListDelta(ctx context.Context, key state.ListKey, base, version uint64) (state.ListDelta, error) {
	d := state.ListDelta{ListKey: key, Base: base, Version: version}
	var records int64
	err := s.read().row(ctx, `SELECT records, size, sha256, signature FROM list_delta WHERE owner = ? AND kind = ? AND base = ? AND version = ?`,
		key.Owner, key.Kind, int64(base), int64(version)).Scan(&records, &d.Size, &d.SHA256, &d.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return d, errkind.Errorf(errkind.NotFound, "lists: %s/%s has no delta from version %d to %d", key.Kind, key.Owner, base, version)
	}
	if err != nil {
		return d, Unavailable(err)
	}
	d.Records = uint64(records)
	return d, nil
}

func addReceiver(ctx context.Context, c conn, key state.ListKey, receiver string, at time.Time) error {
	_, err := c.exec(ctx, `INSERT INTO list_receiver (owner, kind, receiver, since) VALUES (?, ?, ?, ?) ON CONFLICT (owner, kind, receiver) DO NOTHING`,
		key.Owner, key.Kind, receiver, c.time(at))
	return err
}

// AddListReceiver implements state.Lists.
func (s *Store) AddListReceiver(ctx context.Context, key state.ListKey, receiver string, at time.Time) error {
	return s.tx(ctx, func(c conn) error { return addReceiver(ctx, c, key, receiver, at) })
}

// RecordListReceipt implements state.Lists.
func (s *Store) RecordListReceipt(ctx context.Context, r state.ListReceipt) error {
	return s.tx(ctx, func(c conn) error {
		if err := addReceiver(ctx, c, r.ListKey, r.Receiver, r.Received); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO list_receipt (owner, kind, version, receiver, time, received, doc, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Owner, r.Kind, int64(r.Version), r.Receiver, c.time(r.Time), c.time(r.Received), r.Doc, r.Signature)
		if err != nil && c.d.Classify(err) == errkind.Exists {
			return errkind.Errorf(errkind.Exists, "lists: %s acknowledged version %d of %s/%s before", r.Receiver, r.Version, r.Kind, r.Owner)
		}
		return err
	})
}

// ListReceivers implements state.Lists.
func (s *Store) ListReceivers(ctx context.Context, key state.ListKey) ([]state.ListReceiver, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT r.receiver, r.since,
		coalesce((SELECT max(p.version) FROM list_receipt p WHERE p.owner = r.owner AND p.kind = r.kind AND p.receiver = r.receiver), 0),
		(SELECT p.received FROM list_receipt p WHERE p.owner = r.owner AND p.kind = r.kind AND p.receiver = r.receiver ORDER BY p.version DESC LIMIT 1)
		FROM list_receiver r WHERE r.owner = ? AND r.kind = ? ORDER BY r.receiver`, key.Owner, key.Kind)
	return collect(rows, err, func(rows *sql.Rows) (state.ListReceiver, error) {
		var r state.ListReceiver
		var v int64
		err := rows.Scan(&r.Receiver, c.scanTime(&r.Since), &v, c.scanTime(&r.AcknowledgedAt))
		r.Acknowledged = uint64(v)
		return r, err
	})
}

// ListSigner implements state.Lists.
func (s *Store) ListSigner(ctx context.Context, owner string) (state.Certificate, error) {
	c := s.read()
	cert, err := scanCert(c, c.row(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE operator = ? AND profile = 'list-signer'
		ORDER BY issued DESC, `+c.d.InsertOrder()+` DESC LIMIT 1`, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Certificate{}, errkind.Errorf(errkind.NotFound, "lists: %s has no list signer", owner)
	}
	if err != nil {
		return cert, Unavailable(err)
	}
	return cert, nil
}
