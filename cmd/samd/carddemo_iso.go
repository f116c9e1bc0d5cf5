package main

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

// The ISO/IEC 7816-4 demo card is ICAO Doc 9303 Part 11 Appendix D's: its
// K_enc and K_mac are the ICAO KDF (§9.7.1) of the key seed D.2 prints,
// 239AB9CB282DAF66231DC5A4DF6BFBAE. samd derives a card's key seed by
// AN10922 from a master key, so the demo's card input is the one for
// which AN10922's published AES-128 example master (imported by samd dev
// as an10922/test/example-aes128-iso7816) gives exactly that seed: UID and
// AID of AN10922's example, and a system identifier whose last 16 bytes
// were solved for it (a CMAC is invertible for whoever holds its key;
// `openssl mac -cipher AES-128-CBC -macopt hexkey:0011…EEFF CMAC` of 01 ‖ M
// prints the seed). test/e2e's TestISO7816ICAO runs the appendix through
// samd with this input.
const (
	isoDemoMaster = "an10922/test/example-aes128-iso7816"
	isoDemoUID    = "04782E21801D80"
	isoDemoAID    = "3042F5"
	isoDemoSysID  = "4943414F2D7939600530FB95210155791567AB66C8"   // "ICAO-" ‖ 16 solved bytes
	isoDemoEFCOM  = "60145F0104303130365F36063034303030305C026175" // ICAO 9303-11 Appendix D.4's EF.COM
)

// isoDemo personalises a simulated ISO/IEC 7816-4 card with ICAO's keys
// and runs a terminal's session through samd: GET CHALLENGE, EXTERNAL
// AUTHENTICATE (mutual authentication with key establishment), then
// SELECT and READ BINARY of EF.COM in secure messaging, printing each
// step and the samd client command that does it by hand.
func (c *client) isoDemo(ctx context.Context, w io.Writer) error {
	card, err := isoDemoCard(ctx)
	if err != nil {
		return err
	}
	base := "samd client card"
	step := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	chal := card.Transmit(mustHex("0084000008"))
	step("1. terminal -> card   00 84 00 00 08                               GET CHALLENGE")
	step("   card -> terminal   %X %X                        RND.ICC", chal[:len(chal)-2], chal[len(chal)-2:])
	br, err := c.card.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: isoDemoKey(),
		CardChallenge: hex.EncodeToString(chal[:len(chal)-2])}))
	if err != nil {
		return err
	}
	step("2. samd               %s begin --protocol iso7816 --key %s:v1 \\\n                         --uid %s --aid %s --sysid %s --challenge %X", base, isoDemoMaster, isoDemoUID, isoDemoAID, isoDemoSysID, chal[:len(chal)-2])
	step("   samd -> terminal   pcd_response %s…, session <%d-byte sealed token>", br.Msg.GetPcdResponse()[:16], len(br.Msg.GetSession()))
	step("                        (EXTERNAL AUTHENTICATE: E(K_enc, RND.IFD ‖ RND.ICC ‖ K.IFD) ‖ MAC, RND.IFD and K.IFD drawn by samd)")
	ans := card.Transmit(mustHex(br.Msg.GetPcdResponse()))
	step("3. terminal -> card   %s                           EXTERNAL AUTHENTICATE", br.Msg.GetPcdResponse()[:10])
	step("   card -> terminal   %X… %X  E(K_enc, RND.ICC ‖ RND.IFD ‖ K.ICC) ‖ MAC", ans[:8], ans[len(ans)-2:])
	fr, err := c.card.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: br.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		return err
	}
	step("4. samd               %s finish --session $S --response %X…", base, ans[:8])
	step("   samd -> terminal   authenticated: KS_enc, KS_mac and SSC stay inside the sealed token")
	session := fr.Msg.GetSession()
	n := 5
	for _, cmd := range []struct{ apdu, what string }{
		{"00A4020C02011E", "SELECT EF.COM"},
		{"00B0000016", "READ BINARY, 22 bytes"},
	} {
		pr, err := c.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: session, Apdu: cmd.apdu}))
		if err != nil {
			return err
		}
		step("%d. samd               %s protect --session $S --apdu %s", n, base, cmd.apdu)
		step("   samd -> terminal   %s   %s in secure messaging", pr.Msg.GetData(), cmd.what)
		resp := card.Transmit(mustHex(pr.Msg.GetData()))
		step("%d. terminal -> card   that APDU", n+1)
		step("   card -> terminal   %X", resp)
		cr, err := c.card.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: pr.Msg.GetSession(), Apdu: hex.EncodeToString(resp)}))
		if err != nil {
			return err
		}
		step("%d. samd               %s check --session $S --apdu %X", n+2, base, resp)
		if cr.Msg.GetData() == "" {
			step("   samd -> terminal   MAC verified, status %s", cr.Msg.GetSw())
		} else {
			step("   samd -> terminal   MAC verified, status %s, data %s (EF.COM)", cr.Msg.GetSw(), cr.Msg.GetData())
		}
		session, n = cr.Msg.GetSession(), n+3
	}
	return nil
}

