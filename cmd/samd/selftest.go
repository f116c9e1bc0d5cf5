package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/hex"
	"fmt"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
)

// softCMACer computes CMACs under a published test key in memory: only the
// startup self-test uses it, to check derive's assembly of the CMAC outputs
// independently of the token.
type softCMACer struct{ b cipher.Block }

func (c softCMACer) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	return cmac.Sum(c.b, msg)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// selfTest runs the startup known-answer tests: the token's CMAC against
// published values (pkcs11.Store.SelfTest), then AN10922 diversification
// (derive) against NXP's AES-128 and 2TDEA examples. samd does not serve
// if any fails.
func selfTest(ctx context.Context, store *pkcs11.Store) error {
	if err := store.SelfTest(ctx); err != nil {
		return err
	}
	aesBlock, _ := aes.NewCipher(mustHex("00112233445566778899AABBCCDDEEFF"))
	k2 := mustHex("00112233445566778899AABBCCDDEEFF0011223344556677")
	desBlock, _ := des.NewTripleDESCipher(k2)
	for _, v := range []struct {
		alg   keys.Algorithm
		b     cipher.Block
		sysid string
		want  string
	}{
		{keys.AES128, aesBlock, "4E585020416275", "A8DD63A3B89D54B37CA802473FDA9175"},
		{keys.TDEA2, desBlock, "4E58502041", "16F8597C9E8910C86B9648D006107DD7"},
	} {
		in, err := derive.NewInput(mustHex("04782E21801D80"), mustHex("3042F5"), mustHex(v.sysid))
		if err != nil {
			return err
		}
		k, err := derive.Diversify(ctx, softCMACer{v.b}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: v.alg}, in)
		if err != nil {
			return err
		}
		ok := bytes.Equal(k.Reveal(), mustHex(v.want))
		k.Wipe()
		if !ok {
			return fmt.Errorf("AN10922 %s known answer does not match", v.alg)
		}
	}
	return nil
}
