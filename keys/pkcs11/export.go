package pkcs11

import (
	"context"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// Exporting a token key (key.export under dual control). Only a key made
// exportable (keys.Key.Exportable: CKA_EXTRACTABLE, still CKA_SENSITIVE)
// can leave the token at all; every other key is non-extractable and the
// token refuses to wrap it (CKR_KEY_UNEXTRACTABLE).

// exportable finds an exportable key's entry.
func (s *Store) exportable(k keys.Key) (*entry, error) {
	e, _, err := s.entry(k.Ref)
	if err != nil {
		return nil, err
	}
	if e.key.Role != k.Role || e.key.Algorithm != k.Algorithm {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pkcs11: key " + k.Ref.String() + " has another role or algorithm"}
	}
	if !e.key.Exportable {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pkcs11: key " + k.Ref.String() + " is not extractable: it never leaves the token"}
	}
	return e, nil
}

// WrapKey wraps an exportable token key under the key-encryption key kek
// with AES key wrap (RFC 3394) or with padding (RFC 5649), in the token
// (C_WrapKey): the key's value never reaches samd's memory. The KEK must
// be at least as strong as the key (keys.CheckProtection).
func (s *Store) WrapKey(ctx context.Context, kek, k keys.Key, mech keys.WrapMechanism) ([]byte, error) {
	w, err := s.lookup(kek, keys.UsageWrap)
	if err != nil {
		return nil, err
	}
	e, err := s.exportable(k)
	if err != nil {
		return nil, err
	}
	if err := keys.CheckProtection(w.key.Algorithm, e.key.Algorithm); err != nil {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pkcs11: key " + kek.Ref.String() + " may not wrap " + k.Ref.String(), Err: err}
	}
	m, err := wrapMechanism(mech)
	if err != nil {
		return nil, err
	}
	return call(ctx, s, "wrap", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		return s.mod.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(m, nil)}, w.handle, e.handle)
	}, nil)
}

// RevealExportable returns an exportable token key's value, for an export
// format the token cannot make itself (a TR-31 key block: its payload is
// the key's length, the key and padding, enciphered under a key derived
// from the KBPK). The token wraps the key (AES-KWP) under a fresh AES-256
// session key it generates and unwraps it again as a session object that
// is not sensitive, whose value is read and which is destroyed, with the
// session key, in the same call. The value is in samd's memory from then
// until the caller wipes it.
func (s *Store) RevealExportable(ctx context.Context, k keys.Key) (secret.Bytes, error) {
	e, err := s.exportable(k)
	if err != nil {
		return secret.Bytes{}, err
	}
	kt, _ := keyTypeOf(e.key.Algorithm)
	v, err := call(ctx, s, "reveal", k.Ref, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
		kw := []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}
		tmp, err := s.mod.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_WRAP, true),
			p11.NewAttribute(p11.CKA_UNWRAP, true),
			p11.NewAttribute(p11.CKA_ENCRYPT, false),
			p11.NewAttribute(p11.CKA_DECRYPT, false),
			p11.NewAttribute(p11.CKA_SIGN, false),
			p11.NewAttribute(p11.CKA_VERIFY, false),
			p11.NewAttribute(p11.CKA_DERIVE, false),
		})
		if err != nil {
			return nil, err
		}
		defer func() { _ = s.mod.DestroyObject(sh, tmp) }()
		wrapped, err := s.mod.WrapKey(sh, kw, tmp, e.handle)
		if err != nil {
			return nil, err
		}
		return s.unwrapValue(sh, kw[0], tmp, wrapped, kt)
	}, func(b []byte) { clear(b) })
	if err != nil {
		return secret.Bytes{}, err
	}
	if len(v) != e.key.Algorithm.KeyLen() {
		clear(v)
		return secret.Bytes{}, errkind.Errorf(errkind.Internal, "pkcs11: the token returned %d bytes for a %s key", len(v), e.key.Algorithm)
	}
	return secret.New(v), nil
}

// wrapMechanism is the token's mechanism for AES-KW or AES-KWP.
func wrapMechanism(mech keys.WrapMechanism) (uint, error) {
	switch mech {
	case keys.WrapKW:
		return p11.CKM_AES_KEY_WRAP, nil
	case keys.WrapKWP:
		return p11.CKM_AES_KEY_WRAP_PAD, nil
	}
	return 0, errkind.Errorf(errkind.InvalidInput, "pkcs11: wrap with AES-KW or AES-KWP")
}
