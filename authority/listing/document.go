package listing

import (
	"context"
	"encoding/hex"
	"io"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/state"
)

// Document is a published version of a list, whole or as a delta, ready
// to stream: its header, its description and signature; Write writes
// its bytes.
type Document struct {
	Header lists.Header
	// Records is the number of records (entries of a full list; puts and
	// removes of a delta); Size and SHA256 (hex) describe the document;
	// ListDigest (hex) is the version's list digest, which a receipt
	// acknowledges.
	Records    uint64
	Size       int64
	SHA256     string
	ListDigest string
	Signature  []byte
	// UpToDate: the receiver holds the newest version already; there is
	// no document.
	UpToDate bool

	s    *Service
	key  state.ListKey
	base lists.Digest
}

// Fetch returns what a receiver holding version held (0: none) needs of
// the owner's list: nothing if it is up to date, the delta from held to
// the newest version if it was published, else the full newest version.
// A caller the owner's policy names as a receiver (nil: an anonymous
// fetch over plain HTTP) is recorded as one, for the status.
func (s *Service) Fetch(ctx context.Context, caller *identity.Principal, owner string, kind lists.Kind, held uint64) (*Document, error) {
	if caller == nil && owner == "" {
		return nil, errkind.Errorf(errkind.InvalidInput, "lists: name the owner")
	}
	var p identity.Principal
	if caller != nil {
		p = *caller
	}
	key, err := Key(p, owner, kind)
	if err != nil {
		return nil, err
	}
	v, err := s.cfg.State.ListVersion(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	if caller != nil {
		if err := s.recordReceiver(ctx, key, *caller); err != nil {
			return nil, err
		}
	}
	switch {
	case held == v.Version:
		d := s.document(key, v)
		d.UpToDate = true
		return d, nil
	case held > v.Version:
		return nil, errkind.Errorf(errkind.InvalidInput, "lists: %s/%s has no version %d; its newest is %d", key.Kind, key.Owner, held, v.Version)
	case held > 0:
		if d, err := s.Delta(ctx, key, held, v.Version); err == nil {
			return d, nil
		} else if errkind.Of(err) != errkind.NotFound {
			return nil, err
		}
	}
	return s.document(key, v), nil
}

// Version returns a version's full document: the newest published
// (version 0) or, by number, while it is the newest.
func (s *Service) Version(ctx context.Context, key state.ListKey, version uint64) (*Document, error) {
	v, err := s.cfg.State.ListVersion(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	if version != 0 && version != v.Version {
		return nil, errkind.Errorf(errkind.NotFound, "lists: %s/%s serves version %d, its newest, not %d", key.Kind, key.Owner, v.Version, version)
	}
	return s.document(key, v), nil
}

// Delta returns the published delta from base to version.
func (s *Service) Delta(ctx context.Context, key state.ListKey, base, version uint64) (*Document, error) {
	d, err := s.cfg.State.ListDelta(ctx, key, base, version)
	if err != nil {
		return nil, err
	}
	v, err := s.cfg.State.ListVersion(ctx, key, version)
	if err != nil {
		return nil, err
	}
	bv, err := s.cfg.State.ListVersion(ctx, key, base)
	if err != nil {
		return nil, err
	}
	doc := s.document(key, v)
	if _, err := hex.Decode(doc.base[:], []byte(bv.ListDigest)); err != nil {
		return nil, errkind.Wrap(errkind.Internal, err, "lists: stored list digest of version %d", base)
	}
	doc.Header.Base, doc.Records, doc.Size, doc.SHA256, doc.Signature = base, d.Records, d.Size, d.SHA256, d.Signature
	return doc, nil
}

func (s *Service) document(key state.ListKey, v state.ListVersion) *Document {
	kind, _ := lists.ParseKind(key.Kind)
	return &Document{s: s, key: key,
		Header:  lists.Header{Kind: kind, Owner: key.Owner, Version: v.Version, Issued: v.Issued.UTC(), ValidFrom: v.ValidFrom.UTC(), ValidUntil: v.ValidUntil.UTC()},
		Records: v.Entries, Size: v.Size, SHA256: v.SHA256, ListDigest: v.ListDigest, Signature: v.Signature}
}

// Name is the document's file name: <kind>-<owner>-<version>.bin, or
// <kind>-<owner>-<base>-<version>.bin for a delta (':' in an owner id as
// '_', for file systems that refuse it).
func (d *Document) Name() string {
	name := d.Header.Name()
	out := []byte(name)
	for i, c := range out {
		switch c {
		case '/':
			out[i] = '-'
		case ':':
			out[i] = '_'
		}
	}
	return string(out) + ".bin"
}

// Write streams the document to w from the list's rows, batch by batch,
// and fails if the bytes were not those that were signed (their SHA-256
// and size): a version whose rows were forgotten meanwhile, say. What it
// wrote before such a failure must be thrown away.
func (d *Document) Write(ctx context.Context, w io.Writer) error {
	if d.UpToDate {
		return nil
	}
	var sum lists.Summary
	var err error
	if d.Header.Delta() {
		var result lists.Digest
		if _, err := hex.Decode(result[:], []byte(d.ListDigest)); err != nil {
			return errkind.Wrap(errkind.Internal, err, "lists: stored list digest")
		}
		sum, err = lists.WriteDelta(w, d.Header, d.s.changes(ctx, d.key, d.Header.Base, d.Header.Version, 0), d.base, result)
	} else {
		sum, err = lists.WriteFull(w, d.Header, d.s.entries(ctx, d.key, d.Header.Version))
	}
	if err != nil {
		return err
	}
	if sum.SHA256.String() != d.SHA256 || sum.Size != d.Size {
		return errkind.Errorf(errkind.Unavailable, "lists: %s is no longer what was signed (it was superseded meanwhile); fetch again", d.Header.Name())
	}
	return nil
}

// Note adds the document to the request's audit record.
func (d *Document) Note(ctx context.Context) {
	if !d.UpToDate {
		audit.NoteFrom(ctx).Input(audit.Input{Name: d.Header.Name(), Size: int(d.Size), SHA256: d.SHA256})
	}
}

// recordReceiver records a caller the owner's policy names as a receiver
// of the list, once per process.
func (s *Service) recordReceiver(ctx context.Context, key state.ListKey, p identity.Principal) error {
	if s.cfg.Policy == nil || !s.cfg.Policy().ListReceiver(key.Owner, p) {
		return nil
	}
	k := knownReceiver{key: key, receiver: p.String()}
	s.mu.Lock()
	known := s.known[k]
	s.mu.Unlock()
	if known {
		return nil
	}
	if err := s.cfg.State.AddListReceiver(ctx, key, k.receiver, s.cfg.Now()); err != nil {
		return err
	}
	s.mu.Lock()
	if len(s.known) > 100000 {
		clear(s.known)
	}
	s.known[k] = true
	s.mu.Unlock()
	return nil
}
