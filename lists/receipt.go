package lists

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/cms"
)

// receiptMagic opens every receipt (package doc, "Receipts").
var receiptMagic = [4]byte{'S', 'M', 'R', 'C'}

// Receipt is a receiver's signed acknowledgement that it holds a version
// of a list. Håndbok 206-2 §3: "Det er produkteier for RK-avtale sitt
// ansvar å distribuere svartelister for applikasjoner og produkter.
// Produkteiere for Enkeltbilletter skal bekrefte mottaket av slike
// lister." (the product owner distributes the blacklists; the receivers
// shall confirm their receipt).
type Receipt struct {
	// Owner, Kind and Version name the list version acknowledged.
	Owner   string
	Kind    Kind
	Version uint64
	// List is that version's list digest (Summary.List, Trailer.List): the
	// same whether the receiver got the full list or a delta.
	List Digest
	// Receiver is who acknowledges: a terminal, a back office (operator
	// or product owner) or a clearing house; its certificate signs.
	Receiver identity.Principal
	// Time is when the receiver took the version into use, to the second.
	Time time.Time
}

// MarshalBinary encodes r (package doc, "Receipts").
func (r Receipt) MarshalBinary() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("lists: receipt: %w", err)
	}
	uri := r.Receiver.URI().String()
	b := append(make([]byte, 0, 128), receiptMagic[:]...)
	b = append(b, formatVersion, byte(r.Kind), byte(len(r.Owner)))
	b = append(b, r.Owner...)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = append(b, r.List[:]...)
	b = append(b, byte(len(uri)))
	b = append(b, uri...)
	return binary.BigEndian.AppendUint64(b, uint64(r.Time.Unix())), nil
}

func (r Receipt) check() error {
	switch {
	case !r.Kind.Valid():
		return fmt.Errorf("kind %d is not a list kind", r.Kind)
	case checkOwner(r.Owner) != nil:
		return checkOwner(r.Owner)
	case r.Version == 0:
		return errors.New("the version must be at least 1")
	case r.Time.IsZero() || r.Time.Unix() < 1 || r.Time.Unix() > maxTime:
		return errors.New("the time must be set, after 1970 and before year 10000")
	case !receiverRole(r.Receiver.Role):
		return fmt.Errorf("a %s receives no lists (terminal, back-office or clearing-house)", r.Receiver.Role)
	}
	if _, err := identity.New(r.Receiver.Role, r.Receiver.Operator, r.Receiver.Device); err != nil {
		return err
	}
	return nil
}

func receiverRole(r identity.Role) bool {
	return r == identity.RoleTerminal || r == identity.RoleBackOffice || r == identity.RoleClearingHouse
}

// ParseReceipt decodes a receipt; it accepts only the canonical encoding.
func ParseReceipt(b []byte) (Receipt, error) {
	bad := func(what string) (Receipt, error) {
		return Receipt{}, fmt.Errorf("%w: receipt: %s", ErrMalformed, what)
	}
	if len(b) < 7 || !bytes.Equal(b[:4], receiptMagic[:]) {
		return bad("not a receipt")
	}
	if b[4] != formatVersion {
		return bad(fmt.Sprintf("format version %d", b[4]))
	}
	r := Receipt{Kind: Kind(b[5])}
	rest := b[7:]
	n := int(b[6])
	if len(rest) < n+8+32+1 {
		return bad("truncated")
	}
	r.Owner, rest = string(rest[:n]), rest[n:]
	r.Version, rest = binary.BigEndian.Uint64(rest), rest[8:]
	copy(r.List[:], rest)
	m := int(rest[32])
	rest = rest[33:]
	if len(rest) != m+8 {
		return bad("truncated or followed by other bytes")
	}
	p, err := identity.Parse(string(rest[:m]))
	if err != nil {
		return bad("receiver: " + err.Error())
	}
	r.Receiver = p
	t := binary.BigEndian.Uint64(rest[m:])
	if t > maxTime {
		return bad("time after year 9999")
	}
	r.Time = time.Unix(int64(t), 0).UTC()
	again, err := r.MarshalBinary()
	if err != nil {
		return bad(err.Error())
	}
	if !bytes.Equal(again, b) {
		return bad("not in canonical form")
	}
	return r, nil
}

