package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// lookup finds the entry for k and checks that it is the key the caller
// believes it is, and that its role grants u.
func (s *Store) lookup(k keys.Key, u keys.Usage) (*entry, error) {
	e, _, err := s.entry(k.Ref)
	if err != nil {
		return nil, err
	}
	if e.key.Role != k.Role || e.key.Algorithm != k.Algorithm {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pkcs11: key " + k.Ref.String() + " has another role or algorithm"}
	}
	if err := e.key.Check(u); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) cmacOn(sh p11.SessionHandle, e *entry, msg []byte) ([]byte, error) {
	mech := uint(p11.CKM_AES_CMAC)
	if e.key.Algorithm.TDEA() {
		mech = p11.CKM_DES3_CMAC
	}
	if err := s.mod.SignInit(sh, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, e.handle); err != nil {
		return nil, err
	}
	return s.mod.Sign(sh, msg)
}

// CMAC computes the full-length CMAC of msg with the key inside the token
// (C_Sign with CKM_AES_CMAC or CKM_DES3_CMAC). The key's role must grant
// keys.UsageCMAC. The result may be key material (an AN10922 diversified
// key): the caller owns it and wipes it.
func (s *Store) CMAC(ctx context.Context, k keys.Key, msg []byte) ([]byte, error) {
	e, err := s.lookup(k, keys.UsageCMAC)
	if err != nil {
		return nil, err
	}
	return call(ctx, s, "CMAC", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		return s.cmacOn(sh, e, msg)
	}, func(b []byte) { clear(b) })
}

// KeyBlockCMAC computes, with a key-block key (TR-31 KBPK) in the token,
// the CMAC of one TR-31 derivation block: a key block encryption or
// authentication key, which the caller wipes.
func (s *Store) KeyBlockCMAC(ctx context.Context, k keys.Key, block []byte) ([]byte, error) {
	e, err := s.lookup(k, keys.UsageKeyBlock)
	if err != nil {
		return nil, err
	}
	if len(block) != 8 {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: a TR-31 derivation block is 8 bytes")
	}
	return call(ctx, s, "CMAC", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		return s.cmacOn(sh, e, block)
	}, func(b []byte) { clear(b) })
}

// UnwrapSecret unwraps (RFC 3394 or 5649) a key that arrived wrapped
// under the key-encryption key kek and returns its value, for an import
// that checks it against its check value and creates it with its role's
// template. The token holds it only as a session object for the length of
// the call. (Unwrapping straight into a token object with samd's
// template — CKA_MODIFIABLE=false, CKA_VALUE_LEN — is refused by SoftHSM2
// with CKR_ATTRIBUTE_READ_ONLY.) A key stronger than the KEK is refused
// (keys.CheckProtection) before the token is asked. Being part of an
// import, it runs under [Config.KeygenTimeout]. The caller wipes the value.
func (s *Store) UnwrapSecret(ctx context.Context, kek keys.Key, alg keys.Algorithm, wrapped []byte, mech keys.WrapMechanism) (secret.Bytes, error) {
	e, err := s.lookup(kek, keys.UsageUnwrap)
	if err != nil {
		return secret.Bytes{}, err
	}
	if !alg.Symmetric() {
		return secret.Bytes{}, errkind.Errorf(errkind.InvalidInput, "pkcs11: only secret keys are unwrapped")
	}
	if err := keys.CheckProtection(e.key.Algorithm, alg); err != nil {
		return secret.Bytes{}, &errkind.Error{Kind: errkind.WrongRole, Msg: "pkcs11: key " + kek.Ref.String() + " may not unwrap this key", Err: err}
	}
	m, err := wrapMechanism(mech)
	if err != nil {
		return secret.Bytes{}, err
	}
	kt, _ := keyTypeOf(alg)
	v, _, err := callWithin(ctx, s, s.cfg.KeygenTimeout, "unwrap", kek.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		return s.unwrapValue(sh, p11.NewMechanism(m, nil), e.handle, wrapped, kt)
	}, func(b []byte) { clear(b) })
	if err != nil {
		return secret.Bytes{}, err
	}
	if len(v) != alg.KeyLen() {
		clear(v)
		return secret.Bytes{}, errkind.Errorf(errkind.InvalidInput, "pkcs11: the unwrapped key is %d bytes, not a %s key", len(v), alg)
	}
	return secret.New(v), nil
}

// WrapSecret wraps a secret held in samd's memory (a diversified key) under
// the key-encryption key kek, inside the token: the value becomes a
// short-lived session object, is wrapped, and the object is destroyed in
// the same call. The key's role must grant keys.UsageWrap, and the KEK
// must be at least as strong as the key (keys.CheckProtection).
func (s *Store) WrapSecret(ctx context.Context, kek keys.Key, alg keys.Algorithm, value secret.Bytes, mech keys.WrapMechanism) ([]byte, error) {
	e, err := s.lookup(kek, keys.UsageWrap)
	if err != nil {
		return nil, err
	}
	if !alg.Symmetric() || value.Len() != alg.KeyLen() {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: the value to wrap is not a %s key", alg)
	}
	if err := keys.CheckProtection(e.key.Algorithm, alg); err != nil {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pkcs11: key " + kek.Ref.String() + " may not wrap this key", Err: err}
	}
	m, err := wrapMechanism(mech)
	if err != nil {
		return nil, err
	}
	kt, _ := keyTypeOf(alg)
	return call(ctx, s, "wrap", kek.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		t := append(transitTemplate(kt, true), p11.NewAttribute(p11.CKA_VALUE, value.Reveal()))
		h, err := s.mod.CreateObject(sh, t)
		clear(t[len(t)-1].Value) // the template's copy of the key
		if err != nil {
			return nil, err
		}
		defer func() { _ = s.mod.DestroyObject(sh, h) }()
		return s.mod.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(m, nil)}, e.handle, h)
	}, nil)
}

