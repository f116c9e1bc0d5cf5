package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
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
