package mac_test

import (
	"testing"

	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
)

func FuzzProfileInput(f *testing.F) {
	f.Add(uint16(1), []byte{4, 1, 2, 3, 4, 5, 6}, uint32(1), "owner", make([]byte, 16))
	ref, _ := keys.NewRef("mac/x/k", 1)
	p, _ := mac.NewProfile(mac.ProfileConfig{Name: "apta-object", Algorithm: "cmac", MACLength: 8, Key: ref, ObjectLength: 16})
	f.Fuzz(func(t *testing.T, typ uint16, card []byte, seq uint32, owner string, data []byte) {
		_, _ = p.Input(mac.Object{Type: typ, CardID: card, Seq: seq, Owner: owner, Data: data})
	})
}
