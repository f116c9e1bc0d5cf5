package e2e

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

func (d *daemon) cardClient(t *testing.T, as string) samdv1connect.CardServiceClient {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: d.tlsFor(t, as), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return samdv1connect.NewCardServiceClient(&http.Client{Transport: tr}, "https://"+d.addr, connect.WithGRPC())
}

// softCMAC computes CMACs under a published test master key, so that the
// test can personalise a simulated card with the key samd will derive.
type softCMAC struct{ b cipher.Block }

func (s softCMAC) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	return cmac.Sum(s.b, msg)
}

// personalise returns the AN10922 key of a card, from a published master.
func personalise(t *testing.T, alg keys.Algorithm, master string, m []byte) []byte {
	t.Helper()
	mk, _ := hex.DecodeString(master)
	var b cipher.Block
	var err error
	if alg.AES() {
		b, err = aes.NewCipher(mk)
	} else {
		k := append([]byte(nil), mk...)
		if len(k) == 16 {
			k = append(k, mk[:8]...)
		}
		b, err = des.NewTripleDESCipher(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	in, err := derive.RawInput(m)
	if err != nil {
		t.Fatal(err)
	}
	k, err := derive.Diversify(context.Background(), softCMAC{b}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: alg}, in)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), k.Reveal()...)
}

const exampleAES = "00112233445566778899AABBCCDDEEFF"

var (
	cardUID = "04782E21801D80"
	cardAID = "3042F5"
	cardSys = hex.EncodeToString([]byte("NXP Abu"))
)

func cardKey(master string) *samdv1.CardKey {
	return &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: master, Version: 1}, Input: &samdv1.DiversificationInput{Uid: cardUID, Aid: cardAID, SystemIdentifier: cardSys}}
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authEV2 authenticates a simulated card through samd and returns the
// session token.
func authEV2(t *testing.T, ctx context.Context, c samdv1connect.CardServiceClient, card *cardsim.EV2, master string, keyNo byte, prev string) string {
	t.Helper()
	cmd := byte(0x71)
	if prev != "" {
		cmd = 0x77
	}
	st, ch := card.Transceive(cmd, []byte{keyNo, 0})
	if st != cardsim.StatusMore {
		t.Fatalf("card refused authentication: %02X", st)
	}
	b, err := c.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
		Key: cardKey(master), KeyNo: uint32(keyNo), CardChallenge: hex.EncodeToString(ch), Session: prev}))
	if err != nil {
		t.Fatal(err)
	}
	st, ans := card.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse()))
	if st != cardsim.StatusOK {
		t.Fatalf("card refused samd's answer: %02X", st)
	}
	f, err := c.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		t.Fatal(err)
	}
	enc, mac := card.SessionKeys()
	sessionKeys = append(sessionKeys, append([]byte(nil), enc...), append([]byte(nil), mac...))
	return f.Msg.GetSession()
}

// command protects a command through samd, sends it to the card, and
// checks the answer through samd.
func command(t *testing.T, ctx context.Context, c samdv1connect.CardServiceClient, card *cardsim.EV2, session *string, cmd byte, header, data []byte, mode, respMode samdv1.CommMode) []byte {
	t.Helper()
	p, err := c.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: *session, Command: uint32(cmd),
		Header: hex.EncodeToString(header), Data: hex.EncodeToString(data), Mode: mode}))
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(cmd, unhexT(t, p.Msg.GetData()))
	if st != cardsim.StatusOK {
		t.Fatalf("card answered %02X to command %02X", st, cmd)
	}
	r, err := c.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: respMode}))
	if err != nil {
		t.Fatal(err)
	}
	*session = r.Msg.GetSession()
	return unhexT(t, r.Msg.GetData())
}

func fileHeader(file byte, off, n int) []byte {
	return []byte{file, byte(off), byte(off >> 8), byte(off >> 16), byte(n), byte(n >> 8), byte(n >> 16)}
}

