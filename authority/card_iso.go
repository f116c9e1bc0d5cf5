package authority

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// ISO/IEC 7816-4 card sessions: mutual authentication with key
// establishment (ISO/IEC 11770-2 mechanism 6 through GET CHALLENGE and
// EXTERNAL AUTHENTICATE, as ICAO Doc 9303 Part 11 §4.3 runs it) and
// secure messaging (ICAO 9303-11 §9.8), with the cryptography of package
// cardauth.
//
// The card's keys. A key entry of protocol iso7816 names the card's cipher
// and challenge length (policies.ISOKeySet). samd diversifies the entry's
// master key by AN10922 for the card, and takes the result as the key seed
// of ICAO 9303-11 §9.7.1: K_enc = KDF(K_seed, 1), K_mac = KDF(K_seed, 2)
// in the card's cipher — exactly how ICAO derives a document's basic
// access keys from the seed its Appendix D.1 prints. The master must be at
// least as strong as the cipher (keys.CheckProtection).
//
// The order. The terminal sends GET CHALLENGE first and passes the card's
// RND.ICC to BeginAuth, which draws samd's RND.IFD and K.IFD in the same
// call that encrypts them (cardauth.ISOBegin). A session that held samd's
// RND.IFD before the card's challenge was known could be replayed with
// several challenges, each encrypted after the same first block; drawn at
// the moment of encryption, every plaintext starts with a block nobody
// chose or knew. It is the only encryption under the card key samd makes
// for an ISO/IEC 7816-4 card, once per BeginAuth, and the card's answer is
// checked against samd's RND.IFD from the sealed session, never a
// caller's challenge.

// isoRand is where samd's RND.IFD and K.IFD come from: crypto/rand, except
// in a binary built with the samd_insecure_fixed_random tag for the ICAO
// test (insecure_random.go), which may replace it before serving.
var isoRand io.Reader = rand.Reader

// isoSuite is the session's key set.
func (cs *cardSession) isoSuite() cardauth.ISOSuite {
	return cardauth.ISOSuite{Alg: cs.ISOCipher, ChallengeLen: cs.ISOChLen}
}

// isoKeys derives the card's K_enc and K_mac from its key seed (the
// AN10922 diversified key) by ICAO 9303-11 §9.7.1's KDF. The caller wipes
// both.
func isoKeys(seed secret.Bytes, cipher keys.Algorithm) (kenc, kmac secret.Bytes, err error) {
	if kenc, err = cardauth.ISOKDF(cipher, seed, 1); err != nil {
		return secret.Bytes{}, secret.Bytes{}, err
	}
	if kmac, err = cardauth.ISOKDF(cipher, seed, 2); err != nil {
		kenc.Wipe()
		return secret.Bytes{}, secret.Bytes{}, err
	}
	return kenc, kmac, nil
}

// beginISO answers the card's GET CHALLENGE (req.Challenge, RND.ICC, of
// exactly the key set's challenge length) with the EXTERNAL AUTHENTICATE
// command APDU, and keeps RND.IFD, RND.ICC, K.IFD and the key seed in cs
// for finishISO. Everything that can be refused is refused before the
// key is used.
func (a *Authority) beginISO(ctx context.Context, g policies.Grant, use policies.KeyUse, req BeginAuthRequest, cs *cardSession) ([]byte, error) {
	if use.ISO == nil {
		return nil, errkind.Errorf(errkind.Internal, "the key entry of %s has no iso7816 section", req.Key.Master)
	}
	suite := cardauth.ISOSuite{Alg: use.ISO.Cipher, ChallengeLen: use.ISO.ChallengeLen}
	if len(req.Challenge) != suite.ChallengeLen {
		return nil, errkind.Errorf(errkind.InvalidInput, "card_challenge: the card's GET CHALLENGE answer for key %s is %d bytes, not %d", req.Key.Master, suite.ChallengeLen, len(req.Challenge))
	}
	master, err := a.masterKey(req.Key.Master, req.Key.Input)
	if err != nil {
		return nil, err
	}
	// The card's keys are no stronger than the seed they come from.
	if err := keys.CheckProtection(master.Algorithm, suite.Alg); err != nil {
		return nil, err
	}
	if err := a.useKeys(ctx, g, req.Key.Master); err != nil {
		return nil, err
	}
	seed, err := derive.Diversify(ctx, a.keys, master, req.Key.Input)
	if err != nil {
		return nil, err
	}
	defer seed.Wipe()
	kenc, kmac, err := isoKeys(seed, suite.Alg)
	if err != nil {
		return nil, err
	}
	defer kenc.Wipe()
	defer kmac.Wipe()
	st, apdu, err := cardauth.ISOBegin(suite, kenc, kmac, req.Challenge, isoRand)
	if err != nil {
		return nil, err
	}
	defer st.Wipe()
	cs.ISOCipher, cs.ISOChLen = suite.Alg, suite.ChallengeLen
	cs.RndA, cs.RndB = st.RndIFD, st.RndICC
	cs.KIFD = bytes.Clone(st.KIFD.Reveal())
	cs.Kx = bytes.Clone(seed.Reveal())
	return apdu, nil
}

