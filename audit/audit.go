// Package audit defines samd's audit record, the hash chain that links the
// records, and the sinks that store them.
//
// Every request produces one record, whether it was allowed, denied or
// failed: who called (from the client certificate), what they asked for,
// which keys it touched, the outcome with its stable code, and how long it
// took. Inputs are recorded as sizes and SHA-256 digests, never their
// contents; no key, PIN, session secret or wrapped blob is ever a field.
//
// # Chain
//
// Records are numbered from 1 and chained: each record is stored as one
// line, its canonical JSON (Go's encoding of [Record]: fields in schema
// order, no white space, one spelling of every string); its Hash is
// SHA-256(Prev ‖ the exact bytes of that line with the hash's value empty),
// and Prev is the Hash of the record before it. Deleting, reordering or
// editing any record breaks the chain at that record, which [Verify] names.
// A line that is not byte for byte the canonical encoding of what it says
// (added white space, an escaped letter, a duplicate key that a reader
// taking the first one would believe) is refused by [Read] before any hash
// is compared, so what a reader greps is what was hashed.
//
// # Checkpoints
//
// With an audit key, a sink appends signed checkpoint records (see
// [Checkpoint]): every [CheckpointSigner.Every] records, on demand (samd
// asks every minute), and a final one at a clean shutdown. What follows
// the last checkpoint is covered by no signature; [VerifyCheckpoints]
// reports it, so a log cut after its last checkpoint loses at most that
// many records, and says so.
//
// # Failure
//
// Audit fails closed: a record that cannot be written fails the request it
// records.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"
)

// Outcome is the result of a request.
type Outcome string

// Outcomes.
const (
	OutcomeOK     Outcome = "ok"
	OutcomeDenied Outcome = "denied"
	OutcomeError  Outcome = "error"
)

// Caller identifies who made a request.
type Caller struct {
	Role     string `json:"role"`
	Operator string `json:"operator"`
	Device   string `json:"device"`
	Serial   string `json:"cert_serial,omitempty"`
}

