package authority

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// Sealer seals and opens card session state under a key in the HSM.
type Sealer interface {
	SealData(ctx context.Context, k keys.Key, plaintext, aad []byte) ([]byte, error)
	OpenData(ctx context.Context, k keys.Key, sealed, aad []byte) ([]byte, error)
}

// Sessions configures sealed card sessions.
type Sessions struct {
	Sealer  Sealer
	SealKey keys.Ref // a session-seal key: every token is sealed with it
	// Previous are older versions of SealKey whose tokens still open
	// while a rotation runs (card_sessions.previous_versions): a token
	// opens under SealKey's version or one of these, never under a
	// version it names itself.
	Previous []uint8
	TTL      time.Duration // how long a session token is good for
	// Epoch is how long one subkey of the seal key seals tokens, when the
	// Sealer is a Keystreamer (card_seal.go); at least TTL. 0 means
	// DefaultSealEpoch.
	Epoch time.Duration
}

// Protocol is a card session's protocol; its name is the one key entries
// (`protocol:`) and a role's card_types use.
type Protocol string

// Protocols.
const (
	ProtocolEV2     Protocol = policies.ProtocolEV2
	ProtocolEV1ISO  Protocol = policies.ProtocolEV1ISO
	ProtocolEV1AES  Protocol = policies.ProtocolEV1AES
	ProtocolULC     Protocol = policies.ProtocolULC
	ProtocolLegacy  Protocol = policies.ProtocolLegacy
	ProtocolISO7816 Protocol = policies.ProtocolISO7816
)

// CardKey names a card key: a master key and the AN10922 input.
type CardKey struct {
	Master keys.Ref
	Input  derive.Input
}

// cardSession is the sealed state of a card session. It travels to the
// terminal and back sealed (AES-GCM in the HSM) and bound to the caller,
// so that any replica can continue it and nobody can read or change it.
type cardSession struct {
	V         int      `json:"v"`
	Protocol  Protocol `json:"p"`
	Step      string   `json:"s"` // stepAuth or stepOpen
	Caller    string   `json:"c"`
	Expires   int64    `json:"e"` // Unix seconds
	Master    string   `json:"m"`
	Input     []byte   `json:"i"`
	KeyNo     byte     `json:"k"`
	SingleDES bool     `json:"d,omitempty"`
	RndA      []byte   `json:"a,omitempty"`
	RndB      []byte   `json:"b,omitempty"`
	Sent      []byte   `json:"x,omitempty"` // EV1/ULC: the PCD's answer, for the card's IV
	TI        []byte   `json:"t,omitempty"`
	Ctr       uint16   `json:"n,omitempty"`
	Enc       []byte   `json:"ek,omitempty"`
	MAC       []byte   `json:"mk,omitempty"`
	Key       []byte   `json:"sk,omitempty"` // EV1 session key
	IV        []byte   `json:"iv,omitempty"` // EV1 CMAC chain
	Pending   bool     `json:"q,omitempty"`  // EV2, ISO 7816-4: a command was protected, its response not yet checked
	// CarriesKeys: the authenticating key's entry permits card.changekey,
	// so that a ChangeKey may carry a key under this session.
	CarriesKeys bool `json:"ck,omitempty"`
	// ISO/IEC 7816-4: the key set's cipher and challenge length; between
	// the two authentication steps RndA is samd's RND.IFD, RndB the card's
	// RND.ICC and KIFD samd's K.IFD; then Enc and MAC are KS_enc and
	// KS_mac, and SSC the send sequence counter.
	ISOCipher keys.Algorithm `json:"ia,omitempty"`
	ISOChLen  int            `json:"il,omitempty"`
	KIFD      []byte         `json:"ki,omitempty"`
	SSC       []byte         `json:"sc,omitempty"`

	// Kx is the card key (the AN10922 diversified key; ISO/IEC 7816-4:
	// the key seed) between the two authentication steps of a session
	// held in memory (CardStream), which then needs no second
	// diversification in the HSM. It is never sealed into a token (json
	// "-"), and is wiped when the authentication finishes.
	Kx []byte `json:"-"`
}

// wipe clears every secret the session holds.
func (cs *cardSession) wipe() {
	for _, b := range cs.secrets() {
		clear(b)
	}
}

// secrets are the buffers of cs that hold key material or the randoms
// of an authentication.
func (cs *cardSession) secrets() [][]byte {
	return [][]byte{cs.RndA, cs.RndB, cs.Enc, cs.MAC, cs.Key, cs.KIFD, cs.Kx}
}

