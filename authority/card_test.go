package authority_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

// an10922Key is the card key AN10922 §2.2 derives from its example master
// for M = 04782E21801D80 3042F5 "NXP Abu".
const an10922Key = "A8DD63A3B89D54B37CA802473FDA9175"

func wantDenial(t *testing.T, err error, rule string) {
	t.Helper()
	var d *policies.Denial
	if !errors.As(err, &d) || d.Rule != rule || errkind.Of(err) != errkind.Denied {
		t.Fatalf("got %v, want a denial by rule %s", err, rule)
	}
}

// TestCardCommandAllowList: a terminal that authenticated a card cannot
// have samd protect ChangeKey or any other administrative command — the
// allow-list of its role refuses it before the session is opened — while
// its data commands still work; personalisation, whose policy lists
// ChangeKey, can. In an EV1 session, whose enciphered data a CRC alone
// binds to its command, a terminal's FULL-mode command is refused too.
func TestCardCommandAllowList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	master, _ := keys.NewRef("an10922/test/example-aes128", 1)
	key := authority.CardKey{Master: master, Input: nxpAbu(t)}
	grant := func(p identity.Principal) policies.Grant {
		return f.decide(t, p, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{master}})
	}
	term, perso := terminal1, perso1
	gt, gp := grant(term), grant(perso)
	card := &cardsim.EV2{Keys: [][]byte{unhex(an10922Key), unhex(an10922Key)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{2: {Data: make([]byte, 16), Mode: 3}}}
	authEV2 := func(p identity.Principal, g policies.Grant) string {
		t.Helper()
		_, ch := card.Transceive(0x71, []byte{0, 0})
		ans, tok, err := f.a.BeginAuth(ctx, p, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2, Key: key, Challenge: ch})
		if err != nil {
			t.Fatal(err)
		}
		st, resp := card.Transceive(0xAF, ans)
		if st != cardsim.StatusOK {
			t.Fatalf("the card refused samd's answer: %02X", st)
		}
		res, err := f.a.FinishAuth(ctx, p, g, tok, resp)
		if err != nil {
			t.Fatal(err)
		}
		return res.Session
	}
	newKey := unhex("00112233445566778899AABBCCDDEEFF")
	changeKey0 := append(append([]byte(nil), newKey...), 0x01) // NewKey ‖ KeyVer, the same-key case

	s := authEV2(term, gt)
	for _, c := range []struct {
		name   string
		cmd    byte
		header []byte
		data   []byte
	}{
		{"fail/changekey", 0xC4, []byte{0x00}, changeKey0},
		{"fail/changekey-ev2", 0xC6, []byte{0x00, 0x00}, changeKey0},
		{"fail/changefilesettings", 0x5F, []byte{0x02}, []byte{0x00, 0xEE, 0xEE}},
		{"fail/changekeysettings", 0x54, nil, []byte{0x0F}},
		{"fail/setconfiguration", 0x5C, []byte{0x00}, []byte{0x02}},
		{"fail/createapplication", 0xCA, nil, unhex("F48EE10F81")},
		{"fail/deleteapplication", 0xDA, nil, unhex("3042F5")},
		{"fail/formatpicc", 0xFC, nil, nil},
		{"fail/rollkeyset", 0x55, nil, []byte{0x01}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := f.a.ProtectCommand(ctx, terminal1, gt, s, c.cmd, c.header, c.data, authority.CommFull)
			wantDenial(t, err, "card-command")
		})
	}
	// The terminal's data commands still work, on the same session.
	out, s, err := f.a.ProtectCommand(ctx, terminal1, gt, s, 0x8D, []byte{2, 0, 0, 0, 16, 0, 0}, []byte("7-day, zones 1-2"), authority.CommFull)
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(0x8D, out)
	if st != cardsim.StatusOK || string(card.Files[2].Data) != "7-day, zones 1-2" {
		t.Fatalf("WriteData: %02X", st)
	}
	if _, _, err := f.a.CheckResponse(ctx, terminal1, gt, s, st, resp, authority.CommMAC, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(card.Keys[0], unhex(an10922Key)) {
		t.Fatal("key 0 changed")
	}

	// Personalisation's policy lists ChangeKey: the same command changes
	// the card's key 0 — what a terminal could do before the allow-list.
	ps := authEV2(perso, gp)
	out, _, err = f.a.ProtectCommand(ctx, perso1, gp, ps, 0xC4, []byte{0x00}, changeKey0, authority.CommFull)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := card.Transceive(0xC4, out); st != cardsim.StatusOK || !bytes.Equal(card.Keys[0], newKey) {
		t.Fatalf("personalisation's ChangeKey: %02X", st)
	}

	// EV1: enciphered data bound to its command by a CRC only. (The same
	// master, under the name whose entry serves desfire-ev1-aes.)
	ev1Master, _ := keys.NewRef("an10922/test/example-aes128-ev1", 1)
	ev1Key := authority.CardKey{Master: ev1Master, Input: nxpAbu(t)}
	ev1Grant := func(p identity.Principal) policies.Grant {
		return f.decide(t, p, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ev1Master}})
	}
	gt, gp = ev1Grant(term), ev1Grant(perso)
	ev1Session := func(p identity.Principal, g policies.Grant, ev1 *cardsim.EV1AES) string {
		t.Helper()
		_, ch := ev1.Transceive(0xAA, []byte{0})
		ans, tok, err := f.a.BeginAuth(ctx, p, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV1AES, Key: ev1Key, Challenge: ch})
		if err != nil {
			t.Fatal(err)
		}
		st, resp := ev1.Transceive(0xAF, ans)
		if st != cardsim.StatusOK {
			t.Fatalf("EV1 refused samd: %02X", st)
		}
		res, err := f.a.FinishAuth(ctx, p, g, tok, resp)
		if err != nil {
			t.Fatal(err)
		}
		return res.Session
	}
	ev1 := &cardsim.EV1AES{Key: unhex(an10922Key), Rand: rand.Reader, Version: unhex("04010101001A05"), File: make([]byte, 32)}
	hdr, payload := []byte{1, 0, 0, 0, 16, 0, 0}, []byte("EV1 enciphered..")
	s1 := ev1Session(term, gt, ev1)
	_, _, err = f.a.ProtectCommand(ctx, terminal1, gt, s1, 0x3D, hdr, payload, authority.CommFull)
	wantDenial(t, err, "card-command")
	if _, _, err := f.a.ProtectCommand(ctx, terminal1, gt, s1, 0x60, nil, nil, authority.CommPlain); err != nil {
		t.Fatalf("a plain GetVersion in an EV1 session: %v", err)
	}
	s1 = ev1Session(perso, gp, ev1)
	out, _, err = f.a.ProtectCommand(ctx, perso1, gp, s1, 0x3D, hdr, payload, authority.CommFull)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := ev1.Transceive(0x3D, out); st != cardsim.StatusOK || !bytes.Equal(ev1.File[:16], payload) {
		t.Fatalf("personalisation's enciphered EV1 WriteData: %02X", st)
	}
}