// TestCardSessionEV2 drives a simulated DESFire EV2 / NTAG 424 DNA card
// through the running daemon over mTLS: authenticate, write and read files
// in MAC and FULL mode, continue with AuthenticateEV2NonFirst, change a key
// as personalisation, and authenticate with the new key.
func TestCardSessionEV2(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	kx := personalise(t, keys.AES128, exampleAES, m)
	if hex.EncodeToString(kx) != "a8dd63a3b89d54b37ca802473fda9175" {
		t.Fatalf("card key %X is not AN10922's example", kx)
	}
	card := &cardsim.EV2{Keys: [][]byte{kx, append([]byte(nil), kx...)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{1: {Data: []byte("samd-mac-mode-file-0123456789..."), Mode: 1}, 2: {Data: make([]byte, 32), Mode: 3}}}
	term := d.cardClient(t, "terminal")

	s := authEV2(t, ctx, term, card, "an10922/test/example-aes128", 0, "")
	secretData := []byte("ticket: 7-day zone 1-2, expires 2026-12-01")[:32]
	command(t, ctx, term, card, &s, 0x8D, fileHeader(2, 0, 32), secretData, samdv1.CommMode_COMM_MODE_FULL, samdv1.CommMode_COMM_MODE_MAC)
	if !bytes.Equal(card.Files[2].Data, secretData) {
		t.Fatalf("the card holds %q", card.Files[2].Data)
	}
	got := command(t, ctx, term, card, &s, 0xAD, fileHeader(1, 0, 16), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_MAC)
	if string(got) != "samd-mac-mode-fi" {
		t.Fatalf("MAC-mode read %q", got)
	}
	got = command(t, ctx, term, card, &s, 0xAD, fileHeader(2, 0, 32), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_FULL)
	if !bytes.Equal(got, secretData) {
		t.Fatalf("FULL-mode read %q", got)
	}
	// AuthenticateEV2NonFirst keeps TI and the counter.
	s = authEV2(t, ctx, term, card, "an10922/test/example-aes128", 1, s)
	got = command(t, ctx, term, card, &s, 0xAD, fileHeader(2, 0, 32), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_FULL)
	if !bytes.Equal(got, secretData) {
		t.Fatalf("read after NonFirst %q", got)
	}

	t.Run("fail/terminal-may-not-change-keys", func(t *testing.T) {
		_, err := term.ChangeKey(ctx, connect.NewRequest(&samdv1.ChangeKeyRequest{Session: s, KeyNo: 1, NewKey: cardKey("desfire/dev/app-master-aes128"), OldKey: cardKey("an10922/test/example-aes128")}))
		check(t, err, outcome{"denied", "may not call"})
	})
	t.Run("fail/foreign-session", func(t *testing.T) {
		perso := d.cardClient(t, "personalisation")
		_, err := perso.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: 0xAD, Header: hex.EncodeToString(fileHeader(1, 0, 4)), Mode: samdv1.CommMode_COMM_MODE_MAC}))
		check(t, err, outcome{"check-failed", "does not authenticate for this caller"})
	})
	t.Run("fail/out-of-order", func(t *testing.T) {
		_, err := term.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: s, Data: "0011223344556677", Mode: samdv1.CommMode_COMM_MODE_MAC}))
		check(t, err, outcome{"invalid-input", "out of order"})
		_, err = term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: s, CardResponse: "00"}))
		check(t, err, outcome{"invalid-input", "out of order"})
	})
	t.Run("fail/tampered-response", func(t *testing.T) {
		p, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: 0xAD, Header: hex.EncodeToString(fileHeader(1, 0, 4)), Mode: samdv1.CommMode_COMM_MODE_MAC}))
		if err != nil {
			t.Fatal(err)
		}
		_, resp := card.Transceive(0xAD, unhexT(t, p.Msg.GetData()))
		resp[0] ^= 1
		_, err = term.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC}))
		check(t, err, outcome{"check-failed", "does not verify"})
	})
	t.Run("fail/wrong-card-cryptogram", func(t *testing.T) {
		_, ch := card.Transceive(0x71, []byte{0, 0})
		b, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, Key: cardKey("an10922/test/example-aes128"), CardChallenge: hex.EncodeToString(ch)}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(make([]byte, 32))}))
		check(t, err, outcome{"check-failed", "does not verify"})
	})
	t.Run("fail/wrong-key-version", func(t *testing.T) {
		k := cardKey("an10922/test/example-aes128")
		k.MasterKey.Version = 2
		_, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, Key: k, CardChallenge: "00112233445566778899AABBCCDDEEFF"}))
		check(t, err, outcome{"not-found", "no key"})
	})

	// Personalisation changes key 1 to a key diversified from a master the
	// test does not know; the card then authenticates with it through samd.
	perso := d.cardClient(t, "personalisation")
	ps := authEV2(t, ctx, perso, card, "an10922/test/example-aes128", 0, "")
	ck, err := perso.ChangeKey(ctx, connect.NewRequest(&samdv1.ChangeKeyRequest{Session: ps, KeyNo: 1, KeyVersion: 1,
		NewKey: cardKey("desfire/dev/app-master-aes128"), OldKey: cardKey("an10922/test/example-aes128")}))
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(0xC4, unhexT(t, ck.Msg.GetData()))
	if st != cardsim.StatusOK {
		t.Fatalf("card refused ChangeKey: %02X", st)
	}
	if _, err := perso.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: ck.Msg.GetSession(), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC})); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(card.Keys[1], kx) {
		t.Fatal("key 1 did not change")
	}
	s = authEV2(t, ctx, term, card, "desfire/dev/app-master-aes128", 1, "")
	if s == "" {
		t.Fatal("no session with the new key")
	}
	// The old key no longer opens key 1.
	_, ch := card.Transceive(0x71, []byte{1, 0})
	b, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, Key: cardKey("an10922/test/example-aes128"), KeyNo: 1, CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := card.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse())); st != cardsim.StatusAuthError {
		t.Fatalf("the old key still authenticates: %02X", st)
	}
	// Changing the authenticated key ends the session.
	ps = authEV2(t, ctx, perso, card, "an10922/test/example-aes128", 0, "")
	ck, err = perso.ChangeKey(ctx, connect.NewRequest(&samdv1.ChangeKeyRequest{Session: ps, KeyNo: 0, KeyVersion: 2, NewKey: cardKey("desfire/dev/app-master-aes128")}))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := card.Transceive(0xC4, unhexT(t, ck.Msg.GetData())); st != cardsim.StatusOK || ck.Msg.GetSession() != "" {
		t.Fatalf("same-key ChangeKey: %02X, session %q", st, ck.Msg.GetSession())
	}
	authEV2(t, ctx, term, card, "desfire/dev/app-master-aes128", 0, "")
}

