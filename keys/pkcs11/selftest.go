package pkcs11

import (
	"context"
	"crypto/subtle"
	"encoding/hex"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// selfTests are known answers that the token's CMAC must reproduce before
// samd serves: the AN10922 AES-128 example's CMAC step (NXP AN10922 §2.2.1:
// master 00112233…EEFF, D = 01 ‖ 04782E21801D80 ‖ 3042F5 ‖ "NXP Abu") and
// the three-key TDEA example of NIST SP 800-38B Appendix D (Mlen = 160).
var selfTests = []struct {
	name          string
	keyType, mech uint
	key, msg, mac string
}{
	{"AN10922 AES-128 CMAC", p11.CKK_AES, p11.CKM_AES_CMAC,
		"00112233445566778899AABBCCDDEEFF", "0104782E21801D803042F54E585020416275", "A8DD63A3B89D54B37CA802473FDA9175"},
	{"SP 800-38B TDEA CMAC", p11.CKK_DES3, p11.CKM_DES3_CMAC,
		"8AA83BF8CBDA10620BC1BF19FBB6CD58BC313D4A371CA8B5", "6BC1BEE22E409F96E93D7E117393172AAE2D8A57", "743DDBE0CE2DC2ED"},
}

// SelfTest runs the known-answer tests through the token, each under a
// session key made for the test and destroyed after it. samd refuses to
// serve when one fails.
func (s *Store) SelfTest(ctx context.Context) error {
	for _, st := range selfTests {
		key, _ := hex.DecodeString(st.key)
		msg, _ := hex.DecodeString(st.msg)
		want, _ := hex.DecodeString(st.mac)
		got, err := call(ctx, s, "self-test", keys.Ref{}, func(_ *conn, sh p11.SessionHandle) ([]byte, error) {
			h, err := s.mod.CreateObject(sh, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
				p11.NewAttribute(p11.CKA_KEY_TYPE, st.keyType),
				p11.NewAttribute(p11.CKA_TOKEN, false),
				p11.NewAttribute(p11.CKA_SENSITIVE, true),
				p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
				p11.NewAttribute(p11.CKA_SIGN, true),
				p11.NewAttribute(p11.CKA_VALUE, key),
			})
			if err != nil {
				return nil, err
			}
			defer func() { _ = s.mod.DestroyObject(sh, h) }()
			if err := s.mod.SignInit(sh, []*p11.Mechanism{p11.NewMechanism(st.mech, nil)}, h); err != nil {
				return nil, err
			}
			return s.mod.Sign(sh, msg)
		}, nil)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return errkind.Errorf(errkind.CheckFailed, "pkcs11: self-test %q failed: the token's CMAC does not reproduce the published value", st.name)
		}
	}
	return nil
}
