package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// gcmNonce and gcmTag are the AES-GCM parameters of SealData.
const (
	gcmNonce = 12
	gcmTag   = 16
)

// SealData encrypts and authenticates plaintext with aad under a
// session-seal key in the token (AES-GCM, a fresh random 96-bit nonce):
// nonce ‖ ciphertext ‖ tag. samd seals card session state with it, so that
// any replica can continue a session and no caller can read or alter it.
func (s *Store) SealData(ctx context.Context, k keys.Key, plaintext, aad []byte) ([]byte, error) {
	e, err := s.lookup(k, keys.UsageEncrypt)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcmNonce)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct, err := call(ctx, s, "seal", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		params := p11.NewGCMParams(nonce, aad, gcmTag*8)
		defer params.Free()
		if err := s.mod.EncryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, e.handle); err != nil {
			return nil, err
		}
		return s.mod.Encrypt(sh, plaintext)
	}, nil)
	if err != nil {
		return nil, err
	}
	return append(nonce, ct...), nil
}

// OpenData reverses SealData. A sealed blob that was altered, or sealed
// with other aad or another key, fails with errkind.CheckFailed. The
// plaintext may hold secrets: the caller wipes it.
func (s *Store) OpenData(ctx context.Context, k keys.Key, sealed, aad []byte) ([]byte, error) {
	e, err := s.lookup(k, keys.UsageDecrypt)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcmNonce+gcmTag {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: sealed data too short")
	}
	pt, err := call(ctx, s, "open", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		params := p11.NewGCMParams(sealed[:gcmNonce], aad, gcmTag*8)
		defer params.Free()
		if err := s.mod.DecryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, e.handle); err != nil {
			return nil, err
		}
		pt, err := s.mod.Decrypt(sh, sealed[gcmNonce:])
		switch {
		case err == nil:
			return pt, nil
		case errors.Is(err, p11.Error(p11.CKR_ENCRYPTED_DATA_INVALID)), errors.Is(err, p11.Error(p11.CKR_ENCRYPTED_DATA_LEN_RANGE)),
			// SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR. Taking
			// it for authentication failure keeps a forged token from
			// tearing the connection down; a token that really failed is
			// caught by the store's health probe within a second.
			errors.Is(err, p11.Error(p11.CKR_GENERAL_ERROR)):
			return nil, errNotAuthentic
		}
		return nil, err
	}, func(b []byte) { clear(b) })
	if errors.Is(err, errNotAuthentic) {
		return nil, &errkind.Error{Kind: errkind.CheckFailed, Msg: "pkcs11: sealed data does not authenticate"}
	}
	return pt, err
}

var errNotAuthentic = errors.New("pkcs11: not authentic")

// GCMKeystream returns n bytes (1..64) of the AES-GCM keystream of nonce
// under the session-seal key k, computed in the token: NIST SP 800-38D
// §7.1's GCTR blocks from inc32(J0), with J0 = nonce ‖ 0^31 ‖ 1 for a
// 96-bit nonce — AES_K(nonce ‖ 00000002) ‖ AES_K(nonce ‖ 00000003) … —
// obtained by encrypting n zero bytes with CKM_AES_GCM under that nonce
// and dropping the tag. It is a pseudo-random function of the nonce under
// k, the same in every process that holds k: samd derives from it the
// subkeys that seal card session tokens in software (authority
// Sessions). Its nonces are never ones SealData draws: the caller puts
// them in a space of their own (a fixed prefix), and SealData's random
// 96-bit nonces meet that space with probability 2^-32 per seal, then a
// given nonce with 2^-64.
func (s *Store) GCMKeystream(ctx context.Context, k keys.Key, nonce []byte, n int) (secret.Bytes, error) {
	if len(nonce) != gcmNonce || n < 1 || n > 64 {
		return secret.Bytes{}, errkind.Errorf(errkind.InvalidInput, "pkcs11: a GCM keystream takes a 12-byte nonce and 1 to 64 bytes")
	}
	e, err := s.lookup(k, keys.UsageEncrypt)
	if err != nil {
		return secret.Bytes{}, err
	}
	ct, err := call(ctx, s, "keystream", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		params := p11.NewGCMParams(nonce, nil, gcmTag*8)
		defer params.Free()
		if err := s.mod.EncryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}, e.handle); err != nil {
			return nil, err
		}
		return s.mod.Encrypt(sh, make([]byte, n))
	}, func(b []byte) { clear(b) })
	if err != nil {
		return secret.Bytes{}, err
	}
	defer clear(ct)
	if len(ct) != n+gcmTag {
		return secret.Bytes{}, errkind.Errorf(errkind.Internal, "pkcs11: GCM returned %d bytes for %d", len(ct), n)
	}
	return secret.Copy(ct[:n]), nil
}
