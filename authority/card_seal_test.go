package authority_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// countingSealer is the token as a Sealer and Keystreamer, counting what
// it is asked for.
type countingSealer struct {
	*pkcs11.Store
	seals, opens, streams atomic.Int64
}

func (c *countingSealer) SealData(ctx context.Context, k keys.Key, plain, aad []byte) ([]byte, error) {
	c.seals.Add(1)
	return c.Store.SealData(ctx, k, plain, aad)
}

func (c *countingSealer) OpenData(ctx context.Context, k keys.Key, sealed, aad []byte) ([]byte, error) {
	c.opens.Add(1)
	return c.Store.OpenData(ctx, k, sealed, aad)
}

func (c *countingSealer) GCMKeystream(ctx context.Context, k keys.Key, nonce []byte, n int) (secret.Bytes, error) {
	c.streams.Add(1)
	return c.Store.GCMKeystream(ctx, k, nonce, n)
}

// hsmOnly is a Sealer without GCMKeystream: it seals every token in the
// HSM, as samd did before subkeys.
type hsmOnly struct{ s *pkcs11.Store }

func (h hsmOnly) SealData(ctx context.Context, k keys.Key, plain, aad []byte) ([]byte, error) {
	return h.s.SealData(ctx, k, plain, aad)
}

func (h hsmOnly) OpenData(ctx context.Context, k keys.Key, sealed, aad []byte) ([]byte, error) {
	return h.s.OpenData(ctx, k, sealed, aad)
}

