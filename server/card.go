package server

import (
	"context"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/policies"
)

// cardService adapts the CardService to the authority.
type cardService struct {
	auth *authority.Authority
	s    *Server // for the session stream's per-step authorisation and audit
}

var protocols = map[samdv1.CardProtocol]authority.Protocol{
	samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2:        authority.ProtocolEV2,
	samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_ISO:    authority.ProtocolEV1ISO,
	samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES:    authority.ProtocolEV1AES,
	samdv1.CardProtocol_CARD_PROTOCOL_ULTRALIGHT_C:       authority.ProtocolULC,
	samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_LEGACY: authority.ProtocolLegacy,
	samdv1.CardProtocol_CARD_PROTOCOL_ISO7816:            authority.ProtocolISO7816,
}

var commModes = map[samdv1.CommMode]authority.CommMode{
	samdv1.CommMode_COMM_MODE_PLAIN: authority.CommPlain,
	samdv1.CommMode_COMM_MODE_MAC:   authority.CommMAC,
	samdv1.CommMode_COMM_MODE_FULL:  authority.CommFull,
}

func parseCardKey(field string, k *samdv1.CardKey) (authority.CardKey, error) {
	if k == nil {
		return authority.CardKey{}, errkind.Errorf(errkind.InvalidInput, "%s: missing", field)
	}
	ref, err := parseRef(field+".master_key", k.GetMasterKey())
	if err != nil {
		return authority.CardKey{}, err
	}
	in, err := parseInput(k.GetInput())
	if err != nil {
		return authority.CardKey{}, errkind.Wrap(errkind.InvalidInput, err, "%s", field)
	}
	return authority.CardKey{Master: ref, Input: in}, nil
}

func hexField(field, s string) ([]byte, error) { return decodeHex(field, s) }

// cardSubject gives the policy the master keys a card request names and,
// for BeginAuth, the card type: the session's protocol, which the role's
// card_types must allow.
func cardSubject(_ *Server, msg any) (policies.Request, error) {
	var ks []*samdv1.CardKey
	var req policies.Request
	switch m := msg.(type) {
	case *samdv1.BeginAuthRequest:
		ks = []*samdv1.CardKey{m.GetKey()}
		proto, ok := protocols[m.GetProtocol()]
		if !ok {
			return req, errkind.Errorf(errkind.InvalidInput, "protocol: unknown")
		}
		req.CardType = string(proto)
	case *samdv1.ChangeKeyRequest:
		ks = []*samdv1.CardKey{m.GetNewKey()}
		if m.GetOldKey() != nil {
			ks = append(ks, m.GetOldKey())
		}
	}
	for _, k := range ks {
		ref, err := parseRef("key.master_key", k.GetMasterKey())
		if err != nil {
			return req, err
		}
		req.Keys = append(req.Keys, ref)
	}
	return req, nil
}

// sunSubject gives the policy the master keys of the SUN profiles named.
func sunSubject(s *Server, msg any) (policies.Request, error) {
	var names []string
	switch m := msg.(type) {
	case *samdv1.VerifySUNRequest:
		names = []string{m.GetProfile()}
	case *samdv1.VerifySUNBatchRequest:
		if n := len(m.GetMessages()); n == 0 || n > MaxBatch {
			return policies.Request{}, errkind.Errorf(errkind.InvalidInput, "messages: 1 to %d per call, not %d", MaxBatch, n)
		}
		seen := map[string]bool{}
		for _, x := range m.GetMessages() {
			if !seen[x.GetProfile()] {
				seen[x.GetProfile()] = true
				names = append(names, x.GetProfile())
			}
		}
	}
	var req policies.Request
	for _, n := range names {
		p, err := s.cfg.Authority.SUNProfileByName(n)
		if err != nil {
			return req, errkind.Wrap(errkind.InvalidInput, err, "profile")
		}
		req.Keys = append(req.Keys, p.Keys()...)
	}
	return req, nil
}

