package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// listCRLs are the CRLs `list verify --crl` checks a list signer's chain
// against (lists.VerifyOptions.Revoked). A CRL speaks for the
// certificates its CA issued: it counts for a certificate of the chain
// when it names that certificate's issuer and verifies under it. A
// certificate on it is revoked, and so is every certificate its CA issued
// once the CRL is past its nextUpdate (fail closed, as OpenSSL's
// -crl_check).
type listCRLs []*x509.RevocationList

// readListCRLs reads the files (each PEM "X509 CRL" blocks or one DER
// CRL; names comma-separated or the flag repeated).
func readListCRLs(files []string) (listCRLs, error) {
	var out listCRLs
	for _, arg := range files {
		for _, name := range strings.Split(arg, ",") {
			if name == "" {
				continue
			}
			data, err := os.ReadFile(name)
			if err != nil {
				return nil, err
			}
			ders := [][]byte{data}
			if bytes.Contains(data, []byte("-----BEGIN")) {
				ders = nil
				for rest := data; ; {
					var b *pem.Block
					if b, rest = pem.Decode(rest); b == nil {
						break
					}
					if b.Type == "X509 CRL" {
						ders = append(ders, b.Bytes)
					}
				}
			}
			if len(ders) == 0 {
				return nil, fmt.Errorf("--crl %s: no CRL in the file", name)
			}
			for _, der := range ders {
				rl, err := x509.ParseRevocationList(der)
				if err != nil {
					return nil, fmt.Errorf("--crl %s: %w", name, err)
				}
				out = append(out, rl)
			}
		}
	}
	return out, nil
}

// revoked reports, at now, whether the certificate issuer issued with
// serial is revoked by one of the CRLs (see listCRLs).
func (l listCRLs) revoked(now time.Time) func(issuer *x509.Certificate, serial *big.Int) bool {
	return func(issuer *x509.Certificate, serial *big.Int) bool {
		for _, rl := range l {
			if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) || rl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			if !rl.NextUpdate.IsZero() && now.After(rl.NextUpdate) {
				return true
			}
			for _, e := range rl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(serial) == 0 {
					return true
				}
			}
		}
		return false
	}
}

// stringsFlag is a flag that may be given more than once.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }
