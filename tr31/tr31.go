// Package tr31 encodes and decodes ANSI X9.143 / ASC X9 TR-31 key blocks,
// the format in which a personalisation bureau, a payment HSM or another
// SAM exchanges symmetric keys under a key block protection key (KBPK).
//
// Versions B (TDEA KBPK, key derivation binding) and D (AES KBPK) are
// supported. Versions A and C (key variant binding) are refused: TR-31
// deprecates them, and nobody should exchange scheme keys with them.
//
// A block is only as strong as its KBPK. Encode and Decode refuse a block
// whose KBPK is weaker than the key it carries (keys.CheckProtection, in
// the strength order of NIST SP 800-57 Part 1 Table 2), and an AES key in
// anything but a version D block: ANSI X9.24-1 and the PCI PIN Security
// Requirements protect a key only with a key at least as strong, and AES
// keys only with AES. TDEA ('T') and AES ('A') keys are the only ones
// whose strength the package judges; blocks carrying others are refused.
//
// The package is a crypto core: the KBPK's derived encryption and
// authentication keys (KBEK, KBAK) come from a KDF the caller gives — the
// CMAC of each derivation block under the KBPK, computed where the KBPK
// lives (the HSM) — so the KBPK itself is never in memory. The key a block
// carries is returned as secret.Bytes; the caller wipes it.
package tr31

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// Header is a key block's clear header (TR-31 §A.2).
type Header struct {
	Version byte // 'B' or 'D'
	// Usage is the two-character key usage ("P0" PIN encryption, "K0"
	// key encryption, "M3" ISO 9797-1 MAC algorithm 3, "D0" data
	// encryption, "B0" BDK, ...).
	Usage string
	// Algorithm: 'T' TDEA, 'A' AES, 'D' DEA, 'H' HMAC, ...
	Algorithm byte
	// ModeOfUse: 'B' both, 'E' encrypt/wrap, 'D' decrypt/unwrap, 'N' no
	// special restrictions, 'C' MAC generate and verify, 'G', 'V', 'X'
	// derive keys, ...
	ModeOfUse byte
	// KeyVersion is "00" when unused.
	KeyVersion string
	// Exportability: 'E' exportable under a trusted key, 'N' not
	// exportable, 'S' sensitive.
	Exportability byte
	// Optional blocks, in order.
	Optional []OptionalBlock
}

// OptionalBlock is one optional header block ("KS" key set identifier,
// "KV" key block values, "PB" padding, ...).
type OptionalBlock struct {
	ID   string
	Data string
}

// Block is a decoded key block.
type Block struct {
	Header Header
	Key    secret.Bytes
}

// KDF computes CMAC(KBPK, block) for one derivation block: 8 bytes for a
// TDEA KBPK, 16 for AES.
type KDF func(block []byte) ([]byte, error)

// Errors.
var (
	ErrFormat   = errors.New("tr31: malformed key block")
	ErrVersion  = errors.New("tr31: unsupported key block version")
	ErrMAC      = errors.New("tr31: the key block's MAC does not verify (wrong KBPK, or the block was altered)")
	ErrKBPKSize = errors.New("tr31: the KBPK length does not fit the version")
)

// params are a version's sizes.
type params struct {
	blockSize, macLen int
	newCipher         func([]byte) (cipher.Block, error)
}

func versionParams(v byte) (params, error) {
	switch v {
	case 'B':
		return params{blockSize: 8, macLen: 8, newCipher: des.NewTripleDESCipher}, nil
	case 'D':
		return params{blockSize: 16, macLen: 16, newCipher: aes.NewCipher}, nil
	case 'A', 'C':
		return params{}, fmt.Errorf("%w: version %c uses key variant binding, which TR-31 deprecates", ErrVersion, v)
	}
	return params{}, fmt.Errorf("%w: %q", ErrVersion, v)
}

// kbpkAlgorithm is the algorithm of a version's KBPK of n bytes.
func kbpkAlgorithm(v byte, n int) keys.Algorithm {
	switch {
	case v == 'B' && n == 16:
		return keys.TDEA2
	case v == 'B' && n == 24:
		return keys.TDEA3
	case v == 'D' && n == 16:
		return keys.AES128
	case v == 'D' && n == 24:
		return keys.AES192
	case v == 'D' && n == 32:
		return keys.AES256
	}
	return keys.AlgUnknown
}