// parseBegin parses a BeginAuth request (the session, for an EV2
// NonFirst, included).
func parseBegin(m *samdv1.BeginAuthRequest) (authority.BeginAuthRequest, error) {
	proto, ok := protocols[m.GetProtocol()]
	if !ok {
		return authority.BeginAuthRequest{}, errkind.Errorf(errkind.InvalidInput, "protocol: unknown")
	}
	key, err := parseCardKey("key", m.GetKey())
	if err != nil {
		return authority.BeginAuthRequest{}, err
	}
	challenge, err := hexField("card_challenge", m.GetCardChallenge())
	if err != nil {
		return authority.BeginAuthRequest{}, err
	}
	if m.GetKeyNo() > 0xFF {
		return authority.BeginAuthRequest{}, errkind.Errorf(errkind.InvalidInput, "key_no: must be 0..255")
	}
	return authority.BeginAuthRequest{Protocol: proto, Key: key, KeyNo: byte(m.GetKeyNo()), Challenge: challenge, Session: m.GetSession(), SingleDES: m.GetSingleDes()}, nil
}

func (c *cardService) BeginAuth(ctx context.Context, req *connect.Request[samdv1.BeginAuthRequest]) (*connect.Response[samdv1.BeginAuthResponse], error) {
	r, err := parseBegin(req.Msg)
	if err != nil {
		return nil, err
	}
	audit.NoteFrom(ctx).Input(audit.Digest("input", r.Key.Input.Bytes()))
	answer, tok, err := c.auth.BeginAuth(ctx, principal(ctx), grant(ctx), r)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.BeginAuthResponse{PcdResponse: encodeHex(answer), Session: tok}), nil
}

func (c *cardService) FinishAuth(ctx context.Context, req *connect.Request[samdv1.FinishAuthRequest]) (*connect.Response[samdv1.FinishAuthResponse], error) {
	answer, err := hexField("card_response", req.Msg.GetCardResponse())
	if err != nil {
		return nil, err
	}
	res, err := c.auth.FinishAuth(ctx, principal(ctx), grant(ctx), req.Msg.GetSession(), answer)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(wireAuth(res)), nil
}

func wireAuth(res authority.AuthResult) *samdv1.FinishAuthResponse {
	return &samdv1.FinishAuthResponse{Session: res.Session, Ti: encodeHex(res.TI), PdCap2: encodeHex(res.PDcap2), PcdCap2: encodeHex(res.PCDcap2)}
}

// protectRequest is a parsed ProtectCommand request: an ISO/IEC 7816-4
// APDU, or a DESFire command with its header, data and mode (and the
// value authorisation of a Credit).
type protectRequest struct {
	apdu               []byte
	cmd                byte
	header, data       []byte
	mode               authority.CommMode
	valueAuthorization uint64
}

// code is the card command code (the INS of an APDU) the audit record
// names, and ok whether there is one.
func (r protectRequest) code() (byte, bool) {
	if r.apdu != nil {
		if len(r.apdu) < 2 {
			return 0, false
		}
		return r.apdu[1], true
	}
	return r.cmd, true
}

// digest is the command as the audit record describes it.
func (r protectRequest) digest() audit.Input {
	if r.apdu != nil {
		return audit.Digest("command", r.apdu)
	}
	return audit.Digest("command", append(append([]byte{r.cmd}, r.header...), r.data...))
}

func parseProtect(m *samdv1.ProtectCommandRequest) (protectRequest, error) {
	if m.GetApdu() != "" {
		if m.GetCommand() != 0 || m.GetHeader() != "" || m.GetData() != "" || m.GetMode() != samdv1.CommMode_COMM_MODE_UNSPECIFIED {
			return protectRequest{}, errkind.Errorf(errkind.InvalidInput, "apdu: give the command APDU alone, without command, header, data or mode")
		}
		apdu, err := hexField("apdu", m.GetApdu())
		return protectRequest{apdu: apdu}, err
	}
	mode, ok := commModes[m.GetMode()]
	if !ok || m.GetCommand() > 0xFF {
		return protectRequest{}, errkind.Errorf(errkind.InvalidInput, "mode and command (0..255) are required")
	}
	header, err := hexField("header", m.GetHeader())
	if err != nil {
		return protectRequest{}, err
	}
	data, err := hexField("data", m.GetData())
	if err != nil {
		return protectRequest{}, err
	}
	return protectRequest{cmd: byte(m.GetCommand()), header: header, data: data, mode: mode, valueAuthorization: m.GetValueAuthorization()}, nil
}

