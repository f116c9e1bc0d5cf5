package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/test/vectors"
)

const sessionMethod = "/samd.v1.CardService/Session"

// cardStream is a card session held in one stream (CardService.Session),
// from the terminal's side.
type cardStream struct {
	t *testing.T
	s *connect.BidiStreamForClient[samdv1.CardSessionRequest, samdv1.CardSessionResponse]
}

func openStream(t *testing.T, ctx context.Context, c samdv1connect.CardServiceClient) *cardStream {
	t.Helper()
	return &cardStream{t: t, s: c.Session(ctx)}
}

// try sends a step and returns samd's answer, or the error the stream
// ended with.
func (s *cardStream) try(req *samdv1.CardSessionRequest) (*samdv1.CardSessionResponse, error) {
	if err := s.s.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return s.s.Receive()
}

// step sends a step and returns samd's answer, refused or not; the
// stream must go on.
func (s *cardStream) step(req *samdv1.CardSessionRequest) *samdv1.CardSessionResponse {
	s.t.Helper()
	r, err := s.try(req)
	if err != nil {
		s.t.Fatalf("the stream ended: %v", err)
	}
	return r
}

// ok sends a step samd must answer without refusal.
func (s *cardStream) ok(req *samdv1.CardSessionRequest) *samdv1.CardSessionResponse {
	s.t.Helper()
	r := s.step(req)
	if r.GetCode() != "" {
		s.t.Fatalf("step %d refused: %s", r.GetStep(), r.GetError())
	}
	return r
}

// refused sends a step samd must refuse with code, its message holding
// reason, leaving the stream open.
func (s *cardStream) refused(req *samdv1.CardSessionRequest, code, reason string) {
	s.t.Helper()
	r := s.step(req)
	if r.GetCode() != code || !strings.Contains(r.GetError(), reason) || r.GetResult() != nil {
		s.t.Fatalf("step %d: %s %q, want %s containing %q", r.GetStep(), r.GetCode(), r.GetError(), code, reason)
	}
}

// ends sends a step that must end the stream with code.
func (s *cardStream) ends(req *samdv1.CardSessionRequest, want outcome) {
	s.t.Helper()
	r, err := s.try(req)
	if err == nil {
		s.t.Fatalf("the stream went on: step %d %s %s", r.GetStep(), r.GetCode(), r.GetError())
	}
	check(s.t, err, want)
}

// close ends the session from the terminal's side.
func (s *cardStream) close() {
	s.t.Helper()
	if err := s.s.CloseRequest(); err != nil {
		s.t.Fatal(err)
	}
	if r, err := s.s.Receive(); !errors.Is(err, io.EOF) {
		s.t.Fatalf("the session's end: %v %v", r, err)
	}
	s.s.CloseResponse()
}

func begin(m *samdv1.BeginAuthRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Begin{Begin: m}}
}

func finish(answer []byte) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Finish{Finish: &samdv1.FinishAuthRequest{CardResponse: hex.EncodeToString(answer)}}}
}

func protect(m *samdv1.ProtectCommandRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Protect{Protect: m}}
}

func checkStep(m *samdv1.CheckResponseRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Check{Check: m}}
}

func changeKey(m *samdv1.ChangeKeyRequest) *samdv1.CardSessionRequest {
	return &samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_ChangeKey{ChangeKey: m}}
}

// authStream authenticates a simulated EV2 card in the stream:
// AuthenticateEV2First, or NonFirst in the stream's session.
func (s *cardStream) authEV2(card *cardsim.EV2, master string, keyNo byte, nonFirst bool) {
	s.t.Helper()
	cmd := byte(0x71)
	if nonFirst {
		cmd = 0x77
	}
	st, ch := card.Transceive(cmd, []byte{keyNo, 0})
	if st != cardsim.StatusMore {
		s.t.Fatalf("card refused authentication: %02X", st)
	}
	b := s.ok(begin(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, Key: cardKey(master), KeyNo: uint32(keyNo), CardChallenge: hex.EncodeToString(ch)}))
	st, ans := card.Transceive(0xAF, unhexT(s.t, b.GetBegin().GetPcdResponse()))
	if st != cardsim.StatusOK {
		s.t.Fatalf("card refused samd's answer: %02X", st)
	}
	if f := s.ok(finish(ans)); nonFirst == (f.GetFinish().GetPdCap2() != "") {
		s.t.Fatalf("finish: %v", f)
	}
}