// keyAlgorithm is the algorithm of an n-byte key whose header algorithm
// is a ('T' TDEA, 'A' AES); AlgUnknown for any other.
func keyAlgorithm(a byte, n int) keys.Algorithm {
	switch {
	case a == 'T' && n == 16:
		return keys.TDEA2
	case a == 'T' && n == 24:
		return keys.TDEA3
	case a == 'A' && n == 16:
		return keys.AES128
	case a == 'A' && n == 24:
		return keys.AES192
	case a == 'A' && n == 32:
		return keys.AES256
	}
	return keys.AlgUnknown
}

// checkProtection applies samd's protection rule to a block of header h
// carrying a keyLen-byte key under a kbpkLen-byte KBPK: an AES key only in
// version D, and a KBPK at least as strong as the key. A refusal has kind
// errkind.WrongRole and wraps keys.ErrWeakProtection.
func checkProtection(h Header, keyLen, kbpkLen int) error {
	kbpk := kbpkAlgorithm(h.Version, kbpkLen)
	if kbpk == keys.AlgUnknown {
		return fmt.Errorf("%w: %d bytes for version %c", ErrKBPKSize, kbpkLen, h.Version)
	}
	if h.Algorithm == 'A' && h.Version != 'D' {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: fmt.Sprintf("tr31: an AES key goes only into a version D block (AES KBPK), not version %c under a %s KBPK", h.Version, kbpk), Err: keys.ErrWeakProtection}
	}
	key := keyAlgorithm(h.Algorithm, keyLen)
	if err := keys.CheckProtection(kbpk, key); err != nil {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: fmt.Sprintf("tr31: a version %c block under a %s KBPK may not carry a %d-byte key of algorithm %c", h.Version, kbpk, keyLen, h.Algorithm), Err: err}
	}
	return nil
}

// deriveKeys derives KBEK and KBAK from the KBPK (TR-31 §5.3.2.1 for B,
// §5.3.2.3 for D): NIST SP 800-108 counter mode with CMAC as the PRF,
// each input block counter ‖ key usage (0000 encryption, 0001 MAC) ‖
// 00 separator ‖ algorithm ‖ length in bits.
func deriveKeys(v byte, kbpkLen int, kdf KDF) (kbek, kbak []byte, err error) {
	var alg uint16
	switch {
	case v == 'B' && kbpkLen == 16:
		alg = 0x0000 // 2TDEA
	case v == 'B' && kbpkLen == 24:
		alg = 0x0001 // 3TDEA
	case v == 'D' && kbpkLen == 16:
		alg = 0x0002
	case v == 'D' && kbpkLen == 24:
		alg = 0x0003
	case v == 'D' && kbpkLen == 32:
		alg = 0x0004
	default:
		return nil, nil, fmt.Errorf("%w: %d bytes for version %c", ErrKBPKSize, kbpkLen, v)
	}
	derive := func(usage uint16) ([]byte, error) {
		var out []byte
		for counter := byte(1); len(out) < kbpkLen; counter++ {
			in := make([]byte, 8)
			in[0] = counter
			binary.BigEndian.PutUint16(in[1:], usage)
			in[3] = 0
			binary.BigEndian.PutUint16(in[4:], alg)
			binary.BigEndian.PutUint16(in[6:], uint16(kbpkLen*8))
			m, err := kdf(in) // for AES, CMAC pads the 8 bytes (K2)
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
		}
		return out[:kbpkLen], nil
	}
	if kbek, err = derive(0x0000); err != nil {
		return nil, nil, err
	}
	if kbak, err = derive(0x0001); err != nil {
		clear(kbek)
		return nil, nil, err
	}
	return kbek, kbak, nil
}