// unwrapValue unwraps a key into a transit object that is not sensitive,
// reads its value and destroys the object, in one call on one session.
func (s *Store) unwrapValue(sh p11.SessionHandle, mech *p11.Mechanism, kek p11.ObjectHandle, wrapped []byte, kt uint) ([]byte, error) {
	h, err := s.mod.UnwrapKey(sh, []*p11.Mechanism{mech}, kek, wrapped, transitTemplate(kt, false))
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.mod.DestroyObject(sh, h) }()
	a, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if err != nil {
		return nil, err
	}
	return a[0].Value, nil
}

// transitTemplate is the template of a key in transit through the token
// for one call: a session object (gone with the session at the latest),
// extractable only so that it can be wrapped or read, with no usage at
// all; sensitive when samd wraps it, not when samd reads it.
func transitTemplate(kt uint, sensitive bool) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, kt),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, sensitive),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
	}
}

// Signer returns a crypto.Signer for a sign, ca or audit key in the token.
func (s *Store) Signer(k keys.Key) (*Signer, error) {
	e, err := s.lookup(k, keys.UsageSign)
	if err != nil {
		return nil, err
	}
	return &Signer{s: s, key: e.key, pub: e.pub}, nil
}

// Signer is a crypto.Signer whose private key stays in the token. ECDSA
// keys sign prehashed digests (CKM_ECDSA) and return ASN.1 signatures; RSA
// keys sign PKCS #1 v1.5 (CKM_RSA_PKCS over a DigestInfo) or PSS
// (CKM_RSA_PKCS_PSS) when opts is *rsa.PSSOptions.
type Signer struct {
	s   *Store
	key keys.Key
	pub any
}

var _ crypto.Signer = (*Signer)(nil)

// Public returns the public key.
func (g *Signer) Public() crypto.PublicKey { return g.pub }

// Key describes the signing key.
func (g *Signer) Key() keys.Key { return g.key }

// Sign signs digest under the store's call deadline. rand is ignored: the
// token uses its own generator.
func (g *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return g.SignContext(context.Background(), digest, opts)
}

// digestInfoPrefix is the DER prefix of a PKCS #1 v1.5 DigestInfo
// (RFC 8017 §9.2, note 1).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssParams = map[crypto.Hash][2]uint{
	crypto.SHA256: {p11.CKM_SHA256, p11.CKG_MGF1_SHA256},
	crypto.SHA384: {p11.CKM_SHA384, p11.CKG_MGF1_SHA384},
	crypto.SHA512: {p11.CKM_SHA512, p11.CKG_MGF1_SHA512},
}

// SignContext is Sign with a caller's context.
func (g *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	e, err := g.s.lookup(g.key, keys.UsageSign)
	if err != nil {
		return nil, err
	}
	h := opts.HashFunc()
	if h == 0 || len(digest) != h.Size() {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: digest does not match its hash function")
	}
	var mech *p11.Mechanism
	input := digest
	switch pub := g.pub.(type) {
	case *ecdsa.PublicKey:
		mech = p11.NewMechanism(p11.CKM_ECDSA, nil)
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			p, ok := pssParams[h]
			if !ok {
				return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: unsupported PSS hash")
			}
			salt := pss.SaltLength
			if salt == rsa.PSSSaltLengthAuto || salt == rsa.PSSSaltLengthEqualsHash {
				salt = h.Size()
			}
			mech = p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(p[0], p[1], uint(salt)))
		} else {
			prefix, ok := digestInfoPrefix[h]
			if !ok {
				return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: unsupported hash for PKCS #1 v1.5")
			}
			input = append(append([]byte(nil), prefix...), digest...)
			mech = p11.NewMechanism(p11.CKM_RSA_PKCS, nil)
		}
		_ = pub
	default:
		return nil, errkind.Errorf(errkind.Internal, "pkcs11: signer has no public key")
	}
	sig, err := call(ctx, g.s, "sign", g.key.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		if err := g.s.mod.SignInit(sh, []*p11.Mechanism{mech}, e.handle); err != nil {
			return nil, err
		}
		return g.s.mod.Sign(sh, input)
	}, nil)
	if err != nil {
		return nil, err
	}
	if _, ok := g.pub.(*ecdsa.PublicKey); ok {
		// CKM_ECDSA returns r || s; Go and X.509 want ASN.1.
		if len(sig)%2 != 0 {
			return nil, errors.New("pkcs11: malformed ECDSA signature from token")
		}
		n := len(sig) / 2
		return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
	}
	return sig, nil
}