const sessionAAD = "samd/card-session/v1|"

// The steps of a card session, as its token records them.
const (
	stepAuth = "auth" // awaiting the card's answer to the PCD's
	stepOpen = "open" // authenticated: secure messaging
)

// at refuses a session that is not at step.
func (cs *cardSession) at(step string) error {
	if cs.Step != step {
		return errkind.Errorf(errkind.InvalidInput, "session: at step %q, not %q (out of order)", cs.Step, step)
	}
	return nil
}

func (a *Authority) sealSession(ctx context.Context, p identity.Principal, cs *cardSession) (string, error) {
	if a.sessions.Sealer == nil {
		return "", errkind.Errorf(errkind.Internal, "card sessions are not configured")
	}
	k, err := a.keys.Key(a.sessions.SealKey)
	if err != nil {
		return "", err
	}
	cs.V, cs.Caller = 1, p.String()
	cs.Expires = a.now().Add(a.sessions.TTL).Unix()
	plain, err := json.Marshal(cs)
	if err != nil {
		return "", err
	}
	defer clear(plain)
	if ks, ok := a.sessions.Sealer.(Keystreamer); ok {
		return a.sealSoft(ctx, ks, k, plain, cs.Caller)
	}
	sealed, err := a.sessions.Sealer.SealData(ctx, k, plain, []byte(sessionAAD+cs.Caller))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte{k.Ref.Version}, sealed...)), nil
}

// openSession opens a token for the caller; a token sealed for another
// caller, altered, expired, or at another step is refused.
func (a *Authority) openSession(ctx context.Context, p identity.Principal, token, step string) (*cardSession, error) {
	if a.sessions.Sealer == nil {
		return nil, errkind.Errorf(errkind.Internal, "card sessions are not configured")
	}
	var plain []byte
	var err error
	if ks, ok := a.sessions.Sealer.(Keystreamer); ok && strings.HasPrefix(token, tokenV2) {
		plain, err = a.openSoft(ctx, ks, token, p.String())
	} else {
		plain, err = a.openHSM(ctx, token, p.String())
	}
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var cs cardSession
	if err := json.Unmarshal(plain, &cs); err != nil || cs.V != 1 || cs.Caller != p.String() {
		cs.wipe()
		return nil, errkind.Errorf(errkind.CheckFailed, "session: token does not authenticate for this caller")
	}
	if a.now().Unix() >= cs.Expires {
		cs.wipe()
		return nil, errkind.Errorf(errkind.Denied, "session: token expired")
	}
	if cs.Step != step {
		cs.wipe()
		return nil, errkind.Errorf(errkind.InvalidInput, "session: token is at step %q, not %q (out of order)", cs.Step, step)
	}
	return &cs, nil
}

// openHSM opens a token sealed in the HSM (without the "2." prefix of
// tokens sealed under a subkey). The caller wipes what it returns.
func (a *Authority) openHSM(ctx context.Context, token, caller string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 2 {
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	ref := a.sessions.SealKey
	if v := raw[0]; v != ref.Version && !slices.Contains(a.sessions.Previous, v) {
		// A version the configuration does not accept: whoever imported
		// a key of that name and version (and so knows it) must not
		// forge tokens with it. Garbage, as far as the caller learns.
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	ref.Version = raw[0] // tokens sealed before a rotation still open
	k, err := a.keys.Key(ref)
	if errkind.Of(err) == errkind.NotFound {
		// No seal key of that version: garbage, not a missing key (and
		// the seal key's name stays out of the answer).
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	if err != nil {
		return nil, err
	}
	plain, err := a.sessions.Sealer.OpenData(ctx, k, raw[1:], []byte(sessionAAD+caller))
	if err != nil {
		if errkind.Of(err) == errkind.CheckFailed {
			return nil, errkind.Errorf(errkind.CheckFailed, "session: token does not authenticate for this caller")
		}
		return nil, err
	}
	return plain, nil
}

// cardKey diversifies a card key; the caller wipes it.
func (a *Authority) cardKey(ctx context.Context, ref keys.Ref, m []byte) (keys.Key, secret.Bytes, error) {
	in, err := derive.RawInput(m)
	if err != nil {
		return keys.Key{}, secret.Bytes{}, err
	}
	return a.diversify(ctx, ref, in)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return b
}