// command protects a command in the stream, sends it to the card and
// checks the card's answer in the stream.
func (s *cardStream) command(card *cardsim.EV2, cmd byte, header, data []byte, mode, respMode samdv1.CommMode) []byte {
	s.t.Helper()
	p := s.ok(protect(&samdv1.ProtectCommandRequest{Command: uint32(cmd), Header: hex.EncodeToString(header), Data: hex.EncodeToString(data), Mode: mode}))
	st, resp := card.Transceive(cmd, unhexT(s.t, p.GetProtect().GetData()))
	if st != cardsim.StatusOK {
		s.t.Fatalf("card answered %02X to command %02X", st, cmd)
	}
	r := s.ok(checkStep(&samdv1.CheckResponseRequest{Status: uint32(st), Data: hex.EncodeToString(resp), Mode: respMode}))
	return unhexT(s.t, r.GetCheck().GetData())
}

// sessionRecords returns the session records of a device's streams and
// the steps recorded at once (refusals, key changes, value spent), by
// request id.
func sessionRecords(t *testing.T, e *env, device string) (sessions []audit.Record, refusals map[string][]audit.Record) {
	t.Helper()
	refusals = map[string][]audit.Record{}
	for _, r := range readAudit(t, e) {
		if r.Method != sessionMethod || r.Caller == nil || r.Caller.Device != device {
			continue
		}
		if strings.HasPrefix(r.Reason, "step ") && len(r.Steps) == 1 {
			refusals[r.RequestID] = append(refusals[r.RequestID], r)
			continue
		}
		sessions = append(sessions, r)
	}
	return sessions, refusals
}

