package listing

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/state"
)

// ReceiptSkew is how far ahead of samd's clock a receipt's time may be:
// the receiver's clock may run a little fast, not days.
const ReceiptSkew = 5 * time.Minute

// Ack records a receiver's signed receipt (lists.Receipt, as the
// receiver's certificate signed it, detached CMS) for a version of a
// list. It refuses a receipt that does not parse (invalid-input), one
// that is not the caller's own or names a party the owner's policy does
// not name as a receiver (denied), one for a version that was never
// published (not-found), one whose time is before the version was
// issued or more than ReceiptSkew after now (invalid-input: a receipt
// dates when the receiver took the version into use, which the clearing
// house joins type-36 records on), one that does not verify — its
// signature, its chain to the listeners' CAs now, revocation, its
// signer being the receipt's receiver, the version's list digest
// (check-failed, with lists' reason) — and a second receipt of the same
// version (exists). The audit record digests the receipt.
func (s *Service) Ack(ctx context.Context, caller identity.Principal, doc, sig []byte) (state.ListReceipt, error) {
	audit.NoteFrom(ctx).Input(audit.Digest("receipt", doc))
	r, err := lists.ParseReceipt(doc)
	if err != nil {
		return state.ListReceipt{}, errkind.Wrap(errkind.InvalidInput, err, "lists")
	}
	key := state.ListKey{Owner: r.Owner, Kind: r.Kind.String()}
	switch {
	case r.Receiver.Role != caller.Role || r.Receiver.Operator != caller.Operator || r.Receiver.Device != caller.Device:
		return state.ListReceipt{}, errkind.Errorf(errkind.Denied, "lists: the receipt is %s's, not the caller's (%s)", r.Receiver, caller)
	case s.cfg.Policy == nil || !s.cfg.Policy().ListReceiver(r.Owner, caller):
		return state.ListReceipt{}, errkind.Errorf(errkind.Denied, "lists: %s does not receive %s/%s (its owner's lists.receivers)", caller, key.Kind, key.Owner)
	}
	v, err := s.cfg.State.ListVersion(ctx, key, r.Version)
	if err == nil && v.Published.IsZero() {
		err = errkind.Errorf(errkind.NotFound, "lists: version %d of %s/%s was never published", r.Version, key.Kind, key.Owner)
	}
	if err != nil {
		return state.ListReceipt{}, err
	}
	now := s.cfg.Now()
	if r.Time.Before(v.Issued) || r.Time.After(now.Add(ReceiptSkew)) {
		return state.ListReceipt{}, errkind.Errorf(errkind.InvalidInput, "lists: the receipt's time %s is not between version %d's issue (%s) and now (%s, %s ahead allowed)",
			r.Time.UTC().Format(time.RFC3339), r.Version, v.Issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ReceiptSkew)
	}
	var digest lists.Digest
	if _, err := hex.Decode(digest[:], []byte(v.ListDigest)); err != nil {
		return state.ListReceipt{}, errkind.Wrap(errkind.Internal, err, "lists: stored list digest")
	}
	roots, inter := s.cfg.Roots()
	if _, _, err := lists.VerifyReceipt(doc, sig, lists.ReceiptOptions{Roots: roots, Intermediates: inter, Owner: key.Owner, Kind: r.Kind,
		Version: r.Version, List: digest, Revoked: s.cfg.Revoked, At: now}); err != nil {
		if lists.ReasonOf(err) == lists.ReasonUnknown {
			return state.ListReceipt{}, errkind.Wrap(errkind.Internal, err, "lists")
		}
		return state.ListReceipt{}, errkind.Wrap(errkind.CheckFailed, err, "receipt")
	}
	rec := state.ListReceipt{ListKey: key, Version: r.Version, Receiver: caller.String(), Time: r.Time, Received: now, Doc: doc, Signature: sig}
	if err := s.cfg.State.RecordListReceipt(ctx, rec); err != nil {
		return state.ListReceipt{}, err
	}
	return rec, nil
}
