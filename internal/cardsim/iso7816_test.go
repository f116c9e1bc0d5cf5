package cardsim_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/vectors"
)

// icaoCard is the card of ICAO 9303-11 Appendix D: its keys, EF.COM, and
// Appendix D.3's RND.ICC and K.ICC as its randomness.
func icaoCard(t *testing.T, v vectors.ICAO9303) *cardsim.ISO7816 { return v.Card(t, true) }

// TestISO7816CardICAO drives the simulated card with the terminal's side of
// ICAO 9303-11 Appendix D.3 and D.4 and checks that it answers every APDU
// exactly as the appendix prints: RND.ICC, E_ICC ‖ M_ICC, and the three
// protected responses (SELECT EF.COM, READ BINARY twice).
func TestISO7816CardICAO(t *testing.T) {
	var v vectors.ICAO9303
	load(t, "icao9303_bac.json", &v)
	card := icaoCard(t, v)
	if got := card.Transmit(unhex(t, v.MA.GetChallenge)); !bytes.Equal(got, append(unhex(t, v.MA.RndICC), 0x90, 0x00)) {
		t.Fatalf("GET CHALLENGE: %X", got)
	}
	if got := card.Transmit(unhex(t, v.MA.APDU)); !bytes.Equal(got, append(unhex(t, v.MA.RespData), 0x90, 0x00)) {
		t.Fatalf("EXTERNAL AUTHENTICATE: %X, want %s9000", got, v.MA.RespData)
	}
	enc, mac := card.SessionKeys()
	if !bytes.Equal(enc, unhex(t, v.MA.KSEnc)) || !bytes.Equal(mac, unhex(t, v.MA.KSMAC)) {
		t.Fatalf("session keys %X %X", enc, mac)
	}
	for _, s := range v.SM {
		if got := card.Transmit(unhex(t, s.ProtectedCommand)); !bytes.Equal(got, unhex(t, s.Response)) {
			t.Fatalf("%s: %X, want %s", s.ID, got, s.Response)
		}
	}
	if len(v.SM) != 3 {
		t.Fatalf("%d secure-messaging vectors", len(v.SM))
	}
}

// TestISO7816CardRefusals: the card's own checks.
func TestISO7816CardRefusals(t *testing.T) {
	var v vectors.ICAO9303
	load(t, "icao9303_bac.json", &v)
	authed := func() *cardsim.ISO7816 {
		c := icaoCard(t, v)
		c.Transmit(unhex(t, v.MA.GetChallenge))
		if got := c.Transmit(unhex(t, v.MA.APDU)); len(got) != 42 {
			t.Fatalf("EXTERNAL AUTHENTICATE: %X", got)
		}
		return c
	}
	flip := func(s string, i int) []byte {
		b := unhex(t, s)
		b[i] ^= 1
		return b
	}
	for _, c := range []struct {
		name  string
		card  *cardsim.ISO7816
		apdus [][]byte
		want  []byte
	}{
		{"fail/GET CHALLENGE for 16 bytes", icaoCard(t, v), [][]byte{{0, 0x84, 0, 0, 16}}, []byte{0x67, 0x00}},
		{"fail/EXTERNAL AUTHENTICATE without a challenge", icaoCard(t, v), [][]byte{unhex(t, v.MA.APDU)}, []byte{0x69, 0x85}},
		{"fail/M_IFD altered", icaoCard(t, v), [][]byte{unhex(t, v.MA.GetChallenge), flip(v.MA.APDU, 44)}, []byte{0x63, 0x00}},
		{"fail/the same EXTERNAL AUTHENTICATE twice", icaoCard(t, v), [][]byte{unhex(t, v.MA.GetChallenge), unhex(t, v.MA.APDU), unhex(t, v.MA.APDU)}, []byte{0x69, 0x85}},
		{"fail/READ BINARY in plain", authed(), [][]byte{{0, 0xB0, 0, 0, 4}}, []byte{0x69, 0x82}},
		{"fail/protected SELECT with its MAC altered", authed(), [][]byte{flip(v.SM[0].ProtectedCommand, 20)}, []byte{0x69, 0x88}},
		{"fail/a replayed protected command", authed(), [][]byte{unhex(t, v.SM[0].ProtectedCommand), unhex(t, v.SM[0].ProtectedCommand)}, []byte{0x69, 0x88}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []byte
			for _, a := range c.apdus {
				got = c.card.Transmit(a)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("%X, want %X", got, c.want)
			}
		})
	}
}

