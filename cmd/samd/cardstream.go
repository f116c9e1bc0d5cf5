package main

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

// cardStream is a card session held in one stream (CardService.Session),
// from the terminal's side: each step is sent and its answer read before
// the next.
type cardStream struct {
	s *connect.BidiStreamForClient[samdv1.CardSessionRequest, samdv1.CardSessionResponse]
}

func (c *client) openCardStream(ctx context.Context) cardStream {
	return cardStream{s: c.card.Session(ctx)}
}

// step sends one step and returns samd's answer; a refused step is an
// error naming its stable code, and so is the stream's end.
func (cs cardStream) step(req *samdv1.CardSessionRequest) (*samdv1.CardSessionResponse, error) {
	if err := cs.s.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// On io.EOF samd has ended the stream: Receive says why.
	r, err := cs.s.Receive()
	if err != nil {
		return nil, err
	}
	if r.GetCode() != "" {
		return r, fmt.Errorf("step %d refused: %s", r.GetStep(), r.GetError())
	}
	return r, nil
}

// close ends the session: samd wipes it and writes its audit record.
func (cs cardStream) close() error {
	if err := cs.s.CloseRequest(); err != nil {
		return err
	}
	if _, err := cs.s.Receive(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("samd answered after the session's end")
		}
		return err
	}
	return cs.s.CloseResponse()
}

func beginStep(m *samdv1.BeginAuthRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Begin{Begin: m}}
}

func finishStep(answer []byte) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Finish{Finish: &samdv1.FinishAuthRequest{CardResponse: hex.EncodeToString(answer)}}}
}

func protectStep(m *samdv1.ProtectCommandRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Protect{Protect: m}}
}

func checkStep(m *samdv1.CheckResponseRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Check{Check: m}}
}

// demoEV2Card is the demo's simulated DESFire EV2, personalised with the
// key samd derives from the AN10922 example master for the card's UID,
// AID and system identifier.
func demoEV2Card(ctx context.Context, uid, aid string, sys []byte) (*cardsim.EV2, error) {
	m := append(append(mustHex(uid), mustHex(aid)...), sys...)
	b, _ := aes.NewCipher(mustHex("00112233445566778899AABBCCDDEEFF"))
	in, _ := derive.RawInput(m)
	kx, err := derive.Diversify(ctx, softCMACer{b}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
	if err != nil {
		return nil, err
	}
	defer kx.Wipe()
	return &cardsim.EV2{Keys: [][]byte{append([]byte(nil), kx.Reveal()...)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{2: {Data: []byte("7-day ticket, zones 1-2, 2026-12"), Mode: 3}}}, nil
}

// cardDemoStream runs the EV2 demo's session in one stream: the tap is
// one request to samd, its steps messages in it.
func (c *client) cardDemoStream(ctx context.Context, w io.Writer) error {
	uid, aid, sys := "04782E21801D80", "3042F5", []byte("NXP Abu")
	card, err := demoEV2Card(ctx, uid, aid, sys)
	if err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	s := c.openCardStream(ctx)
	st, ch := card.Transceive(0x71, []byte{0, 0})
	step("1. terminal -> card   90 71 00 00 02 00 00 00       AuthenticateEV2First, key 0")
	step("   card -> terminal   %X 91 %02X             E(Kx, RndB)", ch, st)
	br, err := s.step(beginStep(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
		Key:           &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: &samdv1.DiversificationInput{Uid: uid, Aid: aid, SystemIdentifier: hex.EncodeToString(sys)}},
		CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		return err
	}
	pcd := br.GetBegin().GetPcdResponse()
	step("2. terminal -> samd   opens CardService.Session (one stream for the tap) and sends begin:")
	step("                        protocol ev2, key an10922/test/example-aes128:v1, uid %s, aid %s, sysid %q, challenge %X", uid, aid, sys, ch)
	step("   samd -> terminal   pcd_response %s", pcd)
	st, ans := card.Transceive(0xAF, mustHex(pcd))
	step("3. terminal -> card   90 AF 00 00 20 %s 00", pcd)
	step("   card -> terminal   %X 91 %02X", ans, st)
	fr, err := s.step(finishStep(ans))
	if err != nil {
		return err
	}
	step("4. terminal -> samd   finish: card_response %X", ans)
	step("   samd -> terminal   authenticated: TI %s; the session keys stay in samd's memory for the stream", fr.GetFinish().GetTi())
	pr, err := s.step(protectStep(&samdv1.ProtectCommandRequest{Command: 0xAD, Header: "02000000200000", Mode: samdv1.CommMode_COMM_MODE_MAC}))
	if err != nil {
		return err
	}
	data := pr.GetProtect().GetData()
	step("5. terminal -> samd   protect: command AD, header 02000000200000, mode mac")
	step("   samd -> terminal   %s                 ReadData file 2 with its MAC", data)
	st, resp := card.Transceive(0xAD, mustHex(data))
	step("6. terminal -> card   90 AD 00 00 0F %s 00", data)
	step("   card -> terminal   %X 91 %02X   (encrypted file data and MAC)", resp, st)
	cr, err := s.step(checkStep(&samdv1.CheckResponseRequest{Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	if err != nil {
		return err
	}
	step("7. terminal -> samd   check: status %02X, data %X, mode full", st, resp)
	step("   samd -> terminal   MAC verified, decrypted: %q", mustHex(cr.GetCheck().GetData()))
	if err := s.close(); err != nil {
		return err
	}
	step("8. terminal -> samd   closes the stream: samd wipes the session and writes its one audit record")
	return nil
}
