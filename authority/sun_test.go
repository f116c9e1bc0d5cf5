package authority_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

// softCMAC is AES-CMAC (RFC 4493) in software, for the test to derive
// the meta key samd derives in the token.
type softCMAC struct{ key []byte }

func (s softCMAC) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	b, err := aes.NewCipher(s.key)
	if err != nil {
		return nil, err
	}
	return cmac.Sum(b, msg)
}

// TestSUNPICCDataCounted: PICC data that decrypts, under the tag family's
// meta key, to no UID and counter is answered as a failed verification
// (check-failed, like a forged SDMMAC) and counted toward back-off: what
// it decrypted to is a bit of a decryption. PICC data of the wrong
// length, which nothing decrypted, is invalid input and not counted.
func TestSUNPICCDataCounted(t *testing.T) {
	f := newFixture(t)
	master, _ := keys.NewRef("an10922/test/example-aes128", 1)
	aid, sysid := unhex("F48EE1"), []byte("samd-test-sun-tags")
	a := authority.New(authority.Config{Keys: f.keys, State: f.state, Policy: f.a.Policy(),
		SUNProfiles: map[string]authority.SUNProfile{"t": {MetaMaster: master, FileMaster: master, AID: aid, SystemID: sysid}}})
	in, _ := derive.RawInput(append(append([]byte(nil), aid...), sysid...))
	meta, err := derive.Diversify(context.Background(), softCMAC{unhex("00112233445566778899AABBCCDDEEFF")}, keys.Key{Ref: master, Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
	if err != nil {
		t.Fatal(err)
	}
	encrypt := func(plain []byte) []byte {
		b, _ := aes.NewCipher(meta.Reveal())
		out := make([]byte, 16)
		cipher.NewCBCEncrypter(b, make([]byte, 16)).CryptBlocks(out, plain)
		return out
	}
	uidNoCounter := append([]byte{0x87}, unhex("04DE5F1EACC040000000000000000000")[:15]...)
	counterNoUID := append([]byte{0x40, 0x01, 0x00, 0x00}, make([]byte, 12)...)
	items := []authority.SUNItem{
		{Profile: "t", Message: authority.SUNMessage{PICCData: encrypt(uidNoCounter), MACInput: []byte{}, SDMMAC: make([]byte, 8)}},
		{Profile: "t", Message: authority.SUNMessage{PICCData: encrypt(counterNoUID), MACInput: []byte{}, SDMMAC: make([]byte, 8)}},
		{Profile: "t", Message: authority.SUNMessage{PICCData: make([]byte, 15), MACInput: []byte{}, SDMMAC: make([]byte, 8)}},
	}
	note := &audit.Note{}
	out, err := a.VerifySUNBatch(audit.WithNote(context.Background(), note), terminal1, policies.Grant{}, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []errkind.Kind{errkind.CheckFailed, errkind.CheckFailed, errkind.InvalidInput} {
		if errkind.Of(out[i].Err) != want {
			t.Errorf("message %d: %v, want %v", i, out[i].Err, want)
		}
	}
	if note.Failures() != 2 {
		t.Fatalf("the note counts %d failed verifications, want 2", note.Failures())
	}
}
