package e2e

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/test/vectors"
)

const icaoVectors = "../../cardauth/testdata/icao9303_bac.json"

var (
	insecureOnce sync.Once
	insecureBin  string
	insecureErr  error
)

// insecureSamd builds samd with the samd_insecure_fixed_random tag, which
// lets SAMD_INSECURE_ISO_RANDOM fix samd's RND.IFD ‖ K.IFD (cmd/samd's
// insecure_random.go). Only this test builds it; test/deps's
// TestInsecureHooks checks that nothing else can.
func insecureSamd(t *testing.T) string {
	t.Helper()
	insecureOnce.Do(func() { insecureBin, insecureErr = build("samd_insecure_fixed_random") })
	if insecureErr != nil {
		t.Fatal(insecureErr)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(insecureBin)) })
	return insecureBin
}

// icaoKey is the card key of ICAO 9303-11 Appendix D's card: AN10922's
// AES-128 example master (samd dev's an10922/test/example-aes128-iso7816,
// whose key entry says iso7816, 2TDEA, 8-byte challenges) and the card
// input for which AN10922 gives the appendix's key seed.
func icaoKey() *samdv1.CardKey {
	in := vectors.ICAOCardInput
	return &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128-iso7816", Version: 1},
		Input: &samdv1.DiversificationInput{Uid: in.UID, Aid: in.AID, SystemIdentifier: in.SysID}}
}

func eqHex(got, want string) bool { return strings.EqualFold(got, want) }

// TestISO7816ICAO reproduces ICAO Doc 9303 Part 11 Appendix D through
// samd's API, over mTLS as a terminal: samd (built with the test-only
// randomness hook, RND.IFD and K.IFD set to the appendix's) and a
// simulated card (RND.ICC and K.ICC the appendix's, K_enc and K_mac its
// D.1 keys). The master key in the token and the card input give the
// appendix's key seed, so samd's K_enc and K_mac are D.1's; every value
// of D.3 and D.4 is then compared: the GET CHALLENGE answer, samd's
// EXTERNAL AUTHENTICATE (E_IFD ‖ M_IFD), the card's answer, the session
// keys and counter the card derived from samd's K.IFD, and for SELECT
// EF.COM and both READ BINARY the protected command, the protected
// response and the data samd opens from it.
func TestISO7816ICAO(t *testing.T) {
	var v vectors.ICAO9303
	vectors.Load(t, icaoVectors, &v)
	e := newEnv(t, nil)
	e.bin = insecureSamd(t)
	e.environ = []string{"SAMD_INSECURE_ISO_RANDOM=" + v.MA.RndIFD + v.MA.KIFD}
	e.start()
	if !strings.Contains(e.out.String(), "INSECURE TEST BUILD") {
		t.Fatal("the tagged samd did not warn that it is a test build")
	}
	ctx := ctxT(t)
	term := e.cardAs("terminal", "dev-operator", "dev-terminal-1")
	card := v.Card(t, true)

	ch := card.Transmit(vectors.Hex(t, v.MA.GetChallenge))
	if !eqHex(hex.EncodeToString(ch), v.MA.RndICC+"9000") {
		t.Fatalf("GET CHALLENGE answered %X", ch)
	}
	b, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: icaoKey(), CardChallenge: hex.EncodeToString(ch[:8])}))
	if err != nil {
		t.Fatal(err)
	}
	if !eqHex(b.Msg.GetPcdResponse(), v.MA.APDU) {
		t.Fatalf("EXTERNAL AUTHENTICATE %s\nwant (D.3)          %s", b.Msg.GetPcdResponse(), v.MA.APDU)
	}
	resp := card.Transmit(vectors.Hex(t, b.Msg.GetPcdResponse()))
	if !eqHex(hex.EncodeToString(resp), v.MA.RespData+"9000") {
		t.Fatalf("the card answered %X", resp)
	}
	f, err := term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(resp)}))
	if err != nil {
		t.Fatal(err)
	}
	if enc, mac := card.SessionKeys(); !eqHex(hex.EncodeToString(enc), v.MA.KSEnc) || !eqHex(hex.EncodeToString(mac), v.MA.KSMAC) {
		t.Fatalf("KS_enc %X, KS_mac %X", enc, mac)
	}
	s := f.Msg.GetSession()
	for _, c := range v.SM {
		p, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Apdu: c.Command}))
		if err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
		if !eqHex(p.Msg.GetData(), c.ProtectedCommand) {
			t.Fatalf("%s: protected %s\nwant (D.4)    %s", c.ID, p.Msg.GetData(), c.ProtectedCommand)
		}
		r := card.Transmit(vectors.Hex(t, p.Msg.GetData()))
		if !eqHex(hex.EncodeToString(r), c.Response) {
			t.Fatalf("%s: the card answered %X", c.ID, r)
		}
		cr, err := term.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Apdu: hex.EncodeToString(r)}))
		if err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
		if !eqHex(cr.Msg.GetData(), c.Data) || !eqHex(cr.Msg.GetSw(), c.SW) {
			t.Fatalf("%s: data %s, status %s", c.ID, cr.Msg.GetData(), cr.Msg.GetSw())
		}
		s = cr.Msg.GetSession()
	}
	// The fixed randoms served once: the next authentication finds none
	// and fails, rather than repeat them.
	_, err = term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: icaoKey(), CardChallenge: v.MA.RndICC}))
	check(t, err, outcome{"internal", "internal"})
}

