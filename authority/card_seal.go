package authority

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// Session tokens sealed in software under epoch subkeys.
//
// Sealing every token in the HSM cost an EV2 session twelve AES-GCM calls
// to the token (README "Performance"). A token is instead sealed in
// samd's memory with AES-256-GCM under a subkey of the session-seal key:
//
//	subkey(v, e) = the first 32 bytes of the AES-GCM keystream, in the
//	               HSM, of the nonce "SSK1" ‖ e (8 bytes, big-endian)
//	               under version v of the session-seal key
//	               (keys/pkcs11.Store.GCMKeystream: AES_K(N ‖ 2) ‖ AES_K(N ‖ 3))
//
// where e is the epoch, the number of whole Sessions.Epoch periods since
// the Unix epoch. The keystream is a pseudo-random function of the nonce
// under the seal key, so every replica of a cluster that shares the seal
// key computes the same subkey for the same epoch, without sharing it,
// and knowing one epoch's subkey tells nothing of another's or of the
// seal key. A subkey is derived once per epoch and seal key version, on
// first use, and dropped (with its epoch) when the epoch after next
// begins; a token opens in its own epoch and the next, so one whose TTL
// (at most one epoch) ends after a rotation still opens.
//
// A token is "2." ‖ base64url(v ‖ e (8 bytes) ‖ nonce (12) ‖ ciphertext ‖
// tag (16)), sealed under subkey(v, e) with a fresh random nonce and the
// associated data "samd/card-session/v2|" ‖ v ‖ e ‖ caller. Only the
// configured seal key version and its previous versions open tokens,
// whatever a token names. Tokens without the "2." prefix are the HSM
// sealed tokens of samd before this scheme (or of a Sealer without
// GCMKeystream): they still open through the HSM, for a cluster upgraded
// one replica at a time.

// Keystreamer is a Sealer that can derive subkeys in the HSM (optional:
// a Sealer without it seals every token in the HSM).
type Keystreamer interface {
	// GCMKeystream returns n bytes of the AES-GCM keystream of nonce
	// under the session-seal key k (keys/pkcs11.Store.GCMKeystream).
	GCMKeystream(ctx context.Context, k keys.Key, nonce []byte, n int) (secret.Bytes, error)
}

const (
	tokenV2      = "2."
	sessionAADv2 = "samd/card-session/v2|"
	// subkeyPrefix puts the subkeys' GCM nonces in a space of their own,
	// apart from the random nonces of tokens sealed in the HSM.
	subkeyPrefix = "SSK1"
	// DefaultSealEpoch is how long one subkey seals tokens when
	// Sessions.Epoch is not set (and TTL is shorter).
	DefaultSealEpoch = 10 * time.Minute
	tokenHeader      = 1 + 8 // version, epoch
	gcmNonceSize     = 12
)

// subkeyID names one subkey: a seal key version and an epoch.
type subkeyID struct {
	version uint8
	epoch   uint64
}

// subkeys holds the AEADs of the subkeys in use. The subkey's bytes are
// wiped as soon as its AEAD is made; its AES key schedule lives inside
// crypto/aes, which cannot wipe it, until the epoch is dropped and the
// garbage collector reclaims it (README "Threat model").
type subkeys struct {
	mu sync.Mutex
	m  map[subkeyID]cipher.AEAD
}

// epoch is the epoch of t.
func (a *Authority) epoch(t time.Time) uint64 {
	return uint64(t.UnixNano()) / uint64(a.sessions.Epoch)
}