func (c *cardService) ProtectCommand(ctx context.Context, req *connect.Request[samdv1.ProtectCommandRequest]) (*connect.Response[samdv1.ProtectCommandResponse], error) {
	m := req.Msg
	r, err := parseProtect(m)
	if err != nil {
		return nil, err
	}
	// The record names the command code (an APDU's instruction), allowed
	// or refused; the command itself only by its digest.
	if code, ok := r.code(); ok {
		audit.NoteFrom(ctx).CardCommand(code)
	}
	audit.NoteFrom(ctx).Input(r.digest())
	var out []byte
	var tok string
	switch {
	case r.apdu != nil:
		out, tok, err = c.auth.ProtectAPDU(ctx, principal(ctx), grant(ctx), m.GetSession(), r.apdu)
	case r.valueAuthorization != 0:
		out, tok, err = c.auth.ProtectCredit(ctx, principal(ctx), grant(ctx), m.GetSession(), r.cmd, r.header, r.data, r.mode, r.valueAuthorization)
	default:
		out, tok, err = c.auth.ProtectCommand(ctx, principal(ctx), grant(ctx), m.GetSession(), r.cmd, r.header, r.data, r.mode)
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.ProtectCommandResponse{Data: encodeHex(out), Session: tok}), nil
}

// checkRequest is a parsed CheckResponse request: an ISO/IEC 7816-4
// response APDU, or a DESFire status, body, mode and expected length.
type checkRequest struct {
	apdu     []byte
	status   byte
	body     []byte
	mode     authority.CommMode
	expected int
}

func parseCheck(m *samdv1.CheckResponseRequest) (checkRequest, error) {
	if m.GetApdu() != "" {
		if m.GetStatus() != 0 || m.GetData() != "" || m.GetMode() != samdv1.CommMode_COMM_MODE_UNSPECIFIED || m.GetExpectedLength() != 0 {
			return checkRequest{}, errkind.Errorf(errkind.InvalidInput, "apdu: give the response APDU alone, without status, data, mode or expected_length")
		}
		rapdu, err := hexField("apdu", m.GetApdu())
		return checkRequest{apdu: rapdu}, err
	}
	mode, ok := commModes[m.GetMode()]
	if !ok || m.GetStatus() > 0xFF {
		return checkRequest{}, errkind.Errorf(errkind.InvalidInput, "mode and status (0..255) are required")
	}
	body, err := hexField("data", m.GetData())
	if err != nil {
		return checkRequest{}, err
	}
	return checkRequest{status: byte(m.GetStatus()), body: body, mode: mode, expected: int(m.GetExpectedLength())}, nil
}

func wireSW(sw uint16) string { return encodeHex([]byte{byte(sw >> 8), byte(sw)}) }

func (c *cardService) CheckResponse(ctx context.Context, req *connect.Request[samdv1.CheckResponseRequest]) (*connect.Response[samdv1.CheckResponseResponse], error) {
	m := req.Msg
	r, err := parseCheck(m)
	if err != nil {
		return nil, err
	}
	if r.apdu != nil {
		out, sw, tok, err := c.auth.CheckAPDU(ctx, principal(ctx), grant(ctx), m.GetSession(), r.apdu)
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&samdv1.CheckResponseResponse{Data: encodeHex(out), Session: tok, Sw: wireSW(sw)}), nil
	}
	out, tok, err := c.auth.CheckResponse(ctx, principal(ctx), grant(ctx), m.GetSession(), r.status, r.body, r.mode, r.expected)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.CheckResponseResponse{Data: encodeHex(out), Session: tok}), nil
}

func parseChangeKey(m *samdv1.ChangeKeyRequest) (authority.ChangeKeyRequest, error) {
	nk, err := parseCardKey("new_key", m.GetNewKey())
	if err != nil {
		return authority.ChangeKeyRequest{}, err
	}
	var ok authority.CardKey
	if m.GetOldKey() != nil {
		if ok, err = parseCardKey("old_key", m.GetOldKey()); err != nil {
			return authority.ChangeKeyRequest{}, err
		}
	}
	if m.GetKeyNo() > 0xFF || m.GetKeyVersion() > 0xFF {
		return authority.ChangeKeyRequest{}, errkind.Errorf(errkind.InvalidInput, "key_no and key_version are 0..255")
	}
	r := authority.ChangeKeyRequest{Session: m.GetSession(), KeyNo: byte(m.GetKeyNo()), New: nk, Old: ok, KeyVersion: byte(m.GetKeyVersion())}
	if m.OldKeyVersion != nil {
		if m.GetOldKeyVersion() > 0xFF {
			return authority.ChangeKeyRequest{}, errkind.Errorf(errkind.InvalidInput, "old_key_version: 0..255")
		}
		v := byte(m.GetOldKeyVersion())
		r.OldKeyVersion = &v
	}
	return r, nil
}