// TestCardUltralightCAndEV1 authenticates a simulated Ultralight C and a
// DESFire EV1 (AES, then a CMAC-chained GetVersion) through samd, and
// writes and reads EV1 and D40 files enciphered — as personalisation: a
// terminal's enciphered EV1 write is refused (card-command), and a
// terminal runs no Ultralight C or D40 session at all (card-type: its
// policy's card_types name neither), since an authenticated Ultralight C
// takes plain writes to its key pages and D40 is guarded by a CRC16.
func TestCardUltralightCAndEV1(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term, perso := d.cardClient(t, "terminal"), d.cardClient(t, "personalisation")
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP A")...)

	ulc := &cardsim.UltralightC{Key: personalise(t, keys.TDEA2, "00112233445566778899AABBCCDDEEFF", m), Rand: rand.Reader}
	_, ch := ulc.Transceive(0x1A, []byte{0})
	inputA := &samdv1.DiversificationInput{Uid: cardUID, Aid: cardAID, SystemIdentifier: hex.EncodeToString([]byte("NXP A"))}
	key := &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-2tdea", Version: 1}, Input: inputA}
	_, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ULTRALIGHT_C, Key: key, CardChallenge: hex.EncodeToString(ch)}))
	check(t, err, outcome{"denied", "policy: card-type: card type ultralight-c"})
	b, err := perso.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ULTRALIGHT_C, Key: key, CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		t.Fatal(err)
	}
	st, ans := ulc.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse()))
	if st != cardsim.StatusOK || !ulc.Authenticated {
		t.Fatalf("Ultralight C refused samd: %02X", st)
	}
	if _, err := perso.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)})); err != nil {
		t.Fatal(err)
	}

	ev1 := &cardsim.EV1AES{Key: personalise(t, keys.AES128, exampleAES, append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)),
		Rand: rand.Reader, Version: unhexT(t, "04010101001A05"), File: make([]byte, 32)}
	_, ch = ev1.Transceive(0xAA, []byte{0})
	b, err = term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES, Key: cardKey("an10922/test/example-aes128-ev1"), CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		t.Fatal(err)
	}
	st, ans = ev1.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse()))
	if st != cardsim.StatusOK {
		t.Fatalf("EV1 refused samd: %02X", st)
	}
	f, err := term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: f.Msg.GetSession(), Command: 0x60, Mode: samdv1.CommMode_COMM_MODE_PLAIN}))
	if err != nil {
		t.Fatal(err)
	}
	st, resp := ev1.Transceive(0x60, nil)
	r, err := term.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC}))
	if err != nil || r.Msg.GetData() != "04010101001A05" {
		t.Fatalf("GetVersion: %v %v", err, r)
	}
	// Enciphered WriteData then ReadData (EV1 "fully enciphered" mode).
	// EV1 binds enciphered data to its command by a CRC only, so a
	// terminal may not have samd encipher it (README "Card sessions"):
	// personalisation, whose policy lists ChangeKey, writes.
	sess := r.Msg.GetSession()
	payload := []byte("EV1 enciphered file, 24 b")[:24]
	hdr := []byte{1, 0, 0, 0, 24, 0, 0}
	_, err = term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: sess, Command: 0x3D, Header: hex.EncodeToString(hdr), Data: hex.EncodeToString(payload), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	check(t, err, outcome{"denied", "policy: card-command:"})
	_, ch = ev1.Transceive(0xAA, []byte{0})
	b, err = perso.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES, Key: cardKey("an10922/test/example-aes128-ev1"), CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		t.Fatal(err)
	}
	if st, ans = ev1.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse())); st != cardsim.StatusOK {
		t.Fatalf("EV1 refused samd: %02X", st)
	}
	if f, err = perso.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)})); err != nil {
		t.Fatal(err)
	}
	p, err = perso.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: f.Msg.GetSession(), Command: 0x3D, Header: hex.EncodeToString(hdr), Data: hex.EncodeToString(payload), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	if err != nil {
		t.Fatal(err)
	}
	st, resp = ev1.Transceive(0x3D, unhexT(t, p.Msg.GetData()))
	if st != cardsim.StatusOK || !bytes.Equal(ev1.File[:24], payload) {
		t.Fatalf("EV1 WriteData: %02X, file %q", st, ev1.File[:24])
	}
	r, err = perso.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC}))
	if err != nil {
		t.Fatal(err)
	}
	p, err = perso.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: r.Msg.GetSession(), Command: 0xBD, Header: hex.EncodeToString(hdr), Mode: samdv1.CommMode_COMM_MODE_MAC}))
	if err != nil {
		t.Fatal(err)
	}
	st, resp = ev1.Transceive(0xBD, unhexT(t, p.Msg.GetData()))
	r, err = perso.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_FULL, ExpectedLength: 24}))
	if err != nil || !bytes.Equal(unhexT(t, r.Msg.GetData()), payload) {
		t.Fatalf("EV1 ReadData: %v %v", err, r)
	}

	// Legacy (D40) authentication with a DES key, then enciphered WriteData
	// and ReadData with CRC16.
	// The card holds the 2TDEA key samd derives from the AN10922 example
	// master (a D40 card with a 2K3DES key). D40's CRC16 covers the data
	// alone: D40 sessions are personalisation's (card_types), whose
	// enciphered writes its ChangeKey right allows; each D40 token checks
	// one response.
	leg := &cardsim.LegacyDES{Key: personalise(t, keys.TDEA2, "00112233445566778899AABBCCDDEEFF", m), Rand: rand.Reader, File: make([]byte, 32)}
	legKey := &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-2tdea-legacy", Version: 1}, Input: inputA}
	_, ch = leg.Transceive(0x0A, []byte{0})
	_, err = term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_LEGACY, Key: legKey, CardChallenge: hex.EncodeToString(ch)}))
	check(t, err, outcome{"denied", "policy: card-type: card type desfire-legacy"})
	b, err = perso.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_LEGACY, Key: legKey, CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		t.Fatal(err)
	}
	st, ans = leg.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse()))
	if st != cardsim.StatusOK {
		t.Fatalf("legacy card refused samd: %02X", st)
	}
	f, err = perso.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		t.Fatal(err)
	}
	legData := []byte("D40 card, CRC16")
	lh := []byte{1, 0, 0, 0, byte(len(legData)), 0, 0}
	p, err = perso.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: f.Msg.GetSession(), Command: 0x3D, Header: hex.EncodeToString(lh), Data: hex.EncodeToString(legData), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := leg.Transceive(0x3D, unhexT(t, p.Msg.GetData())); st != cardsim.StatusOK || !bytes.Equal(leg.File[:len(legData)], legData) {
		t.Fatalf("legacy WriteData %02X: %q", st, leg.File)
	}
	st, resp = leg.Transceive(0xBD, lh)
	read := &samdv1.CheckResponseRequest{Session: p.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_FULL, ExpectedLength: uint32(len(legData))}
	r, err = perso.CheckResponse(ctx, connect.NewRequest(read))
	if err != nil || !bytes.Equal(unhexT(t, r.Msg.GetData()), legData) {
		t.Fatalf("legacy ReadData: %v %v", err, r)
	}
	_, err = perso.CheckResponse(ctx, connect.NewRequest(read))
	check(t, err, outcome{"invalid-input", "one check per token"})
}

