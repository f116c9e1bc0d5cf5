// Package kcv computes key check values of secret keys held in samd's
// memory, such as diversified card keys.
//
// A key check value identifies a key without revealing it: the first three
// bytes of a fixed computation under the key. Two methods are in use in
// ticketing and payment systems:
//
//   - [EncryptZero]: encrypt one all-zero block in ECB mode (ANSI X9.24-1
//     legacy method; what PKCS#11 tokens store in CKA_CHECK_VALUE);
//   - [CMACZero]: CMAC of one all-zero block (the AES method of ANSI
//     X9.24-1:2017 and of AWS Payment Cryptography's "CMAC" KCV).
package kcv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"errors"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// Method selects how a check value is computed. The zero value is invalid.
type Method uint8

// Methods.
const (
	MethodUnknown Method = iota
	EncryptZero          // E(K, 0^n), first three bytes
	CMACZero             // CMAC(K, 0^n), first three bytes
)

func (m Method) String() string {
	switch m {
	case EncryptZero:
		return "encrypt-zero"
	case CMACZero:
		return "cmac-zero"
	}
	return "unknown"
}

// ParseMethod parses "encrypt-zero" or "cmac-zero".
func ParseMethod(s string) (Method, error) {
	switch s {
	case "encrypt-zero":
		return EncryptZero, nil
	case "cmac-zero":
		return CMACZero, nil
	}
	return MethodUnknown, errkind.Errorf(errkind.InvalidInput, "kcv: unknown KCV method %q", s)
}

// Block returns the cipher for a secret key of the algorithm.
func Block(alg keys.Algorithm, key secret.Bytes) (cipher.Block, error) {
	if key.Len() != alg.KeyLen() || !alg.Symmetric() {
		return nil, errors.New("kcv: key length does not match its algorithm")
	}
	k := key.Reveal()
	switch {
	case alg.AES():
		return aes.NewCipher(k)
	case alg == keys.TDEA2:
		// 2TDEA is K1 K2 K1.
		k3 := make([]byte, 24)
		defer clear(k3)
		copy(k3, k)
		copy(k3[16:], k[:8])
		return des.NewTripleDESCipher(k3)
	case alg == keys.TDEA3:
		return des.NewTripleDESCipher(k)
	}
	return nil, errors.New("kcv: not a secret-key algorithm")
}

// Compute returns the three-byte check value of key.
func Compute(alg keys.Algorithm, key secret.Bytes, m Method) ([]byte, error) {
	b, err := Block(alg, key)
	if err != nil {
		return nil, err
	}
	zero := make([]byte, b.BlockSize())
	var out []byte
	switch m {
	case EncryptZero:
		out = make([]byte, b.BlockSize())
		b.Encrypt(out, zero)
	case CMACZero:
		if out, err = cmac.Sum(b, zero); err != nil {
			return nil, err
		}
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "kcv: unknown KCV method")
	}
	return out[:keys.KCVLen], nil
}