func (c *cardService) ChangeKey(ctx context.Context, req *connect.Request[samdv1.ChangeKeyRequest]) (*connect.Response[samdv1.ChangeKeyResponse], error) {
	r, err := parseChangeKey(req.Msg)
	if err != nil {
		return nil, err
	}
	audit.NoteFrom(ctx).CardCommand(policies.CmdChangeKey)
	out, tok, err := c.auth.ChangeKey(ctx, principal(ctx), grant(ctx), r)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.ChangeKeyResponse{Data: encodeHex(out), Session: tok}), nil
}

// errChallengeGone is the answer to ExternalAuthenticate and
// InternalAuthenticate, which the server's method table refuses before any
// handler runs (errChallengeGone is their refusal there too).
var errChallengeGone = errkind.Errorf(errkind.Denied, "ExternalAuthenticate and InternalAuthenticate are gone: they encrypted a caller's challenge under a card key, an encryption oracle; ISO/IEC 7816-4 cards authenticate with BeginAuth, protocol CARD_PROTOCOL_ISO7816 (samd client card begin --protocol iso7816)")

func (c *cardService) ExternalAuthenticate(context.Context, *connect.Request[samdv1.ChallengeRequest]) (*connect.Response[samdv1.ChallengeResponse], error) {
	return nil, errChallengeGone
}

func (c *cardService) InternalAuthenticate(context.Context, *connect.Request[samdv1.ChallengeRequest]) (*connect.Response[samdv1.ChallengeResponse], error) {
	return nil, errChallengeGone
}

func parseSUN(m *samdv1.VerifySUNRequest) (authority.SUNMessage, error) {
	var s authority.SUNMessage
	var err error
	if s.PICCData, err = hexField("picc_data", m.GetPiccData()); err != nil {
		return s, err
	}
	if s.EncFileData, err = hexField("enc_file_data", m.GetEncFileData()); err != nil {
		return s, err
	}
	if s.MACInput, err = hexField("mac_input", m.GetMacInput()); err != nil {
		return s, err
	}
	if s.SDMMAC, err = hexField("sdmmac", m.GetSdmmac()); err != nil {
		return s, err
	}
	if len(s.SDMMAC) != 8 {
		return s, errkind.Errorf(errkind.InvalidInput, "sdmmac: must be 8 bytes")
	}
	return s, nil
}

func wireSUN(r authority.SUNResult) *samdv1.VerifySUNResponse {
	return &samdv1.VerifySUNResponse{Uid: encodeHex(r.UID), Counter: r.Counter, FileData: encodeHex(r.FileData)}
}

func (c *cardService) VerifySUN(ctx context.Context, req *connect.Request[samdv1.VerifySUNRequest]) (*connect.Response[samdv1.VerifySUNResponse], error) {
	msg, err := parseSUN(req.Msg)
	if err != nil {
		return nil, err
	}
	res, err := c.auth.VerifySUN(ctx, principal(ctx), grant(ctx), req.Msg.GetProfile(), msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(wireSUN(res)), nil
}

// VerifySUNBatch verifies many SUN messages; each fails on its own (a
// forged MAC, a replay) without failing the batch.
func (c *cardService) VerifySUNBatch(ctx context.Context, req *connect.Request[samdv1.VerifySUNBatchRequest]) (*connect.Response[samdv1.VerifySUNBatchResponse], error) {
	msgs := req.Msg.GetMessages()
	items := make([]authority.SUNItem, len(msgs))
	parsed := make([]error, len(msgs))
	for i, m := range msgs {
		items[i].Profile = m.GetProfile()
		items[i].Message, parsed[i] = parseSUN(m)
		if parsed[i] != nil {
			items[i].Profile = "" // skipped: fails as "no SUN profile"
		}
	}
	res, err := c.auth.VerifySUNBatch(ctx, principal(ctx), grant(ctx), items)
	if err != nil {
		return nil, err
	}
	out := &samdv1.VerifySUNBatchResponse{}
	for i, r := range res {
		if parsed[i] != nil {
			r.Err = parsed[i]
		}
		sr := &samdv1.SUNResult{}
		if r.Err != nil {
			sr.Code, sr.Error = failure(r.Err)
			out.Failed++
		} else {
			sr.Message = wireSUN(r.Result)
		}
		out.Results = append(out.Results, sr)
	}
	return connect.NewResponse(out), nil
}
