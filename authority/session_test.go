package authority_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/policies"
)

// TestSealKeyVersions: a card session token opens only under the
// configured session-seal key version or a previous version the
// configuration still accepts (a rotation), never under the version the
// token names: a token sealed with another version of the seal key's
// name — one that officers imported from components they chose, say —
// is garbage to a samd that does not accept that version, and opens
// where the configuration lists it.
func TestSealKeyVersions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v1, _ := keys.NewRef("session/test/seal", 1)
	v2, _ := keys.NewRef("session/test/seal", 2)
	if _, err := f.keys.Key(v2); err != nil {
		if _, err := f.keys.Generate(ctx, pkcs11.GenerateRequest{Ref: v2, Role: keys.RoleSessionSeal, Algorithm: keys.AES256}); err != nil {
			t.Fatal(err)
		}
	}
	with := func(seal keys.Ref, previous ...uint8) *authority.Authority {
		return authority.New(authority.Config{Keys: f.keys, State: f.state, Policy: f.a.Policy(),
			Sessions: authority.Sessions{Sealer: f.keys.Store, SealKey: seal, Previous: previous, TTL: time.Minute}})
	}
	master, _ := keys.NewRef("an10922/test/example-aes128", 1)
	g := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{master}})
	card := &cardsim.EV2{Keys: [][]byte{unhex(an10922Key)}, Rand: rand.Reader}
	_, ch := card.Transceive(0x71, []byte{0, 0})
	ans, tok, err := with(v2).BeginAuth(ctx, terminal1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2,
		Key: authority.CardKey{Master: master, Input: nxpAbu(t)}, Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(0xAF, ans)
	if st != cardsim.StatusOK {
		t.Fatalf("the card refused samd's answer: %02X", st)
	}
	for _, c := range []struct {
		name     string
		seal     keys.Ref
		previous []uint8
		want     errkind.Kind
	}{
		{"fail/another-version-of-the-name", v1, nil, errkind.InvalidInput},
		{"fail/previous-versions-not-it", v1, []uint8{3}, errkind.InvalidInput},
		{"ok/a-previous-version", v1, []uint8{2}, 0},
		{"ok/the-configured-version", v2, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := with(c.seal, c.previous...).FinishAuth(ctx, terminal1, g, tok, resp)
			if c.want == 0 && err != nil || c.want != 0 && errkind.Of(err) != c.want {
				t.Fatalf("FinishAuth: %v, want %v", err, c.want)
			}
		})
	}
}