// TestSessionTokensSealedInSoftware: a whole EV2 session through the
// unary calls makes no AES-GCM call to the HSM per step — one subkey
// derivation for the epoch, then every token is sealed and opened in
// software — and its tokens are what card_seal.go says: AES-256-GCM under
// subkey(v, e) = AES_K("SSK1" ‖ e ‖ 00000002) ‖ AES_K(… ‖ 00000003), which
// the test computes with crypto/aes from the seal key's value alone (an
// independent reading of NIST SP 800-38D §7.1) and opens with
// crypto/cipher. Another replica (a fresh Authority on the same seal key)
// continues the session; a token opens in its epoch and the next, never
// later; one for another caller, altered, of an unconfigured version or a
// far epoch is refused; a token sealed in the HSM still opens.
func TestSessionTokensSealedInSoftware(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sealValue := bytes.Repeat([]byte{0x5A}, 32)
	tokenKey(t, f.keys.Store, "session/test/seal-known", keys.RoleSessionSeal, keys.AES256, sealValue)
	sealRef, _ := keys.NewRef("session/test/seal-known", 1)
	const epoch = 10 * time.Minute
	now := time.Date(2026, 12, 1, 12, 9, 30, 0, time.UTC) // epoch 12:00-12:10; tokens live until 12:10:30
	clock := func() time.Time { return now }
	sealer := &countingSealer{Store: f.keys.Store}
	replica := func(s authority.Sealer) *authority.Authority {
		return authority.New(authority.Config{Keys: f.keys, State: f.state, Policy: f.a.Policy(), Now: clock,
			Sessions: authority.Sessions{Sealer: s, SealKey: sealRef, TTL: time.Minute, Epoch: epoch}})
	}
	a := replica(sealer)
	master, _ := keys.NewRef("an10922/test/example-aes128", 1)
	g := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{master}})
	card := &cardsim.EV2{Keys: [][]byte{unhex(an10922Key)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{1: {Data: []byte("samd-mac-mode-file-0123456789..."), Mode: 1}}}
	_, ch := card.Transceive(0x71, []byte{0, 0})
	ans, tok, err := a.BeginAuth(ctx, terminal1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2, Key: authority.CardKey{Master: master, Input: nxpAbu(t)}, Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	_, resp := card.Transceive(0xAF, ans)
	res, err := a.FinishAuth(ctx, terminal1, g, tok, resp)
	if err != nil {
		t.Fatal(err)
	}
	tok = res.Session
	for range 2 {
		out, next, err := a.ProtectCommand(ctx, terminal1, g, tok, 0xAD, []byte{1, 0, 0, 0, 16, 0, 0}, nil, authority.CommMAC)
		if err != nil {
			t.Fatal(err)
		}
		st, resp := card.Transceive(0xAD, out)
		if _, tok, err = a.CheckResponse(ctx, terminal1, g, next, st, resp, authority.CommMAC, 0); err != nil {
			t.Fatal(err)
		}
	}
	if s, o, k := sealer.seals.Load(), sealer.opens.Load(), sealer.streams.Load(); s != 0 || o != 0 || k != 1 {
		t.Fatalf("a 6-call session asked the HSM for %d seals, %d opens and %d subkeys; want 0, 0 and 1", s, o, k)
	}

	// The token, opened with crypto/aes and crypto/cipher alone.
	if !strings.HasPrefix(tok, "2.") {
		t.Fatalf("token %.10s… lacks the 2. prefix", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[2:])
	if err != nil {
		t.Fatal(err)
	}
	e := uint64(now.UnixNano()) / uint64(epoch)
	if raw[0] != 1 || binary.BigEndian.Uint64(raw[1:9]) != e {
		t.Fatalf("token header %X, want version 1 and epoch %d", raw[:9], e)
	}
	b, _ := aes.NewCipher(sealValue)
	sub := make([]byte, 32)
	for i, ctr := range []uint32{2, 3} {
		blk := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte("SSK1"), e), ctr)
		b.Encrypt(sub[16*i:], blk)
	}
	sb, _ := aes.NewCipher(sub)
	gcm, _ := cipher.NewGCM(sb)
	plain, err := gcm.Open(nil, raw[9:21], raw[21:], append(append([]byte("samd/card-session/v2|"), raw[:9]...), "|"+terminal1.String()...))
	if err != nil {
		t.Fatalf("the token does not open under the subkey computed from the seal key: %v", err)
	}
	var cs map[string]any
	if err := json.Unmarshal(plain, &cs); err != nil || cs["c"] != terminal1.String() || cs["s"] != "open" || cs["Kx"] != nil {
		t.Fatalf("the token's state: %v %v", err, cs)
	}

	// Another replica continues the session; so does this one an epoch
	// later (the token's TTL permitting), and nothing opens two epochs on.
	other := replica(&countingSealer{Store: f.keys.Store})
	if _, _, err := other.ProtectCommand(ctx, terminal1, g, tok, 0xAD, []byte{1, 0, 0, 0, 16, 0, 0}, nil, authority.CommMAC); err != nil {
		t.Fatalf("another replica: %v", err)
	}
	tamper := func(edit func(raw []byte)) string {
		r := bytes.Clone(raw)
		edit(r)
		return "2." + base64.RawURLEncoding.EncodeToString(r)
	}
	for _, c := range []struct {
		name string
		tok  string
		as   bool      // as another caller
		at   time.Time // the clock, if not now
		want errkind.Kind
	}{
		{"ok/the-next-epoch", tok, false, now.Add(40 * time.Second), 0},
		{"fail/another-caller", tok, true, now, errkind.CheckFailed},
		{"fail/altered", tamper(func(r []byte) { r[len(r)-1] ^= 1 }), false, now, errkind.CheckFailed},
		{"fail/unconfigured-version", tamper(func(r []byte) { r[0] = 2 }), false, now, errkind.InvalidInput},
		{"fail/far-epoch", tamper(func(r []byte) { binary.BigEndian.PutUint64(r[1:9], e+2) }), false, now, errkind.InvalidInput},
		{"fail/two-epochs-on", tok, false, now.Add(epoch + 40*time.Second), errkind.Denied},
		{"fail/garbage", "2.AAAA", false, now, errkind.InvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := now
			defer func() { now = saved }()
			now = c.at
			p := terminal1
			if c.as {
				p = terminal2
			}
			_, _, err := replica(sealer).ProtectCommand(ctx, p, g, c.tok, 0xAD, []byte{1, 0, 0, 0, 16, 0, 0}, nil, authority.CommMAC)
			if c.want == 0 && err != nil || c.want != 0 && errkind.Of(err) != c.want {
				t.Fatalf("%v, want %v", err, c.want)
			}
		})
	}

	// A token sealed in the HSM (an older samd, or a Sealer without
	// GCMKeystream) opens on a samd that seals in software.
	old := replica(hsmOnly{f.keys.Store})
	_, ch = card.Transceive(0x71, []byte{0, 0})
	_, otok, err := old.BeginAuth(ctx, terminal1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2, Key: authority.CardKey{Master: master, Input: nxpAbu(t)}, Challenge: ch})
	if err != nil || strings.HasPrefix(otok, "2.") {
		t.Fatalf("an HSM-sealed token: %v %.10s", err, otok)
	}
	if _, err := a.FinishAuth(ctx, terminal1, g, otok, make([]byte, 32)); errkind.Of(err) != errkind.CheckFailed || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("an HSM-sealed token at a software-sealing samd: %v, want the card's answer checked (and failing)", err)
	}
}