// SignReceipt encodes r and signs it as the receiver: a detached CMS
// SignedData over the encoding, as Sign makes for lists (signingTime
// r.Time, the trace with the caller's instance and counter). certs are
// the receiver's certificate, naming r.Receiver, and its intermediates.
// A receiver without samd's code signs the same bytes with any CMS
// signer, e.g. `openssl cms -sign -binary -md sha256 -outform DER`.
func SignReceipt(rand io.Reader, signer crypto.Signer, certs []*x509.Certificate, r Receipt, instance string, counter uint64) (doc, sig []byte, err error) {
	if len(certs) == 0 || certs[0] == nil {
		return nil, nil, errors.New("lists: the receiver's certificate is needed")
	}
	doc, err = r.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	if p, err := identity.FromCertificate(certs[0]); err != nil || !samePrincipal(p, r.Receiver) {
		return nil, nil, fmt.Errorf("lists: certificate %X is not %s's", certs[0].SerialNumber, r.Receiver)
	}
	h, err := cms.HashFor(certs[0].PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("lists: %w", err)
	}
	hh := h.New()
	hh.Write(doc)
	name := Header{Kind: r.Kind, Owner: r.Owner, Version: r.Version}.Name()
	sig, err = cms.Sign(rand, signer, hh.Sum(nil), r.Time, cms.Trace{Instance: instance, Counter: counter, File: "receipt:" + name}, certs)
	if err != nil {
		return nil, nil, fmt.Errorf("lists: %w", err)
	}
	return doc, sig, nil
}

func samePrincipal(a, b identity.Principal) bool {
	return a.Role == b.Role && a.Operator == b.Operator && a.Device == b.Device
}

// ReceiptOptions are what the list's owner expects a receipt to
// acknowledge. Roots, Owner, Kind, Version and List are required.
type ReceiptOptions struct {
	Roots, Intermediates *x509.CertPool
	Owner                string
	Kind                 Kind
	Version              uint64
	List                 Digest
	// Revoked is as in VerifyOptions.
	Revoked func(issuer *x509.Certificate, serial *big.Int) bool
	// At is when the receiver's chain must be valid (zero: at the
	// receipt's time). A receiver of receipts passes its own clock: the
	// receipt's time is the receiver's claim.
	At time.Time
}

// VerifyReceipt checks a receipt doc against its detached signature sig:
// the layout (malformed), the signature (tampered, bad-signature: e.g. a
// key that is not the carried certificate's), the chain at the receipt's
// time or at o.At (untrusted, revoked), that the certificate is the receiver's and
// the receiver one that receives lists (wrong-receiver), and that it
// acknowledges the expected list (wrong-owner, wrong-kind), version
// (wrong-version) and list digest (wrong-digest). It returns the receipt
// and the receiver's certificate; a refusal is an *Error.
func VerifyReceipt(doc, sig []byte, o ReceiptOptions) (Receipt, *x509.Certificate, error) {
	if o.Roots == nil || !o.Kind.Valid() || o.Owner == "" || o.Version == 0 || o.List.IsZero() {
		return Receipt{}, nil, errors.New("lists: VerifyReceipt needs the roots, the owner, the kind, the version and the list digest")
	}
	s, err := cms.Parse(sig)
	if err != nil {
		return Receipt{}, nil, cmsFailure(err)
	}
	if !s.Hash.Available() {
		return Receipt{}, nil, fail(ReasonUnsupportedAlgorithm, "digest %v", s.Hash)
	}
	hh := s.Hash.New()
	hh.Write(doc)
	if err := s.Verify(hh.Sum(nil), false); err != nil {
		return Receipt{}, nil, cmsFailure(err)
	}
	r, err := ParseReceipt(doc)
	if err != nil {
		return Receipt{}, nil, fail(ReasonMalformed, "%v", err)
	}
	at := o.At
	if at.IsZero() {
		at = r.Time
	}
	if _, err := chain(s, o.Roots, o.Intermediates, at, o.Revoked); err != nil {
		return Receipt{}, nil, err
	}
	p, err := identity.FromCertificate(s.Signer)
	switch {
	case err != nil || !samePrincipal(p, r.Receiver):
		return Receipt{}, nil, fail(ReasonWrongReceiver, "the receipt is %s's, certificate %X is not", r.Receiver, s.Signer.SerialNumber)
	case r.Owner != o.Owner:
		return Receipt{}, nil, fail(ReasonWrongOwner, "the receipt acknowledges a list of %s, not of %s", r.Owner, o.Owner)
	case r.Kind != o.Kind:
		return Receipt{}, nil, fail(ReasonWrongKind, "the receipt acknowledges a %s, not a %s", r.Kind, o.Kind)
	case r.Version != o.Version:
		return Receipt{}, nil, fail(ReasonWrongVersion, "the receipt acknowledges version %d, not %d", r.Version, o.Version)
	case r.List != o.List:
		return Receipt{}, nil, fail(ReasonWrongDigest, "the receipt acknowledges list %s, version %d is %s", r.List, r.Version, o.List)
	}
	return r, s.Signer, nil
}