// TestSUN verifies taps of a simulated NTAG 424 DNA, singly and in a
// batch, and refuses a replayed tap and a forged MAC.
func TestSUN(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term, ch := d.cardClient(t, "terminal"), d.cardClient(t, "clearing-house")
	sys := []byte("samd-test-sun-tags")
	aid := unhexT(t, "F48EE1")
	uid := unhexT(t, "04DE5F1EACC040")
	tag := &cardsim.SUN{UID: uid, Counter: 60, Rand: rand.Reader, FileData: []byte("ride: zone 1, 2h"),
		MetaKey: personalise(t, keys.AES128, exampleAES, append(append([]byte(nil), aid...), sys...)),
		FileKey: personalise(t, keys.AES128, exampleAES, append(append(append([]byte(nil), uid...), aid...), sys...))}
	msg := func() *samdv1.VerifySUNRequest {
		picc, enc, in, mac := tag.Tap()
		return &samdv1.VerifySUNRequest{Profile: "test-tags", PiccData: hex.EncodeToString(picc), EncFileData: hex.EncodeToString(enc), MacInput: hex.EncodeToString(in), Sdmmac: hex.EncodeToString(mac)}
	}
	first := msg()
	r, err := term.VerifySUN(ctx, connect.NewRequest(first))
	if err != nil {
		t.Fatal(err)
	}
	if r.Msg.GetUid() != "04DE5F1EACC040" || r.Msg.GetCounter() != 61 || string(unhexT(t, r.Msg.GetFileData())) != "ride: zone 1, 2h" {
		t.Fatalf("SUN %v", r.Msg)
	}
	_, err = term.VerifySUN(ctx, connect.NewRequest(first))
	check(t, err, outcome{"denied", "replay"})

	batch := []*samdv1.VerifySUNRequest{msg(), msg(), first, msg()}
	forged := msg()
	forged.Sdmmac = "0000000000000000"
	batch = append(batch, forged)
	b, err := ch.VerifySUNBatch(ctx, connect.NewRequest(&samdv1.VerifySUNBatchRequest{Messages: batch}))
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{}
	for _, x := range b.Msg.GetResults() {
		codes = append(codes, x.GetCode())
	}
	if want := []string{"", "", "denied", "", "check-failed"}; len(codes) != 5 || codes[0] != want[0] || codes[1] != want[1] || codes[2] != want[2] || codes[3] != want[3] || codes[4] != want[4] || b.Msg.GetFailed() != 2 {
		t.Fatalf("batch codes %q", codes)
	}
}
