package state

import (
	"context"
	"time"
)

// ListKey names a negative list: its owner (an operator id) and kind
// (lists.Kind's name, e.g. "card-hotlist").
type ListKey struct {
	Owner, Kind string
}

// ListEntry is an entry of a negative list as the store keeps it.
type ListEntry struct {
	// Card and Target are the entry's key in upper-case hex: the card id,
	// and the application or product id ("" for none). The store orders
	// entries by them as text, which is the order of the ids as bytes
	// (lists.Compare): hex digits sort as the nibbles they stand for, and
	// a prefix sorts first.
	Card, Target string
	// Action and Reason are lists.Action and lists.ReasonCode.
	Action, Reason int
	// Effective is the time from which the entry applies, in Unix
	// seconds; 0: from the list's validity.
	Effective int64
	// Data are a scheme-defined action's parameters, in hex.
	Data string
}

// ListChange is an entry put on a list (added, or changed) or, with
// Remove, taken off it (only Card and Target count).
type ListChange struct {
	Remove bool
	Entry  ListEntry
}

// ListHead is where a list stands.
type ListHead struct {
	ListKey
	// Version is the last version number taken (0: none), Published the
	// newest version published (0: none) and ValidUntil the end of its
	// validity.
	Version, Published uint64
	ValidUntil         time.Time
	// Pending is the number of changes waiting for the next version, and
	// PendingSince when the oldest of them was asked for.
	Pending      int64
	PendingSince time.Time
}

// ListVersion is a version of a list: its times as its number was taken,
// and then as it was published, with its document's description and
// signature. (The document is made when it is published: a version
// whose publication was interrupted is made again, at a later time, from
// the same entries.)
type ListVersion struct {
	ListKey
	Version                       uint64
	Issued, ValidFrom, ValidUntil time.Time
	// Entries, Size and SHA256 describe the full list's document;
	// ListDigest is the version's list digest (lists.Summary.List), in
	// hex.
	Entries    uint64
	Size       int64
	SHA256     string
	ListDigest string
	// Signature is the document's detached CMS signature; Signer names
	// the certificate that made it ("<ca>/<serial>").
	Signature []byte
	Signer    string
	// Published is when the version was published; zero until then.
	Published time.Time
}

// ListDelta is the signed delta of a list from version Base to Version.
type ListDelta struct {
	ListKey
	Base, Version uint64
	Records       uint64
	Size          int64
	SHA256        string
	Signature     []byte
}

// ListReceipt is a receiver's signed acknowledgement of a version
// (lists.Receipt, as the receiver signed it).
type ListReceipt struct {
	ListKey
	Version uint64
	// Receiver is "<role>/<operator>/<device>".
	Receiver string
	// Time is when the receiver took the version into use (the receipt's
	// time), Received when samd recorded the receipt.
	Time, Received time.Time
	Doc, Signature []byte
}

// ListReceiver is a party known to receive a list, and the newest
// version it acknowledged.
type ListReceiver struct {
	Receiver string
	// Since is when the store first knew it as a receiver (its first
	// fetch or receipt).
	Since time.Time
	// Acknowledged is the newest version it acknowledged (0: none), and
	// AcknowledgedAt when samd recorded that receipt.
	Acknowledged   uint64
	AcknowledgedAt time.Time
}

// ListGuard names the entries a change to a list may touch only if
// Allow allows: those holding Action (APTA's permanent block, which only
// a caller with list.block-permanent may change; README "Negative
// lists") at the lists' next versions.
type ListGuard struct {
	// Action is the action the guarded entries hold.
	Action int
	// Keys are keys (Card, Target; the other fields unused) of the
	// changed list: one of them holding Action is guarded.
	Keys []ListEntry
	// Cards are card ids: an entry of one of them holding Action in any
	// list of the changed list's owner is guarded.
	Cards []string
	// Allow decides, in the transaction, on each guarded entry found: an
	// error refuses the change (nil Allow: every one is refused,
	// KindDenied). It must not use the store.
	Allow func(held ListEntry) error
}

// Lists is the durable state of negative lists (package lists; README
// "Negative lists"). Entries are rows, versioned: a change asked for
// waits until a version takes it (NewListVersion), and a version's
// content stays readable, unchanged, until it is forgotten
// (PublishList's keep), so that every replica streams the same document
// from the rows at any time. Every method is atomic.
type Lists interface {
	// ChangeList records changes to a list, in order, for its next
	// version, all or none, and returns the number of changes waiting.
	// It never makes a version. A guard (nil: none) is checked under the
	// list's lock, in the same transaction: an entry it names that holds
	// its action and that its Allow refuses refuses every change, so no
	// change to the owner's lists can slip between the check and the
	// record.
	ChangeList(ctx context.Context, key ListKey, changes []ListChange, at time.Time, guard *ListGuard) (int64, error)
	// ListHolding returns, of the entries the list will hold at its next
	// version for the cards given, those whose action is action: one
	// query per few hundred cards, whatever the number of entries.
	ListHolding(ctx context.Context, key ListKey, action int, cards []string) ([]ListEntry, error)
	// ListHeads lists every list.
	ListHeads(ctx context.Context) ([]ListHead, error)
	// NewListVersion takes the list's next version number, if its last
	// one is after (KindExists if not: another process took it first),
	// and makes it the list with every change waiting applied: version
	// numbers are taken once, across processes. v gives the times; the
	// version returned has its number.
	NewListVersion(ctx context.Context, v ListVersion, after uint64) (ListVersion, error)
	// ListEntries reads up to limit entries of a version in key order,
	// after the key (afterCard, afterTarget); afterCard "" starts at the
	// first.
	ListEntries(ctx context.Context, key ListKey, version uint64, afterCard, afterTarget string, limit int) ([]ListEntry, error)
	// ListChanges reads up to about limit changes that turn version base
	// into version, in key order, after the key: a put for each entry
	// added or changed, a remove for each entry gone. It returns none only
	// when no change follows the key.
	ListChanges(ctx context.Context, key ListKey, base, version uint64, afterCard, afterTarget string, limit int) ([]ListChange, error)
	// ListChangeRows counts the entries' rows that begin or end between
	// versions base and version: at least the number of changes between
	// them, found from the indexes alone.
	ListChangeRows(ctx context.Context, key ListKey, base, version uint64) (int64, error)
	// PublishList records a version's times, description, signature and
	// deltas, unless it is published already (KindExists), and forgets
	// what only versions older than v.Version-keep needed: their entries'
	// history and the deltas to older versions.
	PublishList(ctx context.Context, v ListVersion, deltas []ListDelta, keep uint64) error
	// ListVersion reads a version, published or not; version 0 reads the
	// newest published. KindNotFound if there is none.
	ListVersion(ctx context.Context, key ListKey, version uint64) (ListVersion, error)
	// ListDelta reads the delta from base to version; KindNotFound if
	// none was published.
	ListDelta(ctx context.Context, key ListKey, base, version uint64) (ListDelta, error)
	// AddListReceiver records that a party receives the list (once; a
	// second call changes nothing).
	AddListReceiver(ctx context.Context, key ListKey, receiver string, at time.Time) error
	// RecordListReceipt keeps a receipt and its receiver; KindExists if
	// the receiver acknowledged that version before.
	RecordListReceipt(ctx context.Context, r ListReceipt) error
	// ListReceivers lists the list's receivers with the newest version
	// each acknowledged.
	ListReceivers(ctx context.Context, key ListKey) ([]ListReceiver, error)
	// ListSigner reads the newest certificate of profile list-signer
	// issued to the owner; KindNotFound if none.
	ListSigner(ctx context.Context, owner string) (Certificate, error)
}