// isoDemoCard is the demo's simulated ISO/IEC 7816-4 card, with ICAO
// 9303-11 Appendix D's keys and EF.COM.
func isoDemoCard(ctx context.Context) (*cardsim.ISO7816, error) {
	m := append(append(mustHex(isoDemoUID), mustHex(isoDemoAID)...), mustHex(isoDemoSysID)...)
	b, _ := aes.NewCipher(mustHex("00112233445566778899AABBCCDDEEFF"))
	in, err := derive.RawInput(m)
	if err != nil {
		return nil, err
	}
	seed, err := derive.Diversify(ctx, softCMACer{b}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
	if err != nil {
		return nil, err
	}
	defer seed.Wipe()
	kenc, err := cardauth.ISOKDF(keys.TDEA2, seed, 1)
	if err != nil {
		return nil, err
	}
	defer kenc.Wipe()
	kmac, err := cardauth.ISOKDF(keys.TDEA2, seed, 2)
	if err != nil {
		return nil, err
	}
	defer kmac.Wipe()
	return &cardsim.ISO7816{Alg: keys.TDEA2, ChallengeLen: 8, KEnc: append([]byte(nil), kenc.Reveal()...), KMAC: append([]byte(nil), kmac.Reveal()...),
		Rand: rand.Reader, Files: map[uint16][]byte{0x011E: mustHex(isoDemoEFCOM)}}, nil
}

// isoDemoKey is the demo card's key: the ICAO master and the card input
// that gives Appendix D's key seed.
func isoDemoKey() *samdv1.CardKey {
	return &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: isoDemoMaster, Version: 1}, Input: &samdv1.DiversificationInput{Uid: isoDemoUID, Aid: isoDemoAID, SystemIdentifier: isoDemoSysID}}
}

// isoDemoStream runs the ISO/IEC 7816-4 demo's session in one stream.
func (c *client) isoDemoStream(ctx context.Context, w io.Writer) error {
	card, err := isoDemoCard(ctx)
	if err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	s := c.openCardStream(ctx)
	chal := card.Transmit(mustHex("0084000008"))
	step("1. terminal -> card   00 84 00 00 08                               GET CHALLENGE")
	step("   card -> terminal   %X %X                        RND.ICC", chal[:len(chal)-2], chal[len(chal)-2:])
	br, err := s.step(beginStep(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: isoDemoKey(), CardChallenge: hex.EncodeToString(chal[:len(chal)-2])}))
	if err != nil {
		return err
	}
	pcd := br.GetBegin().GetPcdResponse()
	step("2. terminal -> samd   opens CardService.Session (one stream for the tap) and sends begin:")
	step("                        protocol iso7816, key %s:v1, uid %s, aid %s, sysid %s, challenge %X", isoDemoMaster, isoDemoUID, isoDemoAID, isoDemoSysID, chal[:len(chal)-2])
	step("   samd -> terminal   pcd_response %s…", pcd[:16])
	step("                        (EXTERNAL AUTHENTICATE: E(K_enc, RND.IFD ‖ RND.ICC ‖ K.IFD) ‖ MAC, RND.IFD and K.IFD drawn by samd)")
	ans := card.Transmit(mustHex(pcd))
	step("3. terminal -> card   %s                           EXTERNAL AUTHENTICATE", pcd[:10])
	step("   card -> terminal   %X… %X  E(K_enc, RND.ICC ‖ RND.IFD ‖ K.ICC) ‖ MAC", ans[:8], ans[len(ans)-2:])
	if _, err := s.step(finishStep(ans)); err != nil {
		return err
	}
	step("4. terminal -> samd   finish: card_response %X…", ans[:8])
	step("   samd -> terminal   authenticated: KS_enc, KS_mac and SSC stay in samd's memory for the stream")
	n := 5
	for _, cmd := range []struct{ apdu, what string }{
		{"00A4020C02011E", "SELECT EF.COM"},
		{"00B0000016", "READ BINARY, 22 bytes"},
	} {
		pr, err := s.step(protectStep(&samdv1.ProtectCommandRequest{Apdu: cmd.apdu}))
		if err != nil {
			return err
		}
		data := pr.GetProtect().GetData()
		step("%d. terminal -> samd   protect: apdu %s", n, cmd.apdu)
		step("   samd -> terminal   %s   %s in secure messaging", data, cmd.what)
		resp := card.Transmit(mustHex(data))
		step("%d. terminal -> card   that APDU", n+1)
		step("   card -> terminal   %X", resp)
		cr, err := s.step(checkStep(&samdv1.CheckResponseRequest{Apdu: hex.EncodeToString(resp)}))
		if err != nil {
			return err
		}
		step("%d. terminal -> samd   check: apdu %X", n+2, resp)
		if d := cr.GetCheck().GetData(); d == "" {
			step("   samd -> terminal   MAC verified, status %s", cr.GetCheck().GetSw())
		} else {
			step("   samd -> terminal   MAC verified, status %s, data %s (EF.COM)", cr.GetCheck().GetSw(), d)
		}
		n += 3
	}
	if err := s.close(); err != nil {
		return err
	}
	step("%d. terminal -> samd   closes the stream: samd wipes the session and writes its one audit record", n)
	return nil
}