// subkey returns the AEAD of subkey(id), deriving it in the HSM the first
// time. Epochs before now's previous one are dropped then.
func (a *Authority) subkey(ctx context.Context, ks Keystreamer, id subkeyID) (cipher.AEAD, error) {
	a.subkeys.mu.Lock()
	aead, ok := a.subkeys.m[id]
	a.subkeys.mu.Unlock()
	if ok {
		return aead, nil
	}
	ref := a.sessions.SealKey
	ref.Version = id.version
	k, err := a.keys.Key(ref)
	if errkind.Of(err) == errkind.NotFound {
		// No seal key of that version: garbage, not a missing key (and
		// the seal key's name stays out of the answer).
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	if err != nil {
		return nil, err
	}
	nonce := binary.BigEndian.AppendUint64([]byte(subkeyPrefix), id.epoch)
	sub, err := ks.GCMKeystream(ctx, k, nonce, 32)
	if err != nil {
		return nil, err
	}
	defer sub.Wipe()
	b, err := aes.NewCipher(sub.Reveal())
	if err != nil {
		return nil, err
	}
	if aead, err = cipher.NewGCM(b); err != nil {
		return nil, err
	}
	cur := a.epoch(a.now())
	a.subkeys.mu.Lock()
	defer a.subkeys.mu.Unlock()
	if a.subkeys.m == nil {
		a.subkeys.m = map[subkeyID]cipher.AEAD{}
	}
	for old := range a.subkeys.m {
		if old.epoch+1 < cur {
			delete(a.subkeys.m, old)
		}
	}
	a.subkeys.m[id] = aead
	return aead, nil
}

// sealSoft seals plain for caller under the current epoch's subkey of k.
func (a *Authority) sealSoft(ctx context.Context, ks Keystreamer, k keys.Key, plain []byte, caller string) (string, error) {
	id := subkeyID{version: k.Ref.Version, epoch: a.epoch(a.now())}
	aead, err := a.subkey(ctx, ks, id)
	if err != nil {
		return "", err
	}
	raw := make([]byte, tokenHeader+gcmNonceSize, tokenHeader+gcmNonceSize+len(plain)+aead.Overhead())
	raw[0] = id.version
	binary.BigEndian.PutUint64(raw[1:tokenHeader], id.epoch)
	if _, err := rand.Read(raw[tokenHeader:]); err != nil {
		return "", err
	}
	raw = aead.Seal(raw, raw[tokenHeader:], plain, sessionAADFor(raw[:tokenHeader], caller))
	return tokenV2 + base64.RawURLEncoding.EncodeToString(raw), nil
}

// openSoft opens a "2." token for caller: its seal key version must be
// configured, its epoch this one or the one before (or, for a replica
// whose clock runs behind, the next), and it must authenticate under
// that subkey. The caller wipes what it returns.
func (a *Authority) openSoft(ctx context.Context, ks Keystreamer, token, caller string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, tokenV2))
	if err != nil || len(raw) < tokenHeader+gcmNonceSize+16 {
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	id := subkeyID{version: raw[0], epoch: binary.BigEndian.Uint64(raw[1:tokenHeader])}
	if id.version != a.sessions.SealKey.Version && !slices.Contains(a.sessions.Previous, id.version) {
		// A version the configuration does not accept: whoever imported
		// a key of that name and version must not forge tokens with it.
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	switch cur := a.epoch(a.now()); {
	case id.epoch+1 < cur:
		return nil, errkind.Errorf(errkind.Denied, "session: token expired")
	case id.epoch > cur+1:
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	aead, err := a.subkey(ctx, ks, id)
	if err != nil {
		return nil, err
	}
	nonce, sealed := raw[tokenHeader:tokenHeader+gcmNonceSize], raw[tokenHeader+gcmNonceSize:]
	plain, err := aead.Open(nil, nonce, sealed, sessionAADFor(raw[:tokenHeader], caller))
	if err != nil {
		return nil, errkind.Errorf(errkind.CheckFailed, "session: token does not authenticate for this caller")
	}
	return plain, nil
}

// sessionAADFor is a "2." token's associated data: its header and the
// caller it was sealed for.
func sessionAADFor(header []byte, caller string) []byte {
	aad := make([]byte, 0, len(sessionAADv2)+len(header)+1+len(caller))
	aad = append(aad, sessionAADv2...)
	aad = append(aad, header...)
	aad = append(aad, '|')
	return append(aad, caller...)
}