// isoSession authenticates a simulated ISO/IEC 7816-4 card through samd.
func isoSession(t *testing.T, c samdv1connect.CardServiceClient, card *cardsim.ISO7816) (string, string) {
	t.Helper()
	ctx := ctxT(t)
	ch := card.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
	b, err := c.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: icaoKey(), CardChallenge: hex.EncodeToString(ch[:8])}))
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(card.Transmit(vectors.Hex(t, b.Msg.GetPcdResponse())))}))
	if err != nil {
		t.Fatal(err)
	}
	return b.Msg.GetSession(), f.Msg.GetSession()
}

// TestISO7816Session runs ISO/IEC 7816-4 sessions through the running
// samd (crypto/rand randoms): samd client card-demo --card iso7816, and
// the refusals that keep samd from being an encryption oracle for the
// card key — a second encryption with a session's token, a challenge of
// the wrong length, another card's session or answers, a key of another
// protocol, the old stateless calls — each with its stable code.
func TestISO7816Session(t *testing.T) {
	d := start(t)
	var v vectors.ICAO9303
	vectors.Load(t, icaoVectors, &v)
	ctx := ctxT(t)
	term := d.cardClient(t, "terminal")

	out, err := exec.Command(d.bin, "client", "--dev", d.dir, "--addr", d.addr, "--as", "terminal", "card-demo", "--card", "iso7816").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status 9000, data "+v.EFCOM.Content+" (EF.COM)") {
		t.Fatalf("card-demo --card iso7816: %v\n%s", err, out)
	}
	if out, err := exec.Command(d.bin, "client", "--dev", d.dir, "--addr", d.addr, "--as", "terminal", "card-demo").CombinedOutput(); err != nil || !strings.Contains(string(out), `decrypted: "7-day ticket, zones 1-2, 2026-12"`) {
		t.Fatalf("card-demo: %v\n%s", err, out)
	}

	card := v.Card(t, false)
	authTok, s := isoSession(t, term, card)
	begin := func(challenge, session string, key *samdv1.CardKey, proto samdv1.CardProtocol) error {
		_, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: proto, Key: key, CardChallenge: challenge, Session: session}))
		return err
	}
	t.Run("fail/challenge-length", func(t *testing.T) {
		for _, ch := range []string{"", "00112233445566", "001122334455667788", "00112233445566778899AABBCCDDEEFF"} {
			check(t, begin(ch, "", icaoKey(), samdv1.CardProtocol_CARD_PROTOCOL_ISO7816), outcome{"invalid-input", "card_challenge"})
		}
	})
	t.Run("fail/second-encryption-in-the-session", func(t *testing.T) {
		// Neither the authentication's token nor the open session's
		// makes samd encrypt again under the card key.
		check(t, begin(v.MA.RndICC, authTok, icaoKey(), samdv1.CardProtocol_CARD_PROTOCOL_ISO7816), outcome{"invalid-input", "GET CHALLENGE"})
		check(t, begin(v.MA.RndICC, s, icaoKey(), samdv1.CardProtocol_CARD_PROTOCOL_ISO7816), outcome{"invalid-input", "GET CHALLENGE"})
		_, err := term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: s, CardResponse: v.MA.RespData + "9000"}))
		check(t, err, outcome{"invalid-input", "out of order"})
	})
	t.Run("fail/session-of-another-card", func(t *testing.T) {
		other := v.Card(t, false)
		ch := other.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
		b, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: icaoKey(), CardChallenge: hex.EncodeToString(ch[:8])}))
		if err != nil {
			t.Fatal(err)
		}
		// The other card's genuine answer does not finish this card's
		// authentication ...
		_, err = term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: authTok, CardResponse: hex.EncodeToString(other.Transmit(vectors.Hex(t, b.Msg.GetPcdResponse())))}))
		check(t, err, outcome{"check-failed", "does not verify"})
		// ... nor does another card's protected answer check in this session.
		p, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Apdu: "00A4020C02011E"}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = term.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Apdu: v.SM[0].Response}))
		check(t, err, outcome{"check-failed", "does not verify"})
	})
	t.Run("fail/instruction-not-allowed", func(t *testing.T) {
		_, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Apdu: "00240001083132333435363738"}))
		check(t, err, outcome{"denied", "policy: card-command: ISO/IEC 7816-4 instruction 24 (CHANGE REFERENCE DATA)"})
	})
	t.Run("fail/key-of-another-protocol", func(t *testing.T) {
		check(t, begin(v.MA.RndICC, "", cardKey("an10922/test/example-aes128"), samdv1.CardProtocol_CARD_PROTOCOL_ISO7816), outcome{"denied", "policy: key-protocol: key an10922/test/example-aes128:v1 serves desfire-ev2, not iso7816"})
		check(t, begin("00112233445566778899AABBCCDDEEFF", "", icaoKey(), samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2), outcome{"denied", "policy: key-protocol"})
		check(t, begin("00112233445566778899AABBCCDDEEFF", "", cardKey("an10922/test/example-aes128"), samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES), outcome{"denied", "policy: key-protocol"})
	})
	t.Run("fail/stateless-calls-gone", func(t *testing.T) {
		_, err := term.ExternalAuthenticate(ctx, connect.NewRequest(&samdv1.ChallengeRequest{Key: icaoKey(), Challenge: "6BC1BEE22E409F96"}))
		check(t, err, outcome{"denied", "encryption oracle"})
		perso := d.cardClient(t, "personalisation")
		_, err = perso.InternalAuthenticate(ctx, connect.NewRequest(&samdv1.ChallengeRequest{Key: icaoKey(), Challenge: "6BC1BEE22E409F96", Response: "00"}))
		check(t, err, outcome{"denied", "encryption oracle"})
	})
}