// Input describes a request input by size and digest.
type Input struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Record is one audit record. Field names are stable: they are the schema.
type Record struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	RequestID  string    `json:"request_id"`
	Caller     *Caller   `json:"caller,omitempty"`
	Method     string    `json:"method"`
	Policy     string    `json:"policy,omitempty"`
	Keys       []string  `json:"keys,omitempty"`
	Inputs     []Input   `json:"inputs,omitempty"`
	Outcome    Outcome   `json:"outcome"`
	Code       string    `json:"code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	DurationUS int64     `json:"duration_us"`
	// CardCommand is the card command code (two hex digits) a card
	// session method was asked to protect, allowed or refused.
	CardCommand string `json:"card_command,omitempty"`
	// FailedChecks is how many verifications (cryptograms, MACs, seals,
	// SUN messages, value records) failed in the request; each makes the
	// caller wait (limits.busy_after_failure).
	FailedChecks int `json:"failed_checks,omitempty"`
	// Steps are the steps of a card session held in a stream
	// (CardService.Session), in order, each with its outcome: the
	// session's one record carries them all.
	Steps []Step `json:"steps,omitempty"`
	// Via is how the request came when not from a network client:
	// "console" for the officers' console, which calls the API in-process
	// with the officer's verified client certificate.
	Via string `json:"via,omitempty"`
	// Checkpoint is set on checkpoint records only.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Prev       string      `json:"prev"`
	// Hash must stay the last field: the stored line ends with it, and
	// the hashed bytes are that line with its value empty.
	Hash string `json:"hash"`

	// line is the record's stored bytes, as read (nil for a record made
	// in memory): verification hashes these, not a re-encoding.
	line []byte
}

// Step is one step of a card session held in a stream: its number (from
// 1), what it was (begin, finish, protect, check, change_key), the card
// command or ISO instruction it protected or changed a key with (two hex
// digits), the digest of its input (the card key's diversification input
// for begin, the command for protect), and its outcome with the stable
// code and reason of a refusal.
type Step struct {
	N           int     `json:"n"`
	Step        string  `json:"step"`
	CardCommand string  `json:"card_command,omitempty"`
	Input       *Input  `json:"input,omitempty"`
	Outcome     Outcome `json:"outcome"`
	Code        string  `json:"code,omitempty"`
	Reason      string  `json:"reason,omitempty"`
}

// Digest describes an input for the record.
func Digest(name string, b []byte) Input {
	h := sha256.Sum256(b)
	return Input{Name: name, Size: len(b), SHA256: hex.EncodeToString(h[:])}
}

// Sink stores records. Append assigns Seq, Prev and Hash, and returns only
// once the record is written.
type Sink interface {
	Append(ctx context.Context, r *Record) error
}

// ErrClosed is returned by a closed sink.
var ErrClosed = errors.New("audit: sink closed")

// Note collects, during one request, the key references and input digests
// that its audit record will carry. The server puts one into each
// request's context; handlers add to it. It is safe for concurrent use.
type Note struct {
	mu      sync.Mutex
	keys    []string
	inputs  []Input
	verdict string
	cardCmd string
	failed  int
	steps   []Step
}

type noteKey struct{}

// WithNote returns a context carrying n.
func WithNote(ctx context.Context, n *Note) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

// NoteFrom returns the context's note, or a note that is discarded.
func NoteFrom(ctx context.Context) *Note {
	if n, ok := ctx.Value(noteKey{}).(*Note); ok {
		return n
	}
	return &Note{}
}

// Key records a key reference the request used or named.
func (n *Note) Key(ref string) {
	n.mu.Lock()
	n.keys = append(n.keys, ref)
	n.mu.Unlock()
}

// Input records an input's digest.
func (n *Note) Input(in Input) {
	n.mu.Lock()
	n.inputs = append(n.inputs, in)
	n.mu.Unlock()
}

// Verdict records what a request that succeeded found (a file that did
// not verify, say); it becomes the record's reason.
func (n *Note) Verdict(v string) {
	n.mu.Lock()
	n.verdict = v
	n.mu.Unlock()
}

// CardCommand records the card command code a request asked samd to
// protect.
func (n *Note) CardCommand(cmd byte) {
	n.mu.Lock()
	n.cardCmd = HexByte(cmd)
	n.mu.Unlock()
}

// HexByte is a card command code as records write it: two upper-case hex
// digits.
func HexByte(cmd byte) string {
	const hexDigits = "0123456789ABCDEF"
	return string([]byte{hexDigits[cmd>>4], hexDigits[cmd&15]})
}

// Failed records k failed verifications (a cryptogram, MAC, seal, SUN
// message or value record that did not verify).
func (n *Note) Failed(k int) {
	if k <= 0 {
		return
	}
	n.mu.Lock()
	n.failed += k
	n.mu.Unlock()
}

// Step records a step of a card session held in a stream.
func (n *Note) Step(s Step) {
	n.mu.Lock()
	n.steps = append(n.steps, s)
	n.mu.Unlock()
}

// Failures is the number of failed verifications recorded so far.
func (n *Note) Failures() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.failed
}

// Fill copies the note into a record.
func (n *Note) Fill(r *Record) {
	n.mu.Lock()
	r.Keys = append(r.Keys, n.keys...)
	r.Inputs = append(r.Inputs, n.inputs...)
	if r.Reason == "" {
		r.Reason = n.verdict
	}
	r.CardCommand, r.FailedChecks = n.cardCmd, n.failed
	r.Steps = append(r.Steps, n.steps...)
	n.mu.Unlock()
}

// Filter selects audit records; zero fields select everything.
type Filter struct {
	Since, Until time.Time // Since <= Time < Until
	Operator     string    // the caller's operator
	Key          string    // a key reference the record names (NAME:vN, or NAME for every version)
	Outcome      Outcome
	Method       string // a substring of the method
}

// Match reports whether a record passes the filter.
func (f Filter) Match(r *Record) bool {
	switch {
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	case f.Operator != "" && (r.Caller == nil || r.Caller.Operator != f.Operator):
		return false
	case f.Outcome != "" && r.Outcome != f.Outcome:
		return false
	case f.Method != "" && !strings.Contains(r.Method, f.Method):
		return false
	}
	if f.Key == "" {
		return true
	}
	for _, k := range r.Keys {
		if k == f.Key || strings.HasPrefix(k, f.Key+":v") {
			return true
		}
	}
	return false
}
