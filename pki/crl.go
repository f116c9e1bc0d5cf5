package pki

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"

	"github.com/samd-io/samd/revocation"
)

// Entry is one revoked certificate.
type Entry struct {
	Serial    *big.Int
	RevokedAt time.Time
	// Reason is the RFC 5280 §5.3.1 reason code; unspecified (0) is left
	// out of the entry, as §5.3.1 recommends.
	Reason revocation.Reason
	// Issuer, on an indirect CRL, is the DER Name (RawSubject) of the CA
	// that issued the certificate: the entry's certificateIssuer
	// extension (§5.3.3).
	Issuer []byte
}

// CRL is what to put in one X.509 v2 CRL (RFC 5280 §5).
type CRL struct {
	// Number is the CRL number (§5.2.3): it must be greater than
	// Previous, the number of the last CRL this CA issued (nil before the
	// first), so that CRL numbers never go backwards; at most 20 octets.
	Number, Previous *big.Int
	// ThisUpdate and NextUpdate (§5.1.2.4, §5.1.2.5); NextUpdate is
	// required and must be later.
	ThisUpdate, NextUpdate time.Time
	// Entries are the revoked certificates, in any order; a serial may
	// appear once.
	Entries []Entry
	// DeltaOf, if set, makes this a delta CRL (§5.2.4) listing the changes
	// since the complete CRL with that number.
	DeltaOf *big.Int
	// FreshestCRL, on a complete CRL, names the URIs where its delta CRLs
	// are published (§5.2.6).
	FreshestCRL []string
	// Indirect makes an indirect CRL (§5.2.5, §5.3.3): it lists
	// certificates of other CAs besides the issuer's, each entry names its
	// CA in a certificateIssuer extension (critical, on every entry, so
	// that no entry depends on the one before), and the CRL carries an
	// issuingDistributionPoint with indirectCRL TRUE (critical). Not with
	// DeltaOf.
	Indirect bool
}

var (
	oidDeltaCRLIndicator  = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFreshestCRL        = asn1.ObjectIdentifier{2, 5, 29, 46}
	oidIssuingDistPoint   = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidCertificateIssuer  = asn1.ObjectIdentifier{2, 5, 29, 29}
	issuingDistPointIndir = []byte{0x30, 0x03, 0x84, 0x01, 0xff} // IssuingDistributionPoint { indirectCRL [4] TRUE }
)