// TestCardSessionStream runs DESFire EV2 sessions in one stream each
// through a running samd: authenticate, write and read files in FULL and
// MAC mode, refused steps answered in the stream (a terminal's ChangeKey,
// a token in a step, a response no command awaits, a terminal's
// change_key) while the session goes on, AuthenticateEV2NonFirst in the
// same session; personalisation changes a key in its stream, and changing
// the authenticated key ends it; a response that does not verify ends the
// stream and counts as a failed verification. Each session is one audit
// record with every step, and each refusal a record of its own, written
// at once.
func TestCardSessionStream(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	kx := personalise(t, keys.AES128, exampleAES, m)
	card := &cardsim.EV2{Keys: [][]byte{kx, bytes.Clone(kx)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{1: {Data: []byte("samd-mac-mode-file-0123456789..."), Mode: 1}, 2: {Data: make([]byte, 32), Mode: 3}}}
	term := e.as("terminal", "dev-operator", "dev-terminal-3").card

	s := openStream(t, ctx, term)
	s.authEV2(card, "an10922/test/example-aes128", 0, false)
	secretData := []byte("ticket: 7-day zone 1-2, 2026-12.")
	s.command(card, 0x8D, fileHeader(2, 0, 32), secretData, samdv1.CommMode_COMM_MODE_FULL, samdv1.CommMode_COMM_MODE_MAC)
	if !bytes.Equal(card.Files[2].Data, secretData) {
		t.Fatalf("the card holds %q", card.Files[2].Data)
	}
	if got := s.command(card, 0xAD, fileHeader(2, 0, 32), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_FULL); !bytes.Equal(got, secretData) {
		t.Fatalf("FULL-mode read %q", got)
	}
	s.refused(protect(&samdv1.ProtectCommandRequest{Command: 0xC4, Header: "00", Data: "000102030405060708090A0B0C0D0E0F01", Mode: samdv1.CommMode_COMM_MODE_FULL}),
		"denied", "policy: card-command: card command C4 (ChangeKey)")
	s.refused(protect(&samdv1.ProtectCommandRequest{Session: "token", Command: 0xAD, Header: hex.EncodeToString(fileHeader(1, 0, 4)), Mode: samdv1.CommMode_COMM_MODE_MAC}),
		"invalid-input", "carry no session token")
	s.refused(checkStep(&samdv1.CheckResponseRequest{Data: "0011223344556677", Mode: samdv1.CommMode_COMM_MODE_MAC}), "invalid-input", "out of order")
	s.refused(changeKey(&samdv1.ChangeKeyRequest{KeyNo: 1, NewKey: cardKey("desfire/dev/app-master-aes128"), OldKey: cardKey("an10922/test/example-aes128")}),
		"denied", "may not call /samd.v1.CardService/ChangeKey")
	// The session went on: AuthenticateEV2NonFirst in it, then a read.
	s.authEV2(card, "an10922/test/example-aes128", 1, true)
	if got := s.command(card, 0xAD, fileHeader(1, 0, 16), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_MAC); string(got) != "samd-mac-mode-fi" {
		t.Fatalf("MAC-mode read after NonFirst %q", got)
	}
	s.close()

	// A response that does not verify ends the stream.
	bad := openStream(t, ctx, term)
	bad.authEV2(card, "an10922/test/example-aes128", 0, false)
	p := bad.ok(protect(&samdv1.ProtectCommandRequest{Command: 0xAD, Header: hex.EncodeToString(fileHeader(1, 0, 4)), Mode: samdv1.CommMode_COMM_MODE_MAC}))
	_, resp := card.Transceive(0xAD, unhexT(t, p.GetProtect().GetData()))
	resp[0] ^= 1
	bad.ends(checkStep(&samdv1.CheckResponseRequest{Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC}), outcome{"check-failed", "does not verify"})

	// Personalisation changes key 1 in its stream (samd diversifies both
	// keys), then key 0, the authenticated one, which ends the session.
	perso := e.as("personalisation", "dev-operator", "perso-3").card
	ps := openStream(t, ctx, perso)
	ps.authEV2(card, "an10922/test/example-aes128", 0, false)
	ck := ps.ok(changeKey(&samdv1.ChangeKeyRequest{KeyNo: 1, KeyVersion: 1, NewKey: cardKey("desfire/dev/app-master-aes128"), OldKey: cardKey("an10922/test/example-aes128")}))
	st, resp := card.Transceive(0xC4, unhexT(t, ck.GetChangeKey().GetData()))
	if st != cardsim.StatusOK || bytes.Equal(card.Keys[1], kx) {
		t.Fatalf("card refused ChangeKey: %02X", st)
	}
	ps.ok(checkStep(&samdv1.CheckResponseRequest{Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC}))
	ck = ps.ok(changeKey(&samdv1.ChangeKeyRequest{KeyNo: 0, KeyVersion: 2, NewKey: cardKey("desfire/dev/app-master-aes128")}))
	if st, _ := card.Transceive(0xC4, unhexT(t, ck.GetChangeKey().GetData())); st != cardsim.StatusOK {
		t.Fatalf("same-key ChangeKey: %02X", st)
	}
	if r, err := ps.s.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("the stream after the authenticated key changed: %v %v", r, err)
	}
	ts := openStream(t, ctx, term)
	ts.authEV2(card, "desfire/dev/app-master-aes128", 1, false)
	ts.close()

	// The audit: one record per session with every step in order; each
	// refusal also a record of its own, written before the session's.
	sessions, refusals := sessionRecords(t, e, "dev-terminal-3")
	if len(sessions) != 3 {
		t.Fatalf("%d session records for the terminal, want 3: %+v", len(sessions), sessions)
	}
	first := sessions[0]
	var outcomes []string
	for i, st := range first.Steps {
		if st.N != i+1 {
			t.Fatalf("step %d numbered %d", i+1, st.N)
		}
		outcomes = append(outcomes, st.Step+":"+string(st.Outcome)+":"+st.CardCommand)
	}
	want := "begin:ok: finish:ok: protect:ok:8D check:ok: protect:ok:AD check:ok: protect:denied:C4 protect:error: check:error: change_key:denied:C4 begin:ok: finish:ok: protect:ok:AD check:ok:"
	if got := strings.Join(outcomes, " "); got != want || first.Outcome != audit.OutcomeOK || len(first.Keys) != 1 || first.Keys[0] != "an10922/test/example-aes128:v1" {
		t.Fatalf("the session's record: %s\n steps %s\n want  %s", first.Outcome, got, want)
	}
	if first.Steps[0].Input == nil || first.Steps[2].Input == nil || first.Steps[2].Input.Name != "command" {
		t.Fatalf("the steps carry no input digests: %+v", first.Steps[:3])
	}
	if n := len(refusals[first.RequestID]); n != 4 {
		t.Fatalf("%d refusals recorded at once, want 4", n)
	}
	for _, r := range refusals[first.RequestID] {
		if r.Seq >= first.Seq {
			t.Fatalf("refusal record %d after the session's record %d", r.Seq, first.Seq)
		}
	}
	if b := sessions[1]; b.Outcome != audit.OutcomeError || b.Code != "check-failed" || b.FailedChecks != 1 || len(b.Steps) != 4 || b.Steps[3].Code != "check-failed" {
		t.Fatalf("the session that failed a verification: %+v", b)
	}
	for _, r := range readAudit(t, e) {
		if r.Caller != nil && r.Caller.Device == "dev-terminal-3" && r.Method != sessionMethod {
			t.Fatalf("a stream's step recorded as a unary call: %+v", r)
		}
	}
	ps2, atOnce := sessionRecords(t, e, "perso-3")
	if len(ps2) != 1 || ps2[0].Outcome != audit.OutcomeOK || len(ps2[0].Steps) != 5 || ps2[0].Steps[2].CardCommand != "C4" || len(ps2[0].Keys) != 2 {
		t.Fatalf("personalisation's session: %+v", ps2)
	}
	// Each key change was recorded before its answer was sent.
	if changes := atOnce[ps2[0].RequestID]; len(changes) != 2 {
		t.Fatalf("%d key changes recorded at once, want 2", len(changes))
	} else {
		for _, r := range changes {
			if r.Outcome != audit.OutcomeOK || r.Steps[0].Step != "change_key" || !strings.Contains(r.Reason, "recorded before its answer") || r.Seq >= ps2[0].Seq {
				t.Fatalf("a key change's record: %+v", r)
			}
		}
	}
}

