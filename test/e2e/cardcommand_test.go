package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

// TestCardCommandAllowList is the attack of issue 14, item 1, against a
// running samd: a terminal authenticates a DESFire EV2 card and asks samd
// to protect a ChangeKey (0xC4, FULL mode, its own new key as data) — over
// gRPC and as raw Connect JSON — and samd refuses it with denied, rule
// card-command, and audits the refusal with the command code. The card's
// key does not change, the terminal's data commands go on working, and
// personalisation still changes keys through ChangeKey.
func TestCardCommandAllowList(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	kx := personalise(t, keys.AES128, exampleAES, m)
	card := &cardsim.EV2{Keys: [][]byte{kx, append([]byte(nil), kx...)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{2: {Data: make([]byte, 32), Mode: 3}}}
	termClients := e.as("terminal", "dev-operator", "dev-terminal-7")
	term := termClients.card

	s := authEV2(t, ctx, term, card, "an10922/test/example-aes128", 0, "")
	attackerKey := "000102030405060708090A0B0C0D0E0F"
	changeKey := func(cmd byte, header string) *connect.Request[samdv1.ProtectCommandRequest] {
		return connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: uint32(cmd), Header: header, Data: attackerKey + "01", Mode: samdv1.CommMode_COMM_MODE_FULL})
	}
	_, err := term.ProtectCommand(ctx, changeKey(0xC4, "00"))
	check(t, err, outcome{"denied", "policy: card-command: card command C4 (ChangeKey)"})
	_, err = term.ProtectCommand(ctx, changeKey(0xC6, "0000"))
	check(t, err, outcome{"denied", "policy: card-command:"})

	// The same, as raw Connect JSON.
	body, _ := json.Marshal(map[string]any{"session": s, "command": 0xC4, "header": "00", "data": attackerKey + "01", "mode": "COMM_MODE_FULL"})
	resp, err := termClients.http.Post("https://"+e.addr+"/samd.v1.CardService/ProtectCommand", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Code, Message string }
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Samd-Error-Code") != "denied" || !strings.HasPrefix(answer.Message, "denied: policy: card-command:") {
		t.Fatalf("raw JSON ChangeKey: %d %s %+v", resp.StatusCode, resp.Header.Get("Samd-Error-Code"), answer)
	}
	for _, cmd := range []byte{0x5F, 0x54, 0x5C, 0xCA, 0xDA, 0xCD, 0xDF, 0xFC, 0x56, 0x57, 0x55} {
		_, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: uint32(cmd), Data: "00", Mode: samdv1.CommMode_COMM_MODE_MAC}))
		check(t, err, outcome{"denied", fmt.Sprintf("card command %02X", cmd)})
	}
	if !bytes.Equal(card.Keys[0], kx) {
		t.Fatal("the card's key 0 changed")
	}
	// The terminal's data commands work on the same session.
	secretData := []byte("ticket: 7-day zone 1-2, 2026-12.")
	command(t, ctx, term, card, &s, 0x8D, fileHeader(2, 0, 32), secretData, samdv1.CommMode_COMM_MODE_FULL, samdv1.CommMode_COMM_MODE_MAC)
	if got := command(t, ctx, term, card, &s, 0xAD, fileHeader(2, 0, 32), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_FULL); !bytes.Equal(got, secretData) {
		t.Fatalf("read back %q", got)
	}

	// Personalisation changes key 1 the proper way: samd diversifies the
	// new key itself; the card then authenticates with it through samd.
	perso := e.cardAs("personalisation", "dev-operator", "perso-7")
	ps := authEV2(t, ctx, perso, card, "an10922/test/example-aes128", 0, "")
	ck, err := perso.ChangeKey(ctx, connect.NewRequest(&samdv1.ChangeKeyRequest{Session: ps, KeyNo: 1, KeyVersion: 1,
		NewKey: cardKey("desfire/dev/app-master-aes128"), OldKey: cardKey("an10922/test/example-aes128")}))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := card.Transceive(0xC4, unhexT(t, ck.Msg.GetData())); st != cardsim.StatusOK || bytes.Equal(card.Keys[1], kx) {
		t.Fatalf("personalisation's ChangeKey: %02X", st)
	}
	authEV2(t, ctx, term, card, "desfire/dev/app-master-aes128", 1, "")

	// The audit log names the command code of every card command, allowed
	// or refused.
	var refused, allowedCmds, changeKeys int
	for _, r := range readAudit(t, e) {
		switch {
		case r.Method == "/samd.v1.CardService/ProtectCommand" && r.CardCommand == "C4":
			if r.Outcome != "denied" || r.Code != "denied" || !strings.Contains(r.Reason, "card-command") || r.Caller == nil || r.Caller.Device != "dev-terminal-7" {
				t.Errorf("ChangeKey refusal audited as %+v", r)
			}
			refused++
		case r.Method == "/samd.v1.CardService/ProtectCommand" && (r.CardCommand == "8D" || r.CardCommand == "AD") && r.Outcome == "ok":
			allowedCmds++
		case r.Method == "/samd.v1.CardService/ChangeKey" && r.CardCommand == "C4" && r.Outcome == "ok":
			changeKeys++
		}
	}
	if refused != 2 || allowedCmds != 2 || changeKeys != 1 {
		t.Fatalf("audit: %d refused ChangeKeys (want 2), %d data commands (want 2), %d ChangeKeys (want 1)", refused, allowedCmds, changeKeys)
	}
}

// TestCardCommandEV1Unbound: in a DESFire EV1 session the enciphered data
// of a command is bound to its code by a CRC only, so samd enciphers for a
// terminal nothing it could send as ChangeKey: a terminal's FULL-mode
// WriteData is refused, its plain commands are not.
func TestCardCommandEV1Unbound(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	term := d.cardClient(t, "terminal")
	ev1 := &cardsim.EV1AES{Key: personalise(t, keys.AES128, exampleAES, append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)),
		Rand: rand.Reader, Version: unhexT(t, "04010101001A05"), File: make([]byte, 32)}
	_, ch := ev1.Transceive(0xAA, []byte{0})
	b, err := term.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES, Key: cardKey("an10922/test/example-aes128-ev1"), CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		t.Fatal(err)
	}
	st, ans := ev1.Transceive(0xAF, unhexT(t, b.Msg.GetPcdResponse()))
	if st != cardsim.StatusOK {
		t.Fatalf("EV1 refused samd: %02X", st)
	}
	f, err := term.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: b.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		t.Fatal(err)
	}
	// NewKey ‖ KeyVer ‖ CRC32 laid out as data of a WriteData to key 0.
	_, err = term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: f.Msg.GetSession(), Command: 0x3D,
		Header: "00000000150000", Data: "000102030405060708090A0B0C0D0E0F0100000000", Mode: samdv1.CommMode_COMM_MODE_FULL}))
	check(t, err, outcome{"denied", "policy: card-command:"})
	if _, err := term.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: f.Msg.GetSession(), Command: 0x60, Mode: samdv1.CommMode_COMM_MODE_PLAIN})); err != nil {
		t.Fatal(err)
	}
}