// IssueCRL builds the CRL c of the CA issuer and signs it with signer, the
// CA's key (SHA-256 for P-256 and RSA keys, SHA-384 for P-384). The CRL
// carries the authority key identifier of issuer, which must have one and
// may sign CRLs (crypto/x509 checks both, and the 20-octet bound on the
// CRL number). It returns the DER encoding.
func IssueCRL(rand io.Reader, issuer *x509.Certificate, signer crypto.Signer, c CRL) ([]byte, error) {
	switch {
	case c.Number == nil || c.Number.Sign() <= 0:
		return nil, errors.New("pki: the CRL number must be a positive integer")
	case c.Previous != nil && c.Number.Cmp(c.Previous) <= 0:
		return nil, fmt.Errorf("pki: CRL number %s does not exceed the last one issued, %s", c.Number, c.Previous)
	case c.ThisUpdate.IsZero() || !c.NextUpdate.After(c.ThisUpdate):
		return nil, errors.New("pki: nextUpdate must be after thisUpdate")
	case !sameKey(issuer.PublicKey, signer.Public()):
		return nil, errors.New("pki: the signer's key is not the issuer certificate's")
	case c.DeltaOf != nil && (c.DeltaOf.Sign() <= 0 || c.DeltaOf.Cmp(c.Number) >= 0):
		return nil, errors.New("pki: a delta CRL's base CRL number must be positive and below its own")
	case c.DeltaOf != nil && len(c.FreshestCRL) > 0:
		return nil, errors.New("pki: a delta CRL does not name a freshest CRL")
	case c.Indirect && c.DeltaOf != nil:
		return nil, errors.New("pki: samd issues no indirect delta CRL")
	}
	entries := make([]x509.RevocationListEntry, 0, len(c.Entries))
	for _, e := range c.Entries {
		switch {
		case e.Serial == nil || e.Serial.Sign() <= 0:
			return nil, errors.New("pki: a revoked serial number must be positive")
		case e.RevokedAt.IsZero() || e.RevokedAt.After(c.ThisUpdate):
			return nil, fmt.Errorf("pki: serial %X: the revocation time must be set and not after thisUpdate", e.Serial)
		case e.Reason < 0 || e.Reason == 7 || e.Reason > 10:
			return nil, fmt.Errorf("pki: serial %X: reason code %d is not an RFC 5280 reason", e.Serial, int(e.Reason))
		case e.Reason == 8 && c.DeltaOf == nil:
			return nil, fmt.Errorf("pki: serial %X: removeFromCRL belongs in delta CRLs only", e.Serial)
		}
		entry := x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt.UTC(), ReasonCode: int(e.Reason)}
		switch {
		case c.Indirect && len(e.Issuer) == 0:
			return nil, fmt.Errorf("pki: serial %X: an indirect CRL's entry names its certificate's issuer", e.Serial)
		case !c.Indirect && len(e.Issuer) > 0:
			return nil, fmt.Errorf("pki: serial %X: only an indirect CRL names another issuer", e.Serial)
		case c.Indirect:
			v, err := certificateIssuer(e.Issuer)
			if err != nil {
				return nil, fmt.Errorf("pki: serial %X: %w", e.Serial, err)
			}
			entry.ExtraExtensions = []pkix.Extension{{Id: oidCertificateIssuer, Critical: true, Value: v}}
		}
		entries = append(entries, entry)
	}
	// Sorted by issuer, then serial; a serial is listed once per issuer.
	slices.SortFunc(entries, func(a, b x509.RevocationListEntry) int {
		return cmp.Or(bytes.Compare(entryIssuer(a), entryIssuer(b)), a.SerialNumber.Cmp(b.SerialNumber))
	})
	for i := 1; i < len(entries); i++ {
		if entries[i].SerialNumber.Cmp(entries[i-1].SerialNumber) == 0 && bytes.Equal(entryIssuer(entries[i]), entryIssuer(entries[i-1])) {
			return nil, fmt.Errorf("pki: serial %X is listed twice", entries[i].SerialNumber)
		}
	}
	var ext []pkix.Extension
	if c.Indirect {
		ext = append(ext, pkix.Extension{Id: oidIssuingDistPoint, Critical: true, Value: issuingDistPointIndir})
	}
	if c.DeltaOf != nil {
		v, err := asn1.Marshal(c.DeltaOf)
		if err != nil {
			return nil, err
		}
		ext = append(ext, pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: v})
	}
	if len(c.FreshestCRL) > 0 {
		v, err := distributionPoints(c.FreshestCRL)
		if err != nil {
			return nil, err
		}
		ext = append(ext, pkix.Extension{Id: oidFreshestCRL, Value: v})
	}
	tmpl := &x509.RevocationList{
		Number:                    c.Number,
		ThisUpdate:                c.ThisUpdate.UTC(),
		NextUpdate:                c.NextUpdate.UTC(),
		RevokedCertificateEntries: entries,
		ExtraExtensions:           ext,
	}
	der, err := x509.CreateRevocationList(rand, tmpl, issuer, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: sign CRL: %w", err)
	}
	return der, nil
}

// certificateIssuer encodes the certificateIssuer entry extension
// (RFC 5280 §5.3.3): GeneralNames holding one directoryName ([4],
// explicit: Name is a CHOICE), the issuer's DER Name.
func certificateIssuer(name []byte) ([]byte, error) {
	var n pkix.RDNSequence
	if rest, err := asn1.Unmarshal(name, &n); err != nil || len(rest) > 0 {
		return nil, errors.New("the certificate issuer is not a DER Name")
	}
	return asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}})
}

// entryIssuer is the certificateIssuer value of an entry (nil if none),
// which orders an indirect CRL's entries by issuer.
func entryIssuer(e x509.RevocationListEntry) []byte {
	for _, x := range e.ExtraExtensions {
		if x.Id.Equal(oidCertificateIssuer) {
			return x.Value
		}
	}
	return nil
}

// distributionPoints encodes CRLDistributionPoints (RFC 5280 §4.2.1.13),
// the syntax of the Freshest CRL extension, each point one URI.
func distributionPoints(uris []string) ([]byte, error) {
	type dpName struct {
		FullName []asn1.RawValue `asn1:"optional,tag:0"`
	}
	type dp struct {
		Name dpName `asn1:"optional,tag:0"`
	}
	var dps []dp
	for _, u := range uris {
		if u == "" {
			return nil, errors.New("pki: empty freshest-CRL URI")
		}
		dps = append(dps, dp{Name: dpName{FullName: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)}}}})
	}
	return asn1.Marshal(dps)
}

// sameKey reports whether a and b are the same public key (every key
// type crypto/x509 parses has an Equal method).
func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