// TestCardSessionStreamEV1AndISO7816 runs a DESFire EV1 (AES), an ISO/IEC
// 7816-4 (ICAO 9303-11 Appendix D's card) and a D40 session in one stream
// each: a stream holds one session, so no second authentication — for
// ISO 7816-4 no second encryption under the card key — and a D40 session
// checks one MAC or FULL response per protected command.
func TestCardSessionStreamEV1AndISO7816(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	term, perso := d.cardClient(t, "terminal"), d.cardClient(t, "personalisation")

	ev1 := &cardsim.EV1AES{Key: personalise(t, keys.AES128, exampleAES, append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)),
		Rand: rand.Reader, Version: unhexT(t, "04010101001A05"), File: make([]byte, 32)}
	s := openStream(t, ctx, term)
	ev1Begin := func() *samdv1.CardSessionRequest {
		_, ch := ev1.Transceive(0xAA, []byte{0})
		return begin(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES, Key: cardKey("an10922/test/example-aes128-ev1"), CardChallenge: hex.EncodeToString(ch)})
	}
	b := s.ok(ev1Begin())
	st, ans := ev1.Transceive(0xAF, unhexT(t, b.GetBegin().GetPcdResponse()))
	if st != cardsim.StatusOK {
		t.Fatalf("EV1 refused samd: %02X", st)
	}
	s.ok(finish(ans))
	s.ok(protect(&samdv1.ProtectCommandRequest{Command: 0x60, Mode: samdv1.CommMode_COMM_MODE_PLAIN}))
	st, resp := ev1.Transceive(0x60, nil)
	if r := s.ok(checkStep(&samdv1.CheckResponseRequest{Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_MAC})); r.GetCheck().GetData() != "04010101001A05" {
		t.Fatalf("GetVersion: %v", r)
	}
	s.refused(protect(&samdv1.ProtectCommandRequest{Command: 0x3D, Header: "01000000100000", Data: "00112233445566778899AABBCCDDEEFF", Mode: samdv1.CommMode_COMM_MODE_FULL}),
		"denied", "policy: card-command:")
	s.refused(ev1Begin(), "invalid-input", "one card session")
	s.close()

	var v vectors.ICAO9303
	vectors.Load(t, icaoVectors, &v)
	card := v.Card(t, false)
	is := openStream(t, ctx, term)
	isoBegin := func() *samdv1.CardSessionRequest {
		ch := card.Transmit([]byte{0x00, 0x84, 0x00, 0x00, 0x08})
		return begin(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_ISO7816, Key: icaoKey(), CardChallenge: hex.EncodeToString(ch[:8])})
	}
	b = is.ok(isoBegin())
	is.ok(finish(card.Transmit(unhexT(t, b.GetBegin().GetPcdResponse()))))
	var data string
	for _, apdu := range []string{"00A4020C02011E", "00B0000016"} {
		p := is.ok(protect(&samdv1.ProtectCommandRequest{Apdu: apdu}))
		r := is.ok(checkStep(&samdv1.CheckResponseRequest{Apdu: hex.EncodeToString(card.Transmit(unhexT(t, p.GetProtect().GetData())))}))
		if r.GetCheck().GetSw() != "9000" {
			t.Fatalf("%s: status %s", apdu, r.GetCheck().GetSw())
		}
		data = r.GetCheck().GetData()
	}
	if !eqHex(data, v.EFCOM.Content) {
		t.Fatalf("EF.COM read %s, want %s", data, v.EFCOM.Content)
	}
	is.refused(isoBegin(), "invalid-input", "one card session")
	is.refused(protect(&samdv1.ProtectCommandRequest{Apdu: "00240001083132333435363738"}), "denied", "ISO/IEC 7816-4 instruction 24")
	is.close()

	// D40 (personalisation's card type): an enciphered write, the read's
	// enciphered answer checked once, and a second check refused.
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP A")...)
	leg := &cardsim.LegacyDES{Key: personalise(t, keys.TDEA2, exampleAES, m), Rand: rand.Reader, File: make([]byte, 32)}
	legKey := &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-2tdea-legacy", Version: 1},
		Input: &samdv1.DiversificationInput{Uid: cardUID, Aid: cardAID, SystemIdentifier: hex.EncodeToString([]byte("NXP A"))}}
	ls := openStream(t, ctx, perso)
	_, ch := leg.Transceive(0x0A, []byte{0})
	b = ls.ok(begin(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_LEGACY, Key: legKey, CardChallenge: hex.EncodeToString(ch)}))
	st, ans = leg.Transceive(0xAF, unhexT(t, b.GetBegin().GetPcdResponse()))
	if st != cardsim.StatusOK {
		t.Fatalf("legacy card refused samd: %02X", st)
	}
	ls.ok(finish(ans))
	legData := []byte("D40 card, CRC16")
	lh := []byte{1, 0, 0, 0, byte(len(legData)), 0, 0}
	p := ls.ok(protect(&samdv1.ProtectCommandRequest{Command: 0x3D, Header: hex.EncodeToString(lh), Data: hex.EncodeToString(legData), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	if st, _ := leg.Transceive(0x3D, unhexT(t, p.GetProtect().GetData())); st != cardsim.StatusOK || !bytes.Equal(leg.File[:len(legData)], legData) {
		t.Fatalf("legacy WriteData %02X: %q", st, leg.File)
	}
	st, resp = leg.Transceive(0xBD, lh)
	read := &samdv1.CheckResponseRequest{Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_FULL, ExpectedLength: uint32(len(legData))}
	if r := ls.ok(checkStep(read)); !bytes.Equal(unhexT(t, r.GetCheck().GetData()), legData) {
		t.Fatalf("legacy ReadData: %v", r)
	}
	ls.refused(checkStep(read), "invalid-input", "one MAC or FULL response per protected command")
	ls.close()
}

// TestCardSessionStreamDeadline: a stream that stalls — after its
// authentication, or before its first step — is ended by samd at its
// deadline (card_sessions.stream_timeout), and its record says so, with
// the steps it made.
func TestCardSessionStreamDeadline(t *testing.T) {
	e := newEnv(t, nil)
	e.setConfig("card_sessions", map[string]any{"stream_timeout": "2s"})
	e.start()
	ctx := ctxT(t) // a guard, not an assertion
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	card := &cardsim.EV2{Keys: [][]byte{personalise(t, keys.AES128, exampleAES, m)}, Rand: rand.Reader}
	term := e.as("terminal", "dev-operator", "dev-terminal-4").card

	s := openStream(t, ctx, term)
	s.authEV2(card, "an10922/test/example-aes128", 0, false)
	_, err := s.s.Receive() // and nothing more is sent
	check(t, err, outcome{"limit-reached", "stream_timeout"})

	silent := term.Session(ctx)
	if err := silent.Send(nil); err != nil { // the headers alone
		t.Fatal(err)
	}
	_, err = silent.Receive()
	check(t, err, outcome{"limit-reached", "stream_timeout"})

	sessions, _ := sessionRecords(t, e, "dev-terminal-4")
	if len(sessions) != 2 {
		t.Fatalf("%d session records, want 2", len(sessions))
	}
	for i, steps := range []int{2, 0} {
		r := sessions[i]
		if r.Outcome != audit.OutcomeError || r.Code != "limit-reached" || !strings.Contains(r.Reason, "stream_timeout") || len(r.Steps) != steps {
			t.Fatalf("stalled stream %d recorded as %+v", i, r)
		}
	}
}

// silentStreams opens n card session streams on one HTTP/2 connection of
// cert's — request headers, never a message, never the end of the
// request — as a client that ignores the server's stream limit would:
// every HEADERS frame is sent at once. It returns once samd has answered
// all but the streams it holds, with how many samd refused (an answer with
// its error code, or the HTTP/2 layer's RST_STREAM) and a function that
// closes the connection.
func (e *env) silentStreams(t *testing.T, cert tls.Certificate, n int, answered *atomic.Int64) (closeConn func()) {
	t.Helper()
	c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex // the framer's writes
		done = map[uint32]bool{}
	)
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					mu.Lock()
					fr.WriteSettingsAck()
					mu.Unlock()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					mu.Lock()
					fr.WritePing(true, f.Data)
					mu.Unlock()
				}
			case *http2.MetaHeadersFrame, *http2.RSTStreamFrame:
				if id := f.Header().StreamID; !done[id] && (f.Header().Type == http2.FrameRSTStream || f.Header().Flags.Has(http2.FlagHeadersEndStream)) {
					done[id] = true
					answered.Add(1)
				}
			}
		}
	}()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range n {
		hb.Reset()
		for _, h := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", e.addr}, {":path", sessionMethod},
			{"content-type", "application/grpc"}, {"te", "trailers"}} {
			enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
		}
		mu.Lock()
		err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndHeaders: true})
		mu.Unlock()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	return func() { c.Close() }
}