// SoftwareKDF is the KDF of a KBPK held in memory (tests, and keys a
// ceremony has in hand); samd's KBPKs live in the HSM.
func SoftwareKDF(version byte, kbpk []byte) (KDF, error) {
	p, err := versionParams(version)
	if err != nil {
		return nil, err
	}
	b, err := p.newCipher(tdeaKey(version, kbpk))
	if err != nil {
		return nil, err
	}
	return func(block []byte) ([]byte, error) { return cmac.Sum(b, block) }, nil
}

// tdeaKey expands a 2TDEA key to the 24 bytes crypto/des takes.
func tdeaKey(version byte, k []byte) []byte {
	if version == 'B' && len(k) == 16 {
		return append(append([]byte(nil), k...), k[:8]...)
	}
	return k
}

// encode writes the header with the block's total length.
func (h Header) encode(total int) (string, error) {
	if len(h.Usage) != 2 || len(h.KeyVersion) != 2 {
		return "", fmt.Errorf("%w: key usage and key version are two characters", ErrFormat)
	}
	var opt bytes.Buffer
	for _, o := range h.Optional {
		n := 4 + len(o.Data)
		if len(o.ID) != 2 || n > 255 {
			return "", fmt.Errorf("%w: optional block %q", ErrFormat, o.ID)
		}
		fmt.Fprintf(&opt, "%s%02X%s", o.ID, n, o.Data)
	}
	return fmt.Sprintf("%c%04d%s%c%c%s%c%02d00%s", h.Version, total, h.Usage, h.Algorithm, h.ModeOfUse, h.KeyVersion, h.Exportability, len(h.Optional), opt.String()), nil
}

// Encode wraps key in a key block under the KBPK (kbpkLen bytes; its KDF
// is kdf). The key is padded with random bytes to a multiple of the
// cipher block (TR-31 §A.4); rand supplies them.
func Encode(rand io.Reader, h Header, key secret.Bytes, kbpkLen int, kdf KDF) (string, error) {
	p, err := versionParams(h.Version)
	if err != nil {
		return "", err
	}
	if err := checkProtection(h, key.Len(), kbpkLen); err != nil {
		return "", err
	}
	k := key.Reveal()
	padLen := p.blockSize - (2+len(k))%p.blockSize
	if padLen == p.blockSize {
		padLen = 0
	}
	pad := make([]byte, padLen)
	if _, err := io.ReadFull(rand, pad); err != nil {
		return "", err
	}
	return encode(h, k, pad, kbpkLen, kdf, p)
}

func encode(h Header, k, pad []byte, kbpkLen int, kdf KDF, p params) (string, error) {
	payload := make([]byte, 0, 2+len(k)+len(pad))
	payload = binary.BigEndian.AppendUint16(payload, uint16(len(k)*8))
	payload = append(append(payload, k...), pad...)
	defer clear(payload)
	if len(payload)%p.blockSize != 0 {
		return "", fmt.Errorf("%w: padding", ErrFormat)
	}
	hdrLen, err := h.encode(0)
	if err != nil {
		return "", err
	}
	total := len(hdrLen) + 2*len(payload) + 2*p.macLen
	hdr, _ := h.encode(total)
	kbek, kbak, err := deriveKeys(h.Version, kbpkLen, kdf)
	if err != nil {
		return "", err
	}
	defer clear(kbek)
	defer clear(kbak)
	mac, err := macOf(p, h.Version, kbak, []byte(hdr), payload)
	if err != nil {
		return "", err
	}
	enc, err := p.newCipher(tdeaKey(h.Version, kbek))
	if err != nil {
		return "", err
	}
	ct := make([]byte, len(payload))
	cipher.NewCBCEncrypter(enc, mac[:p.blockSize]).CryptBlocks(ct, payload)
	return hdr + strings.ToUpper(hex.EncodeToString(ct)+hex.EncodeToString(mac)), nil
}

func macOf(p params, v byte, kbak, header, payload []byte) ([]byte, error) {
	b, err := p.newCipher(tdeaKey(v, kbak))
	if err != nil {
		return nil, err
	}
	m, err := cmac.Sum(b, append(append([]byte(nil), header...), payload...))
	if err != nil {
		return nil, err
	}
	return m[:p.macLen], nil
}

