// Package state defines the durable state samd keeps beside the HSM:
// device allowances, daily totals, value authorisations, key usage
// counters, the scheme PKI's records: CAs, issued certificates,
// revocations, CRL numbers, enrolment tokens and file sequence numbers,
// and negative lists: entries, versions and receipts.
// Implementations (state/sqlite, and state/postgres for clusters, both
// over state/sqlstore) make every change atomic and durable before they
// return, so that a crash at any instant loses no acknowledged
// authorisation and never lets a counter go backwards or over its limit.
//
// Errors carry errkind kinds: Limit for a limit reached (the message
// names which), NotFound, Exists, Denied and InvalidInput; Unavailable or
// Busy when the database fails or the request's deadline passed.
package state

import (
	"context"
	"slices"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
)

// Allowance is how much value a device may still authorise.
type Allowance struct {
	Device   string // "<operator>/<device>"
	Balance  int64  // minor units
	Currency string
	Updated  time.Time
}

// AuthorizeParams asks to take an amount from a device's allowance.
type AuthorizeParams struct {
	Device   string
	Amount   int64
	Currency string
	Owner    string
	Purpose  string
	Time     time.Time
	// Day is the device's calendar day in the operator's time zone, the
	// key of the daily total; DayLimit bounds that total.
	Day      string
	DayLimit int64
	// KeyUses are the uses of the keys that will serve the record (the
	// key that seals it; for a value seal, the object key too), counted
	// in the same transaction: a record over a key's usage limit is
	// refused (KindLimit, usage_limit) with nothing taken, and a refused
	// authorisation counts no use.
	KeyUses []KeyUse
	// Card (hex), TSN and TxType are the card the value is for, its
	// transaction sequence number and the Håndbok 206 Part 19 transaction
	// type, as the sealed record carries them.
	Card   string
	TSN    uint32
	TxType uint8
	// Spend, if set, stores the record already spent by what it names
	// (e.g. "seal:apta-tpurse"): an authorisation samd makes and uses in
	// one request, which Spend can then never use again.
	Spend string
}

// TopUpAlone asks for a top-up that one officer makes without a
// proposal.
type TopUpAlone struct {
	Device, Currency string
	Amount           int64
	Time             time.Time
	// Officer ("<operator>/<device>") and Day key the officer's total of
	// the day, which DayLimit bounds: minor units of every currency
	// together, as officers top up.
	Officer, Day string
	DayLimit     int64
}

// KeyUse is Uses uses (0 counts as 1) of a key with a usage limit (0: no
// limit, but still counted), as UseKey counts them.
type KeyUse struct {
	Key   string // the key's reference, NAME:vN
	Limit int64
	Uses  int64
}

// Authorization is a durable authorisation record.
type Authorization struct {
	Device   string
	Seq      uint64 // per device, from 1, never reused
	Amount   int64
	Currency string
	Owner    string
	Purpose  string
	Time     time.Time
	Day      string
	// Original is the sequence number a cancellation restores, else 0.
	Original uint64
	// Balance is the allowance left after this record.
	Balance int64
	// Card (hex, upper case), TSN and TxType: see AuthorizeParams. A
	// record made before they were kept has Card "".
	Card   string
	TSN    uint32
	TxType uint8
	// Spent names what used the authorisation to create value (a seal, a
	// card command), or is "" while it is unused.
	Spent string
	// Cancelled is the sequence number of the record that cancelled it,
	// or 0.
	Cancelled uint64
}

// SpendParams asks to use an authorisation, once, for what By names. The
// record must be the device's own, neither a cancellation nor cancelled
// nor spent, for Card, of exactly Amount, with one of Purposes.
type SpendParams struct {
	Device   string
	Seq      uint64
	By       string
	Card     string
	Amount   int64
	Purposes []string
	// KeyUses are counted in the same transaction, as in AuthorizeParams.
	KeyUses []KeyUse
}

// CancelParams asks to cancel an earlier authorisation of the same device.
type CancelParams struct {
	Device   string
	Original uint64
	Time     time.Time
	Window   time.Duration
	// KeyUses are as in AuthorizeParams: a refused cancellation counts no
	// use of the seal key.
	KeyUses []KeyUse
	// TSN is the card's transaction sequence number now, which the
	// cancellation record carries (Håndbok 206 Part 19 §5: "Trx
	// ApplicationTransactionSequenceNumber filled with current TSN of the
	// card"); for a record that names a card it must be after the
	// original's. TxType, if not 0, must be the original's ("Trx type
	// similar to cancelled operation"); the record carries the original's.
	TSN    uint32
	TxType uint8
}