// TestCardSessionStreamsFlatMemory: one terminal opens 10 000 session
// streams at once on four HTTP/2 connections and sends nothing on them.
// samd holds at most the client's limit of them (limits.
// max_concurrent_per_client, 64), refuses the others at once — its HTTP/2
// layer beyond a connection's 64 streams, samd beyond the client's 64 —
// and its peak memory stays flat; another terminal's tap goes through
// meanwhile. (A client's connections are limited too, limits.
// max_connections_per_client: TestConnectionsPerClient in server.)
func TestCardSessionStreamsFlatMemory(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t) // a guard, not an assertion
	e.mu.Lock()
	pid := e.cmd.Process.Pid
	e.mu.Unlock()
	before := peakRSS(t, pid)
	cert := e.mint("terminal", "dev-operator", "dev-terminal-5")
	const conns, per = 4, 2500
	var answered atomic.Int64
	for range conns {
		defer e.silentStreams(t, cert, per, &answered)()
	}
	// Until samd has answered all but the streams it holds.
	for answered.Load() < conns*per-64 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	card := &cardsim.EV2{Keys: [][]byte{personalise(t, keys.AES128, exampleAES, m)}, Rand: rand.Reader}
	s := openStream(t, ctx, e.as("terminal", "dev-operator", "dev-terminal-6").card)
	s.authEV2(card, "an10922/test/example-aes128", 0, false)
	s.close()
	after := peakRSS(t, pid)
	total := int(answered.Load())
	t.Logf("samd peak RSS %d MiB before, %d MiB after %d silent streams, %d answered at once", before>>20, after>>20, conns*per, total)
	if held := conns*per - total; held > 64 {
		t.Fatalf("samd holds %d silent streams of one client (its limit is 64)", held)
	}
	if growth := after - before; growth > 32<<20 {
		t.Fatalf("samd's peak memory grew by %d MiB for %d silent streams", growth>>20, conns*per)
	}
}
