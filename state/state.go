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
	"time"

	"github.com/samd-io/samd/audit"
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
	// KeyUse, if set, is the use of the key that will seal the record,
	// counted in the same transaction: a record over the key's usage limit
	// is refused (KindLimit, usage_limit) with nothing taken, and a
	// refused authorisation counts no use.
	KeyUse *KeyUse
}

// KeyUse is one use of a key with a usage limit (0: no limit, but still
// counted), as UseKey counts it.
type KeyUse struct {
	Key   string // the key's reference, NAME:vN
	Limit int64
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
}

// CancelParams asks to cancel an earlier authorisation of the same device.
type CancelParams struct {
	Device   string
	Original uint64
	Time     time.Time
	Window   time.Duration
	// KeyUse is as in AuthorizeParams: a refused cancellation counts no
	// use of the seal key.
	KeyUse *KeyUse
}

// Store is the durable state. Implementations are safe for concurrent use
// by many goroutines and, where they say so, by many processes.
type Store interface {
	// Authorize takes p.Amount from the device's allowance and adds it to
	// the day's total, or fails with KindLimit naming the limit, all at
	// once: nothing is taken unless the record is durably written.
	Authorize(ctx context.Context, p AuthorizeParams) (Authorization, error)
	// Cancel restores an earlier load, sale or refund of the same device,
	// once, within the window, and writes a cancellation record.
	Cancel(ctx context.Context, p CancelParams) (Authorization, error)
	// Allowance reads a device's allowance.
	Allowance(ctx context.Context, device string) (Allowance, error)
	// Allowances lists every device's allowance (for metrics).
	Allowances(ctx context.Context) ([]Allowance, error)
	// TopUp adds to a device's allowance (creating it in the currency).
	TopUp(ctx context.Context, device, currency string, amount int64, t time.Time) (Allowance, error)
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
