package authority_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/test/vectors"
)

const icaoVectors = "../cardauth/testdata/icao9303_bac.json"

func icaoKey(t *testing.T) authority.CardKey {
	t.Helper()
	in := vectors.ICAOCardInput
	m, err := derive.NewInput(vectors.Hex(t, in.UID), vectors.Hex(t, in.AID), vectors.Hex(t, in.SysID))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := keys.NewRef("an10922/test/example-aes128-iso7816", 1)
	return authority.CardKey{Master: ref, Input: m}
}

// isoAuth authenticates the card through samd and returns the session.
func isoAuth(t *testing.T, f *fixture, p identity.Principal, g policies.Grant, card *cardsim.ISO7816) string {
	t.Helper()
	ctx := context.Background()
	ch := card.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
	apdu, tok, err := f.a.BeginAuth(ctx, p, g, authority.BeginAuthRequest{Protocol: authority.ProtocolISO7816, Key: icaoKey(t), Challenge: ch[:8]})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.a.FinishAuth(ctx, p, g, tok, card.Transmit(apdu))
	if err != nil {
		t.Fatal(err)
	}
	return res.Session
}

// TestISO7816ICAO runs ICAO 9303-11 Appendix D through the authority: the
// master key in the HSM and the card input give the appendix's key seed
// (AN10922), K_enc and K_mac (its KDF); with the appendix's randoms on both
// sides, samd's EXTERNAL AUTHENTICATE, the card's answer, and every
// protected command and response are the appendix's bytes, and the
// responses open to its data.
func TestISO7816ICAO(t *testing.T) {
	var v vectors.ICAO9303
	vectors.Load(t, icaoVectors, &v)
	f := newFixture(t)
	ctx := context.Background()
	key := icaoKey(t)
	g := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{key.Master}, CardType: string(authority.ProtocolISO7816)})
	card := v.Card(t, true)
	defer authority.SetISORandom(bytes.NewReader(vectors.Hex(t, v.MA.RndIFD+v.MA.KIFD)))()

	ch := card.Transmit(vectors.Hex(t, v.MA.GetChallenge))
	if got := hex.EncodeToString(ch); got != lower(v.MA.RndICC+"9000") {
		t.Fatalf("GET CHALLENGE: %s", got)
	}
	apdu, tok, err := f.a.BeginAuth(ctx, terminal1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolISO7816, Key: key, Challenge: ch[:8]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(apdu, vectors.Hex(t, v.MA.APDU)) {
		t.Fatalf("EXTERNAL AUTHENTICATE %X\nwant %s", apdu, v.MA.APDU)
	}
	resp := card.Transmit(apdu)
	if !bytes.Equal(resp, vectors.Hex(t, v.MA.RespData+"9000")) {
		t.Fatalf("the card answered %X", resp)
	}
	res, err := f.a.FinishAuth(ctx, terminal1, g, tok, resp)
	if err != nil {
		t.Fatal(err)
	}
	if enc, mac := card.SessionKeys(); !bytes.Equal(enc, vectors.Hex(t, v.MA.KSEnc)) || !bytes.Equal(mac, vectors.Hex(t, v.MA.KSMAC)) {
		t.Fatalf("the card's session keys %X %X", enc, mac)
	}
	s := res.Session
	for _, c := range v.SM {
		out, tok, err := f.a.ProtectAPDU(ctx, terminal1, g, s, vectors.Hex(t, c.Command))
		if err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
		if !bytes.Equal(out, vectors.Hex(t, c.ProtectedCommand)) {
			t.Fatalf("%s: protected %X\nwant %s", c.ID, out, c.ProtectedCommand)
		}
		r := card.Transmit(out)
		if !bytes.Equal(r, vectors.Hex(t, c.Response)) {
			t.Fatalf("%s: the card answered %X", c.ID, r)
		}
		data, sw, next, err := f.a.CheckAPDU(ctx, terminal1, g, tok, r)
		if err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
		if !bytes.Equal(data, vectors.Hex(t, c.Data)) || sw != 0x9000 {
			t.Fatalf("%s: data %X, status %04X", c.ID, data, sw)
		}
		s = next
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

// TestISO7816NoOracle: a terminal cannot have samd encrypt a value of its
// choice under the card key, nor check a card against a challenge of its
// choice: samd encrypts only in BeginAuth, once, with its own RND.IFD and
// K.IFD around a challenge of exactly the key's length, and the session
// opens only for the card whose answer carries samd's RND.IFD.
func TestISO7816NoOracle(t *testing.T) {
	var v vectors.ICAO9303
	vectors.Load(t, icaoVectors, &v)
	f := newFixture(t)
	ctx := context.Background()
	key := icaoKey(t)
	g := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{key.Master}})
	begin := func(challenge []byte, session string) ([]byte, string, error) {
		return f.a.BeginAuth(ctx, terminal1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolISO7816, Key: key, Challenge: challenge, Session: session})
	}
	t.Run("ok/same-challenge-two-plaintexts", func(t *testing.T) {
		// The same RND.ICC twice: samd's RND.IFD differs, so does all of E_IFD.
		a1, _, err := begin(vectors.Hex(t, v.MA.RndICC), "")
		if err != nil {
			t.Fatal(err)
		}
		a2, _, err := begin(vectors.Hex(t, v.MA.RndICC), "")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a1[5:13], a2[5:13]) || bytes.Equal(a1[21:29], a2[21:29]) {
			t.Fatal("two authentications share a cryptogram block")
		}
	})
	for _, n := range []int{0, 7, 9, 16, 32} {
		t.Run(fmt.Sprintf("fail/challenge-length-%d", n), func(t *testing.T) {
			uses, cmacs := f.usage(t, key.Master.String()), f.keys.cmacs.Load()
			_, _, err := begin(make([]byte, n), "")
			if errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("got %v", err)
			}
			if f.usage(t, key.Master.String()) != uses || f.keys.cmacs.Load() != cmacs {
				t.Fatal("a refused challenge used the key")
			}
		})
	}
	card := v.Card(t, false)
	ch := card.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
	apdu, authTok, err := begin(ch[:8], "")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("fail/second-encryption-with-the-auth-token", func(t *testing.T) {
		_, _, err := begin(ch[:8], authTok)
		if errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("got %v", err)
		}
		_, _, err = f.a.ProtectAPDU(ctx, terminal1, g, authTok, vectors.Hex(t, "00B0000004"))
		if errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("protect with the authentication's token: %v", err)
		}
	})
	t.Run("fail/another-cards-answer", func(t *testing.T) {
		other := v.Card(t, false)
		och := other.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
		oapdu, _, err := begin(och[:8], "")
		if err != nil {
			t.Fatal(err)
		}
		// The other card's genuine answer, to its own challenge and samd's
		// other RND.IFD, does not open this session.
		_, err = f.a.FinishAuth(ctx, terminal1, g, authTok, other.Transmit(oapdu))
		if errkind.Of(err) != errkind.CheckFailed {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/reflected-cryptogram", func(t *testing.T) {
		// samd's own E_IFD ‖ M_IFD sent back as the card's answer.
		_, err := f.a.FinishAuth(ctx, terminal1, g, authTok, append(append([]byte(nil), apdu[5:45]...), 0x90, 0x00))
		if errkind.Of(err) != errkind.CheckFailed {
			t.Fatalf("got %v", err)
		}
	})
	res, err := f.a.FinishAuth(ctx, terminal1, g, authTok, card.Transmit(apdu))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("fail/session-of-another-card", func(t *testing.T) {
		// A command samd protected in another card's session: this card
		// refuses it (6988, and ends its session) ...
		other := v.Card(t, false)
		out, _, err := f.a.ProtectAPDU(ctx, terminal1, g, isoAuth(t, f, terminal1, g, other), vectors.Hex(t, "00A4020C02011E"))
		if err != nil {
			t.Fatal(err)
		}
		if r := card.Transmit(out); !bytes.Equal(r, []byte{0x69, 0x88}) {
			t.Fatalf("the card accepted another session's command: %X", r)
		}
		// ... and samd refuses another card's answer (the appendix's card,
		// to the same SELECT) in this session.
		_, tok, err := f.a.ProtectAPDU(ctx, terminal1, g, res.Session, vectors.Hex(t, "00A4020C02011E"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := f.a.CheckAPDU(ctx, terminal1, g, tok, vectors.Hex(t, v.SM[0].Response)); errkind.Of(err) != errkind.CheckFailed {
			t.Fatalf("another card's response: %v", err)
		}
	})
	t.Run("fail/instruction-not-allowed", func(t *testing.T) {
		for _, apdu := range []string{"0024000108" + "3132333435363738", "00DA010204AABBCCDD", "00E4000000", "0082000000"} {
			_, _, err := f.a.ProtectAPDU(ctx, terminal1, g, res.Session, vectors.Hex(t, apdu))
			wantDenial(t, err, "card-command")
		}
	})
	t.Run("fail/native-command-in-iso-session", func(t *testing.T) {
		_, _, err := f.a.ProtectCommand(ctx, terminal1, g, res.Session, 0xBD, []byte{1, 0, 0, 0, 4, 0, 0}, nil, authority.CommMAC)
		if errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("got %v", err)
		}
	})
}
