package ca

import (
	"crypto/rand"
	"math/big"
	"strings"

	"github.com/samd-io/samd/errkind"
)

func newSerial() *big.Int {
	// 127 random bits, positive and at most 16 octets (RFC 5280 §4.1.2.2,
	// CA/Browser Forum's 64-bit minimum of entropy).
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
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