// TestISO7816CardWithCardauth runs samd's core (cardauth) against the
// simulated card, written independently from the card's side, for every
// cipher and challenge length, with random keys and randoms: mutual
// authentication, SELECT, UPDATE BINARY, READ BINARY in short and
// extended form, and what happens after a tampered response.
func TestISO7816CardWithCardauth(t *testing.T) {
	for _, suite := range []cardauth.ISOSuite{
		{Alg: keys.TDEA2, ChallengeLen: 8},
		{Alg: keys.AES128, ChallengeLen: 8}, {Alg: keys.AES128, ChallengeLen: 16},
		{Alg: keys.AES192, ChallengeLen: 8}, {Alg: keys.AES192, ChallengeLen: 16},
		{Alg: keys.AES256, ChallengeLen: 8}, {Alg: keys.AES256, ChallengeLen: 16},
	} {
		t.Run(fmt.Sprintf("ok/%s challenge %d", suite.Alg, suite.ChallengeLen), func(t *testing.T) {
			kenc, kmac := make([]byte, suite.Alg.KeyLen()), make([]byte, suite.Alg.KeyLen())
			rand.Read(kenc)
			rand.Read(kmac)
			file := make([]byte, 600)
			card := &cardsim.ISO7816{Alg: suite.Alg, ChallengeLen: suite.ChallengeLen, KEnc: append([]byte(nil), kenc...), KMAC: append([]byte(nil), kmac...),
				Rand: rand.Reader, Files: map[uint16][]byte{0x0101: file}}

			rndICC := card.Transmit([]byte{0x00, 0x84, 0x00, 0x00, byte(suite.ChallengeLen)})
			if len(rndICC) != suite.ChallengeLen+2 {
				t.Fatalf("GET CHALLENGE: %X", rndICC)
			}
			a, apdu, err := cardauth.ISOBegin(suite, secret.Copy(kenc), secret.Copy(kmac), rndICC[:suite.ChallengeLen], rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			s, err := a.Finish(secret.Copy(kenc), secret.Copy(kmac), card.Transmit(apdu))
			if err != nil {
				t.Fatal(err)
			}
			enc, mac := card.SessionKeys()
			if !bytes.Equal(s.Enc.Reveal(), enc) || !bytes.Equal(s.MAC.Reveal(), mac) {
				t.Fatal("samd and the card derived different session keys")
			}
			exchange := func(apdu []byte) cardauth.ISOResponse {
				t.Helper()
				cmd, err := cardauth.ParseISOCommand(apdu)
				if err != nil {
					t.Fatal(err)
				}
				p, err := s.ProtectCommand(cmd)
				if err != nil {
					t.Fatal(err)
				}
				r, err := s.CheckResponse(card.Transmit(p))
				if err != nil {
					t.Fatalf("%X: %v", apdu, err)
				}
				return r
			}
			if r := exchange([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x01}); r.SW != 0x9000 {
				t.Fatalf("SELECT: %04X", r.SW)
			}
			if r := exchange([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x02}); r.SW != 0x6A82 {
				t.Fatalf("SELECT of a missing file: %04X", r.SW)
			}
			payload := make([]byte, 300) // extended Lc
			rand.Read(payload)
			upd := append([]byte{0x00, 0xD6, 0x00, 0x10, 0x00, 0x01, 0x2C}, payload...)
			if r := exchange(upd); r.SW != 0x9000 || !bytes.Equal(file[16:316], payload) {
				t.Fatalf("UPDATE BINARY: %04X", r.SW)
			}
			if r := exchange([]byte{0x00, 0xB0, 0x00, 0x10, 0x20}); r.SW != 0x9000 || !bytes.Equal(r.Data, payload[:32]) {
				t.Fatalf("READ BINARY: %04X %X", r.SW, r.Data)
			}
			if r := exchange([]byte{0x00, 0xB0, 0x00, 0x10, 0x00, 0x01, 0x2C}); r.SW != 0x9000 || !bytes.Equal(r.Data, payload) {
				t.Fatalf("READ BINARY extended: %04X", r.SW)
			}
			if r := exchange([]byte{0x00, 0xB0, 0x02, 0x50, 0x00}); r.SW != 0x6282 || len(r.Data) != 8 {
				t.Fatalf("READ BINARY past the end: %04X %d bytes", r.SW, len(r.Data))
			}

			// A response altered on its way back is refused, and the card,
			// whose counter moved on, ends the session at the next command.
			cmd, _ := cardauth.ParseISOCommand([]byte{0x00, 0xB0, 0x00, 0x00, 0x08})
			p, _ := s.ProtectCommand(cmd)
			resp := card.Transmit(p)
			resp[3] ^= 1
			if _, err := s.CheckResponse(resp); errkind.Of(err) != errkind.CheckFailed {
				t.Fatalf("tampered response: %v", err)
			}
			// A terminal that replays a protected command gets a plain
			// 6988, which samd refuses.
			resp = card.Transmit(p)
			if !bytes.Equal(resp, []byte{0x69, 0x88}) || card.Authenticated() {
				t.Fatalf("replayed command: %X", resp)
			}
			if _, err := s.CheckResponse(resp); errkind.Of(err) != errkind.CheckFailed {
				t.Fatalf("plain 6988: %v", err)
			}
		})
	}
}