// ParseHeader reads a key block's clear header and returns it with the
// header's length in characters.
func ParseHeader(s string) (Header, int, error) {
	if len(s) < 16 {
		return Header{}, 0, fmt.Errorf("%w: shorter than a header", ErrFormat)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return Header{}, 0, fmt.Errorf("%w: not printable ASCII", ErrFormat)
		}
	}
	h := Header{Version: s[0], Usage: s[5:7], Algorithm: s[7], ModeOfUse: s[8], KeyVersion: s[9:11], Exportability: s[11]}
	total, err := strconv.Atoi(s[1:5])
	if err != nil || total != len(s) {
		return Header{}, 0, fmt.Errorf("%w: the length field %q is not the block's length %d", ErrFormat, s[1:5], len(s))
	}
	nOpt, err := strconv.Atoi(s[12:14])
	if err != nil || s[14:16] != "00" {
		return Header{}, 0, fmt.Errorf("%w: optional block count or reserved field", ErrFormat)
	}
	off := 16
	for range nOpt {
		if off+4 > len(s) {
			return Header{}, 0, fmt.Errorf("%w: optional blocks run past the block", ErrFormat)
		}
		n, err := strconv.ParseUint(s[off+2:off+4], 16, 8)
		if err != nil || n < 4 || off+int(n) > len(s) {
			return Header{}, 0, fmt.Errorf("%w: optional block %q length", ErrFormat, s[off:off+2])
		}
		h.Optional = append(h.Optional, OptionalBlock{ID: s[off : off+2], Data: s[off+4 : off+int(n)]})
		off += int(n)
	}
	return h, off, nil
}

// Decode verifies a key block's MAC under the KBPK (kbpkLen bytes; its
// KDF is kdf) and returns its header and key. The MAC is checked, in
// constant time, before the key is used.
func Decode(s string, kbpkLen int, kdf KDF) (Block, error) {
	h, payload, err := decode(s, kbpkLen, kdf)
	defer clear(payload)
	if err != nil {
		return Block{}, err
	}
	bits := int(binary.BigEndian.Uint16(payload))
	if bits%8 != 0 || 2+bits/8 > len(payload) || bits == 0 {
		return Block{}, fmt.Errorf("%w: key length %d bits", ErrFormat, bits)
	}
	if err := checkProtection(h, bits/8, kbpkLen); err != nil {
		return Block{}, err
	}
	return Block{Header: h, Key: secret.Copy(payload[2 : 2+bits/8])}, nil
}

// decode verifies the MAC and returns the clear payload (length, key,
// padding).
func decode(s string, kbpkLen int, kdf KDF) (Header, []byte, error) {
	h, hdrLen, err := ParseHeader(s)
	if err != nil {
		return Header{}, nil, err
	}
	p, err := versionParams(h.Version)
	if err != nil {
		return Header{}, nil, err
	}
	body := s[hdrLen:]
	if len(body) < 2*(p.macLen+p.blockSize) || (len(body)-2*p.macLen)%(2*p.blockSize) != 0 {
		return Header{}, nil, fmt.Errorf("%w: the encrypted key and MAC have a bad length", ErrFormat)
	}
	ct, err := hex.DecodeString(body[:len(body)-2*p.macLen])
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: the encrypted key is not hex", ErrFormat)
	}
	mac, err := hex.DecodeString(body[len(body)-2*p.macLen:])
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: the MAC is not hex", ErrFormat)
	}
	kbek, kbak, err := deriveKeys(h.Version, kbpkLen, kdf)
	if err != nil {
		return Header{}, nil, err
	}
	defer clear(kbek)
	defer clear(kbak)
	dec, err := p.newCipher(tdeaKey(h.Version, kbek))
	if err != nil {
		return Header{}, nil, err
	}
	payload := make([]byte, len(ct))
	cipher.NewCBCDecrypter(dec, mac[:p.blockSize]).CryptBlocks(payload, ct)
	want, err := macOf(p, h.Version, kbak, []byte(s[:hdrLen]), payload)
	if err != nil {
		clear(payload)
		return Header{}, nil, err
	}
	if subtle.ConstantTimeCompare(want, mac) != 1 {
		clear(payload)
		return Header{}, nil, ErrMAC
	}
	return h, payload, nil
}