// finishISO checks the card's answer to EXTERNAL AUTHENTICATE (the response
// APDU, E_ICC ‖ M_ICC ‖ 90 00) against samd's RND.IFD and the card's
// RND.ICC kept in cs, and opens secure messaging. seed is the card's key
// seed.
func (a *Authority) finishISO(cs *cardSession, seed secret.Bytes, answer []byte) (AuthResult, error) {
	kenc, kmac, err := isoKeys(seed, cs.ISOCipher)
	if err != nil {
		return AuthResult{}, err
	}
	defer kenc.Wipe()
	defer kmac.Wipe()
	st := &cardauth.ISOAuth{Suite: cs.isoSuite(), RndIFD: bytes.Clone(cs.RndA), RndICC: bytes.Clone(cs.RndB), KIFD: secret.Copy(cs.KIFD)}
	defer st.Wipe()
	s, err := st.Finish(kenc, kmac, answer)
	if err != nil {
		return AuthResult{}, err
	}
	defer s.Wipe()
	cs.opened()
	cs.Enc, cs.MAC = bytes.Clone(s.Enc.Reveal()), bytes.Clone(s.MAC.Reveal())
	cs.SSC, cs.Pending = bytes.Clone(s.SSC), false
	return AuthResult{}, nil
}

// isoSession is the secure-messaging state of an open ISO/IEC 7816-4
// session; the caller wipes it.
func (cs *cardSession) isoSession() *cardauth.ISOSession {
	return &cardauth.ISOSession{Alg: cs.ISOCipher, Enc: secret.Copy(cs.Enc), MAC: secret.Copy(cs.MAC),
		SSC: append([]byte(nil), cs.SSC...), Pending: cs.Pending}
}

// ProtectAPDU protects a plain ISO/IEC 7816-4 command APDU for the
// session's card (ICAO 9303-11 §9.8): it returns the command APDU in
// secure messaging. The role's iso_commands decide first, by the
// command's INS (policies.Grant.ISOCommand: denied, rule card-command),
// before the session is opened.
func (a *Authority) ProtectAPDU(ctx context.Context, p identity.Principal, g policies.Grant, token string, apdu []byte) ([]byte, string, error) {
	cmd, err := isoCommand(g, apdu)
	if err != nil {
		return nil, "", err
	}
	cs, err := a.openSession(ctx, p, token, stepOpen)
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	out, err := protectAPDU(cs, cmd)
	if err != nil {
		return nil, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

// isoCommand parses a plain command APDU and applies the role's
// iso_commands to its INS.
func isoCommand(g policies.Grant, apdu []byte) (cardauth.ISOCommand, error) {
	cmd, err := cardauth.ParseISOCommand(apdu)
	if err != nil {
		return cmd, err
	}
	return cmd, g.ISOCommand(cmd.INS)
}

// protectAPDU is ProtectAPDU on state in memory; cs changes only when the
// command is protected.
func protectAPDU(cs *cardSession, cmd cardauth.ISOCommand) ([]byte, error) {
	if err := cs.at(stepOpen); err != nil {
		return nil, err
	}
	if cs.Protocol != ProtocolISO7816 {
		return nil, errkind.Errorf(errkind.InvalidInput, "apdu: a %s session protects commands by code, header and data, not APDUs", cs.Protocol)
	}
	s := cs.isoSession()
	defer s.Wipe()
	out, err := s.ProtectCommand(cmd)
	if err != nil {
		return nil, err
	}
	cs.SSC, cs.Pending = s.SSC, s.Pending
	return out, nil
}

// CheckAPDU verifies and opens the card's protected response APDU to the
// last protected command (ICAO 9303-11 §9.8): DO'8E' first, in constant
// time, then DO'87'/'85' is decrypted and DO'99' compared with the plain
// status. It returns the data and the status word the card authenticated.
// An answer without secure messaging (the card's 6987 or 6988: it has left
// secure messaging) is check-failed, as is a MAC that does not verify; the
// card has then ended the session.
func (a *Authority) CheckAPDU(ctx context.Context, p identity.Principal, _ policies.Grant, token string, rapdu []byte) ([]byte, uint16, string, error) {
	cs, err := a.openSession(ctx, p, token, stepOpen)
	if err != nil {
		return nil, 0, "", err
	}
	defer cs.wipe()
	r, err := checkAPDU(cs, rapdu)
	if err != nil {
		return nil, 0, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return r.Data, r.SW, tok, err
}

// checkAPDU is CheckAPDU on state in memory; cs changes only when the
// response verifies.
func checkAPDU(cs *cardSession, rapdu []byte) (cardauth.ISOResponse, error) {
	if err := cs.at(stepOpen); err != nil {
		return cardauth.ISOResponse{}, err
	}
	if cs.Protocol != ProtocolISO7816 {
		return cardauth.ISOResponse{}, errkind.Errorf(errkind.InvalidInput, "apdu: a %s session checks responses by status, data and mode, not APDUs", cs.Protocol)
	}
	s := cs.isoSession()
	defer s.Wipe()
	r, err := s.CheckResponse(rapdu)
	if err != nil {
		return cardauth.ISOResponse{}, err
	}
	cs.SSC, cs.Pending = s.SSC, s.Pending
	return r, nil
}
