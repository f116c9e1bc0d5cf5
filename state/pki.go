package state

import (
	"context"
	"time"
)

// CA is a certificate authority of the scheme PKI whose key is in the HSM.
type CA struct {
	Name   string // e.g. "root", "issuing-1"
	Key    string // key reference "<name>:v<version>" of its signing key
	Parent string // the CA that issued its certificate; "" for a root
	Cert   []byte // DER
	// CRLURL is where its CRLs are published (the distribution point its
	// certificates name); DeltaURL, if set, where its delta CRLs are.
	CRLURL, DeltaURL string
	Created          time.Time
}

// Certificate is the record of a certificate a CA issued.
type Certificate struct {
	CA, Serial string // serial in upper-case hex
	Profile    string
	// Role, Operator and Device are the identity the certificate names.
	Role, Operator, Device string
	NotBefore, NotAfter    time.Time
	Cert                   []byte // DER
	// Renews is the serial of the certificate this one renewed, if any.
	Renews string
	Issued time.Time
	// Key, for a signer whose key is not in the HSM, is where it is
	// ("vault-transit:<mount>/<name>"); "" for keys in the HSM.
	Key string
}

// CertificateQuery selects recorded certificates: each field that is set
// must equal the certificate's (Serial in upper-case hex, as recorded).
type CertificateQuery struct {
	CA, Operator, Device, Serial string
	// Limit is the most returned (0: 100).
	Limit int
}

// Revocation is a revoked certificate. Seq orders the revocations of one
// CA (from 1, never reused): CRLs are built from them in that order, and a
// delta CRL lists those after its base CRL's high-water mark.
type Revocation struct {
	CA, Serial string
	Seq        int64
	Time       time.Time
	Reason     int // RFC 5280 §5.3.1 reason code
	// FromCounter, for a transaction-file signer, is the first signer
	// counter the revocation applies to; 0: every signature.
	FromCounter uint64
}

// CRLNumber is what a CRL about to be issued is numbered and built from.
type CRLNumber struct {
	// Number is the new CRL number, greater than every number taken
	// before for the CA (complete and delta CRLs share one sequence).
	Number int64
	// HighWater is the greatest revocation Seq of the CA when the number
	// was taken: the CRL lists revocations up to it.
	HighWater int64
	// Base and BaseHighWater are the last complete CRL's number and high
	// water mark (0 before the first): a delta CRL lists revocations
	// after BaseHighWater.
	Base, BaseHighWater int64
}

// EnrolmentToken lets one device enrol once, before it expires. Only the
// token's SHA-256 is stored.
type EnrolmentToken struct {
	Hash                   []byte
	CA, Profile            string
	Role, Operator, Device string
	Expires, Created       time.Time
	CreatedBy              string
}

// PublishedCRL is the last CRL (complete or delta) issued for a CA, kept
// so that every replica serves the same one.
type PublishedCRL struct {
	CA                     string
	Delta                  bool
	Number                 int64
	DER                    []byte
	ThisUpdate, NextUpdate time.Time
}

// PKI is the durable state of the scheme PKI. Every method is atomic.
type PKI interface {
	// PutCA records a new CA; KindExists if the name is taken.
	PutCA(ctx context.Context, ca CA) error
	// CAs lists the CAs in creation order.
	CAs(ctx context.Context) ([]CA, error)
	// RecordCertificate records an issued certificate; KindExists if the
	// CA already issued that serial.
	RecordCertificate(ctx context.Context, c Certificate) error
	// Certificate reads an issued certificate; KindNotFound if the CA did
	// not issue it.
	Certificate(ctx context.Context, ca, serial string) (Certificate, error)
	// LatestCertificate reads the newest certificate of a profile issued
	// to an operator's device (by any CA); KindNotFound if none.
	LatestCertificate(ctx context.Context, profile, operator, device string) (Certificate, error)
	// CertificatesOf lists every certificate recorded for an identity
	// (role, operator and device as the records name them), by any CA,
	// in the order they were issued; none is no error.
	CertificatesOf(ctx context.Context, role, operator, device string) ([]Certificate, error)
	// Renewals lists the certificates of the CA that renewed serial (whose
	// Renews names it), in the order they were issued.
	Renewals(ctx context.Context, ca, serial string) ([]Certificate, error)
	// Certificates lists the recorded certificates that match q, newest
	// issued first.
	Certificates(ctx context.Context, q CertificateQuery) ([]Certificate, error)
	// Revoke records a revocation of a serial of the CA, with the next
	// Seq, whether or not the CA's certificate with that serial is
	// recorded (a CA key may have signed outside samd's records);
	// KindNotFound if the CA is unknown, KindExists (with the earlier
	// revocation) if the serial is already revoked.
	Revoke(ctx context.Context, r Revocation) (Revocation, error)
	// Revocation reads a certificate's revocation; KindNotFound if none.
	Revocation(ctx context.Context, ca, serial string) (Revocation, error)
	// Revocations calls fn for the CA's revocations with after < Seq <=
	// upTo, in Seq order, reading them in batches (never all at once).
	Revocations(ctx context.Context, ca string, after, upTo int64, fn func(Revocation) error) error
	// TakeCRLNumber takes the next CRL number of the CA; complete marks a
	// complete CRL, whose high-water mark later delta CRLs start from.
	TakeCRLNumber(ctx context.Context, ca string, complete bool) (CRLNumber, error)
	// AddEnrolmentToken stores a token; KindExists if its hash is known.
	AddEnrolmentToken(ctx context.Context, t EnrolmentToken) error
	// EnrolmentToken reads the token with this hash; KindNotFound if
	// unknown, KindDenied if used or expired at now.
	EnrolmentToken(ctx context.Context, hash []byte, now time.Time) (EnrolmentToken, error)
	// RedeemEnrolmentToken consumes the token with this hash at time now
	// and records the certificate issued for it, both or neither:
	// KindNotFound if unknown, KindDenied if used or expired. A token is
	// redeemed once, even by concurrent callers.
	RedeemEnrolmentToken(ctx context.Context, hash []byte, now time.Time, c Certificate) error
	// PutCRL keeps the CRL a CA just published, unless one with a greater
	// number is already kept.
	PutCRL(ctx context.Context, c PublishedCRL) error
	// LatestCRL reads the CRL (complete, or delta) last kept for a CA;
	// KindNotFound if none.
	LatestCRL(ctx context.Context, ca string, delta bool) (PublishedCRL, error)
	// Lead reports whether this process leads the named job (CRL
	// publication) among the processes sharing the store, taking the
	// lead if nobody holds it. The lead stays with a process until it
	// exits or loses its database connection; call Lead before each run
	// of the job. A single-process store always leads.
	Lead(ctx context.Context, job string) (bool, error)
	// NextSequence takes the next number of a named sequence, from 1 up to
	// max and then from 1 again; every number is handed out once per turn.
	NextSequence(ctx context.Context, name string, max uint64) (uint64, error)
}