// Store is the durable state. Implementations are safe for concurrent use
// by many goroutines and, where they say so, by many processes.
type Store interface {
	// Authorize takes p.Amount from the device's allowance and adds it to
	// the day's total, or fails with KindLimit naming the limit, all at
	// once: nothing is taken unless the record is durably written.
	Authorize(ctx context.Context, p AuthorizeParams) (Authorization, error)
	// Cancel restores an earlier load, sale or refund of the same device,
	// once, within the window, and writes a cancellation record. A spent
	// authorisation is not cancelled (KindDenied): the value it paid for
	// was sealed.
	Cancel(ctx context.Context, p CancelParams) (Authorization, error)
	// Spend marks an authorisation used, once, by p.By, if it matches p
	// (KindNotFound, or KindDenied naming what differs or who spent it).
	Spend(ctx context.Context, p SpendParams) (Authorization, error)
	// Authorization reads one record of a device.
	Authorization(ctx context.Context, device string, seq uint64) (Authorization, error)
	// ReserveCardFailures counts, for each card key (one per card and key
	// set), one failed verification before it is made, unless the card
	// already has limit: admitted[i] says whether cards[i] was counted.
	// ReleaseCardFailures takes one back for each card whose
	// verification succeeded. A crash between the two leaves the failure
	// counted.
	ReserveCardFailures(ctx context.Context, cards []string, limit int64) (admitted []bool, err error)
	ReleaseCardFailures(ctx context.Context, cards []string) error
	// CardFailures reads a card key's count.
	CardFailures(ctx context.Context, card string) (int64, error)
	// Allowance reads a device's allowance.
	Allowance(ctx context.Context, device string) (Allowance, error)
	// Allowances lists every device's allowance (for metrics).
	Allowances(ctx context.Context) ([]Allowance, error)
	// TopUp adds to a device's allowance (creating it in the currency).
	TopUp(ctx context.Context, device, currency string, amount int64, t time.Time) (Allowance, error)
	// TopUpAlone is TopUp by one officer acting alone: the amount is
	// added to the officer's total of the day in the same transaction,
	// and a top-up that would take that total past p.DayLimit fails with
	// KindLimit (topup_limit), changing nothing.
	TopUpAlone(ctx context.Context, p TopUpAlone) (Allowance, error)
	// ResetAllowance sets a device's allowance to zero.
	ResetAllowance(ctx context.Context, device string, t time.Time) (Allowance, error)
	// Authorizations lists a device's records in sequence order.
	Authorizations(ctx context.Context, device string) ([]Authorization, error)
	// UseKey counts n uses of a key and fails with KindLimit, counting
	// nothing, if the count would exceed limit (0: no limit, but still
	// counted).
	UseKey(ctx context.Context, key string, n, limit int64) (int64, error)
	// AdvanceSUNCounter records that a SUN message with counter ctr was
	// accepted for a tag, and fails with KindDenied (a replay) unless ctr
	// is greater than every counter accepted before for that tag.
	AdvanceSUNCounter(ctx context.Context, tag string, ctr uint32) error
	// AdvanceSUNCounters is AdvanceSUNCounter for many messages in one
	// transaction, applied in order; it returns one error (nil or a
	// replay) per message, or an error for the whole batch.
	AdvanceSUNCounters(ctx context.Context, msgs []SUNCounter) ([]error, error)
	// KeyUsage reads a key's use count.
	KeyUsage(ctx context.Context, key string) (int64, error)
	// PKI is the scheme PKI's state (pki.go).
	PKI
	// Approvals are officers' proposals and votes (approvals.go).
	Approvals
	// Lists are negative lists' entries, versions and receipts
	// (lists.go).
	Lists
	// The audit log, when it is kept in the state store (audit.store:
	// state): one hash chain per samd process.
	audit.Store
	Close() error
}

// SUNCounter is a tag's read counter from an accepted SUN message.
type SUNCounter struct {
	Tag     string
	Counter uint32
}

// CheckSpend reports whether a may be spent as p asks: the rules every
// Store's Spend applies, for callers that check before they use a key.
func CheckSpend(a Authorization, p SpendParams) error {
	switch {
	case a.Original != 0:
		return errkind.Errorf(errkind.Denied, "authorisation %d is a cancellation: it authorises no value", a.Seq)
	case a.Cancelled != 0:
		return errkind.Errorf(errkind.Denied, "authorisation %d was cancelled by %d", a.Seq, a.Cancelled)
	case a.Spent != "":
		return errkind.Errorf(errkind.Denied, "authorisation %d was already spent by %s (an authorisation creates value once)", a.Seq, a.Spent)
	case a.Card == "":
		return errkind.Errorf(errkind.Denied, "authorisation %d names no card (a version-1 record): only one that names the card can pay for a seal", a.Seq)
	case p.Card != "" && a.Card != p.Card:
		return errkind.Errorf(errkind.Denied, "authorisation %d is for card %s, not %s", a.Seq, a.Card, p.Card)
	case a.Amount != p.Amount:
		return errkind.Errorf(errkind.Denied, "authorisation %d is for %d, not %d", a.Seq, a.Amount, p.Amount)
	case len(p.Purposes) > 0 && !slices.Contains(p.Purposes, a.Purpose):
		return errkind.Errorf(errkind.Denied, "authorisation %d is a %s, not a %v", a.Seq, a.Purpose, p.Purposes)
	}
	return nil
}
