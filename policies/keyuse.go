package policies

import (
	"fmt"
	"slices"
	"strings"

	"github.com/samd-io/samd/keys"
)

// Card protocols, as key entries name them (`protocol:`) and as a role's
// card_types lists the card sessions it may run. A key entry names the one
// protocol its key serves: a key used in two protocols lets each become an
// oracle for the other (README "Card sessions", issue 18).
const (
	ProtocolEV2     = "desfire-ev2"     // DESFire EV2/EV3, NTAG 424 DNA: AuthenticateEV2First/NonFirst
	ProtocolEV1ISO  = "desfire-ev1-iso" // DESFire EV1 AuthenticateISO (0x1A)
	ProtocolEV1AES  = "desfire-ev1-aes" // DESFire EV1 AuthenticateAES (0xAA)
	ProtocolLegacy  = "desfire-legacy"  // DESFire D40 Authenticate (0x0A)
	ProtocolULC     = "ultralight-c"    // MIFARE Ultralight C (0x1A)
	ProtocolISO7816 = "iso7816"         // ISO/IEC 7816-4 mutual authentication and secure messaging
	ProtocolSUN     = "sun"             // NTAG 424 DNA SUN messages (SDMMetaRead, SDMFileRead keys)
	ProtocolMAC     = "mac"             // object MACs of seal profiles that diversify their key
)

// CardSessionProtocols are the protocols of card sessions (BeginAuth): the
// values of a role's card_types.
var CardSessionProtocols = []string{ProtocolEV2, ProtocolEV1ISO, ProtocolEV1AES, ProtocolLegacy, ProtocolULC, ProtocolISO7816}

// KeyProtocols are the values of a key entry's protocol.
var KeyProtocols = append(slices.Clone(CardSessionProtocols), ProtocolSUN, ProtocolMAC)

// optInProtocols are card sessions a role runs only when its card_types
// names them, even where it lists no card_types at all: a D40 session is
// protected by a CRC16 alone (its FULL mode answers are a decryption
// oracle under the session key for whoever can submit them), and an
// authenticated Ultralight C takes plain writes to its key pages.
var optInProtocols = []string{ProtocolLegacy, ProtocolULC}

// ISOKeySet is a key entry's ISO/IEC 7816-4 configuration: the card's
// K_enc and K_mac are KDF(K_seed, 1) and KDF(K_seed, 2) of ICAO 9303-11
// §9.7.1 in Cipher, K_seed the AN10922 key of the entry's master for the
// card, and ChallengeLen is the length of the card's GET CHALLENGE answer
// (RND.ICC) and of samd's RND.IFD.
type ISOKeySet struct {
	Cipher       keys.Algorithm // keys.TDEA2, AES128, AES192 or AES256
	ChallengeLen int            // 8 (2TDEA); 8 or 16 (AES)
}

// KeyUse is what a key's entry says beyond the operations it lists: the
// one protocol the key serves, and whether other keys may travel under it.
type KeyUse struct {
	// Protocol is the entry's protocol; "" serves none.
	Protocol string
	// ISO is the ISO/IEC 7816-4 key set (Protocol iso7816 only).
	ISO *ISOKeySet
	// ChangeKey says the entry permits card.changekey: a ChangeKey
	// cryptogram may carry a key under a session this key authenticated.
	ChangeKey bool
}

// KeyUse returns what the grant's policy says of a key the request named
// (the zero KeyUse for one it did not name).
func (g Grant) KeyUse(k keys.Ref) KeyUse { return g.keyUses[k] }

// ServeProtocol returns the key's use if its entry names protocol, and
// otherwise a *Denial by rule key-protocol: samd never uses a key in a
// protocol its entry does not name, so that no protocol becomes an oracle
// for another.
func (g Grant) ServeProtocol(k keys.Ref, protocol string) (KeyUse, error) {
	u := g.keyUses[k]
	if u.Protocol != protocol {
		serves := u.Protocol
		if serves == "" {
			serves = "no card protocol (its entry names none)"
		}
		return KeyUse{}, deny("key-protocol", "key %s serves %s, not %s", k, serves, protocol)
	}
	return u, nil
}

// cardTypeAllowed says whether a role with these card_types may run a
// card session of the protocol: a listed one, or, with no list, any but
// the opt-in ones.
func cardTypeAllowed(types map[string]bool, protocol string) bool {
	if len(types) > 0 {
		return types[protocol]
	}
	return !slices.Contains(optInProtocols, protocol)
}

// parseISOKeySet reads a key entry's iso7816 section.
func parseISOKeySet(y *isoYAML) (*ISOKeySet, error) {
	alg, err := keys.ParseAlgorithm(y.Cipher)
	if err != nil || alg != keys.TDEA2 && !alg.AES() {
		return nil, fmt.Errorf("cipher: want 2TDEA, AES-128, AES-192 or AES-256")
	}
	switch {
	case alg == keys.TDEA2 && y.ChallengeLength == 8:
	case alg.AES() && (y.ChallengeLength == 8 || y.ChallengeLength == 16):
	default:
		return nil, fmt.Errorf("challenge_length: 8 for 2TDEA, 8 or 16 for AES")
	}
	return &ISOKeySet{Cipher: alg, ChallengeLen: y.ChallengeLength}, nil
}

// isoYAML is a key entry's iso7816 section.
type isoYAML struct {
	Cipher          string `yaml:"cipher"`
	ChallengeLength int    `yaml:"challenge_length"`
}

// removedOperation explains an operation that policies may no longer
// name.
func removedOperation(o string) (string, bool) {
	if o == "card.challenge" {
		return "card.challenge is gone: ExternalAuthenticate and InternalAuthenticate encrypted a caller's challenge under a card key (an encryption oracle); ISO/IEC 7816-4 cards authenticate through card.auth with protocol iso7816", true
	}
	return "", false
}

// protocolList is the protocols for messages, "a, b or c".
func protocolList(ps []string) string {
	return strings.Join(ps[:len(ps)-1], ", ") + " or " + ps[len(ps)-1]
}
