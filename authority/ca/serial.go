package ca

import (
	"context"
	"crypto/rand"
	"math/big"
	"strings"

	"github.com/samd-io/samd/errkind"
)

// MaxSequentialSerial is the last serial number of the sequential mode:
// 2^31-1, the largest positive DER INTEGER of four content octets, so
// that the serial fits the four bytes of Håndbok 206 Part 19 §4.2.3's
// "Certificate serial number | Byte | 4" whether equipment keeps the
// number or its encoding.
const MaxSequentialSerial = 1<<31 - 1

// serialSequence is the state store's sequence of sequential serial
// numbers: one for every CA samd holds, so that a serial names one
// certificate in the whole scheme, as on the scheme's single CRL whose
// revocation records carry the serial and no issuer (§4.2.3).
const serialSequence = "pki/serial"

// newSerial is the serial number of the next certificate: 127 random
// bits, positive and at most 16 octets (RFC 5280 §4.1.2.2, the CA/Browser
// Forum's 64-bit minimum of entropy); or, in the sequential mode, the
// next number of the state store's sequence (taken durably, never twice,
// never random), refused once it would not fit four bytes — never
// wrapped, which would issue a serial twice.
func (s *Service) newSerial(ctx context.Context) (*big.Int, error) {
	if !s.cfg.SequentialSerials {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			return nil, errkind.Wrap(errkind.Internal, err, "pki: serial")
		}
		return n.Add(n, big.NewInt(1)), nil
	}
	n, err := s.cfg.State.NextSequence(ctx, serialSequence, 1<<62)
	if err != nil {
		return nil, err
	}
	if n > MaxSequentialSerial {
		return nil, errkind.Errorf(errkind.Limit, "pki: the sequential serial numbers are spent (%d issued, four bytes hold %d)", n-1, MaxSequentialSerial)
	}
	return new(big.Int).SetUint64(n), nil
}

func serialHex(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

// NormalizeSerial writes a hex serial number as samd records it: upper
// case, without "0x", colons or leading zeros (OpenSSL prints them).
func NormalizeSerial(s string) string {
	s = strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return strings.ToUpper(s) // not a serial: lookups will not find it
	}
	return serialHex(n)
}

// ParseSerial reads a serial number as an officer gives it (hex, with or
// without "0x", colons or leading zeros) and writes it as samd records
// it; it refuses what no CA could have signed: not a positive integer of
// at most 20 octets (RFC 5280 §4.1.2.2).
func ParseSerial(s string) (string, error) {
	n, ok := new(big.Int).SetString(NormalizeSerial(s), 16)
	if !ok || n.Sign() <= 0 || len(n.Bytes()) > 20 {
		return "", errkind.Errorf(errkind.InvalidInput, "pki: serial %q is not a positive hex integer of at most 20 octets (RFC 5280 §4.1.2.2)", s)
	}
	return serialHex(n), nil
}
