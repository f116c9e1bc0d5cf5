package authority_test

import (
	"context"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
)

// TestKeyServesOneProtocol: a key whose entry names one protocol is
// refused in every other (denied, rule key-protocol), before samd derives
// anything: no use counted, no CMAC in the HSM. The keys are the example
// policy's: the same AN10922 master under one name per protocol.
//
// The example entries list only their protocol's operations, so the
// policy refuses most of these already (rule key-entry); here they list
// the others' operations too, and the protocol alone refuses.
func TestKeyServesOneProtocol(t *testing.T) {
	f := newFixture(t)
	f.a.SetPolicy(examplesWith(t, map[string]string{
		"an10922/test/example-aes128":     "mac.seal, sun.verify",
		"an10922/test/example-aes128-sun": "card.auth",
		"an10922/test/example-aes192":     "card.auth",
		"mac/dev/legacy-master":           "card.auth",
	}))
	ctx := context.Background()
	ref := func(n string) keys.Ref { r, _ := keys.NewRef(n, 1); return r }
	for _, c := range []struct {
		name     string
		protocol authority.Protocol
		key      string
	}{
		{"fail/ev2-key-in-iso7816", authority.ProtocolISO7816, "an10922/test/example-aes128"},
		{"fail/iso7816-key-in-ev2", authority.ProtocolEV2, "an10922/test/example-aes128-iso7816"},
		{"fail/ev2-key-in-ev1-aes", authority.ProtocolEV1AES, "an10922/test/example-aes128"},
		{"fail/ev1-aes-key-in-ev2", authority.ProtocolEV2, "an10922/test/example-aes128-ev1"},
		{"fail/legacy-key-in-ev1-iso", authority.ProtocolEV1ISO, "an10922/test/example-2tdea-legacy"},
		{"fail/ultralight-c-key-in-legacy", authority.ProtocolLegacy, "an10922/test/example-2tdea"},
		{"fail/legacy-key-in-ultralight-c", authority.ProtocolULC, "an10922/test/example-2tdea-legacy"},
		{"fail/sun-key-in-ev2", authority.ProtocolEV2, "an10922/test/example-aes128-sun"},
		{"fail/mac-key-in-ev2", authority.ProtocolEV2, "mac/dev/legacy-master"},
		{"fail/no-protocol-in-ev2", authority.ProtocolEV2, "an10922/test/example-aes192"},
	} {
		t.Run(c.name, func(t *testing.T) {
			who := perso1
			if c.protocol == authority.ProtocolEV2 {
				who = terminal1 // whose keys include mac/dev/*
			}
			g, err := f.a.Decide(who, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref(c.key)}, CardType: string(c.protocol)})
			if err == nil {
				cmacs := f.keys.cmacs.Load()
				_, _, err = f.a.BeginAuth(ctx, who, g, authority.BeginAuthRequest{Protocol: c.protocol, Key: authority.CardKey{Master: ref(c.key), Input: nxpAbu(t)}, Challenge: make([]byte, 16)})
				if f.keys.cmacs.Load() != cmacs {
					t.Fatal("the refused key reached the HSM")
				}
			}
			wantDenial(t, err, "key-protocol")
		})
	}
	t.Run("fail/ev2-key-in-seal-profile", func(t *testing.T) {
		g := f.decide(t, terminal1, policies.OpMACSeal, policies.Request{Keys: []keys.Ref{ref("an10922/test/example-aes128")}})
		_, _, err := f.a.SealObjects(ctx, terminal1, g, "ev2-key", []mac.Object{{CardID: unhex("04782E21801D80"), Owner: "dev-operator", Data: []byte("x")}})
		wantDenial(t, err, "key-protocol")
	})
	t.Run("fail/ev2-key-in-sun-profile", func(t *testing.T) {
		g := f.decide(t, terminal1, policies.OpSUNVerify, policies.Request{Keys: []keys.Ref{ref("an10922/test/example-aes128")}})
		out, err := f.a.VerifySUNBatch(ctx, terminal1, g, []authority.SUNItem{{Profile: "ev2-key", Message: authority.SUNMessage{PICCData: make([]byte, 16), SDMMAC: make([]byte, 8)}}})
		if err != nil {
			t.Fatal(err)
		}
		wantDenial(t, out[0].Err, "key-protocol")
	})
}

// TestCardTypes: card_types decides which card sessions a role runs, from
// the protocol the request names; D40 and Ultralight C run only where
// listed (the terminal's list names neither).
func TestCardTypes(t *testing.T) {
	f := newFixture(t)
	ref := func(n string) keys.Ref { r, _ := keys.NewRef(n, 1); return r }
	for _, c := range []struct {
		name     string
		p        identity.Principal
		protocol authority.Protocol
		key      string
		rule     string
	}{
		{"ok/terminal-ev2", terminal1, authority.ProtocolEV2, "an10922/test/example-aes128", ""},
		{"ok/terminal-iso7816", terminal1, authority.ProtocolISO7816, "an10922/test/example-aes128-iso7816", ""},
		{"fail/terminal-legacy", terminal1, authority.ProtocolLegacy, "an10922/test/example-2tdea-legacy", "card-type"},
		{"fail/terminal-ultralight-c", terminal1, authority.ProtocolULC, "an10922/test/example-2tdea", "card-type"},
		{"ok/perso-legacy", perso1, authority.ProtocolLegacy, "an10922/test/example-2tdea-legacy", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.a.Decide(c.p, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref(c.key)}, CardType: string(c.protocol)})
			if c.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantDenial(t, err, c.rule)
		})
	}
}

// TestUltralightCNeedsChangeKey: an authenticated Ultralight C takes plain
// writes to its key pages, so samd authenticates one only for a role that
// may change keys; a role without C4 is refused before the key is used.
func TestUltralightCNeedsChangeKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref, _ := keys.NewRef("an10922/test/example-2tdea", 1)
	m := append(append(unhex("04782E21801D80"), unhex("3042F5")...), []byte("NXP A")...)
	key := authority.CardKey{Master: ref, Input: rawInput(t, m)}
	card := &cardsim.UltralightC{Key: an10922TDEA(t, m), Rand: rand.Reader}
	// A terminal role that lists ultralight-c but not ChangeKey.
	g := f.decide(t, perso1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref}})
	g.CardCommands = policies.DefaultCardCommands()
	_, ch := card.Transceive(0x1A, []byte{0})
	_, _, err := f.a.BeginAuth(ctx, perso1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolULC, Key: key, Challenge: ch})
	wantDenial(t, err, "card-command")

	g = f.decide(t, perso1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref}})
	ans, tok, err := f.a.BeginAuth(ctx, perso1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolULC, Key: key, Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(0xAF, ans)
	if st != cardsim.StatusOK {
		t.Fatalf("the card refused samd: %02X", st)
	}
	if _, err := f.a.FinishAuth(ctx, perso1, g, tok, resp); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyOneCheckPerToken: a D40 token checks one MAC or FULL response;
// replayed, it is refused, so that nobody can submit ciphertexts to it
// until one decrypts with a CRC16 that happens to hold.
func TestLegacyOneCheckPerToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ref, _ := keys.NewRef("an10922/test/example-2tdea-legacy", 1)
	m := append(append(unhex("04782E21801D80"), unhex("3042F5")...), []byte("NXP A")...)
	key := authority.CardKey{Master: ref, Input: rawInput(t, m)}
	card := &cardsim.LegacyDES{Key: an10922TDEA(t, m), Rand: rand.Reader, File: []byte("D40 card, CRC16.................")}
	g := f.decide(t, perso1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref}})
	_, ch := card.Transceive(0x0A, []byte{0})
	ans, tok, err := f.a.BeginAuth(ctx, perso1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolLegacy, Key: key, Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(0xAF, ans)
	if st != cardsim.StatusOK {
		t.Fatalf("the card refused samd: %02X", st)
	}
	res, err := f.a.FinishAuth(ctx, perso1, g, tok, resp)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{1, 0, 0, 0, 15, 0, 0}
	st, enc := card.Transceive(0xBD, hdr)
	data, _, err := f.a.CheckResponse(ctx, perso1, g, res.Session, st, enc, authority.CommFull, 15)
	if err != nil || string(data) != "D40 card, CRC16" {
		t.Fatalf("FULL read: %q %v", data, err)
	}
	for _, body := range [][]byte{enc, make([]byte, 24)} {
		if _, _, err := f.a.CheckResponse(ctx, perso1, g, res.Session, st, body, authority.CommFull, 15); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("a second check with the token: %v", err)
		}
	}
}

func rawInput(t *testing.T, m []byte) derive.Input {
	t.Helper()
	in, err := derive.RawInput(m)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// softTDEA computes CMACs under the published 2TDEA example master, to
// personalise a simulated card with the key samd derives.
type softTDEA struct{ b cipher.Block }

func (s softTDEA) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	return cmac.Sum(s.b, msg)
}

// an10922TDEA is the AN10922 key of M under the 2TDEA example master
// 00112233445566778899AABBCCDDEEFF.
func an10922TDEA(t *testing.T, m []byte) []byte {
	t.Helper()
	mk := unhex("00112233445566778899AABBCCDDEEFF0011223344556677")
	b, err := des.NewTripleDESCipher(mk)
	if err != nil {
		t.Fatal(err)
	}
	k, err := derive.Diversify(context.Background(), softTDEA{b}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.TDEA2}, rawInput(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), k.Reveal()...)
}

// examplesWith compiles the example policies with operations added to
// some key entries ("op, op").
func examplesWith(t *testing.T, ops map[string]string) *policies.Engine {
	t.Helper()
	return examplesEdited(t, func(d string) string {
		for name, more := range ops {
			at := strings.Index(d, "  - name: "+name+"\n")
			op := strings.Index(d[at:], "operations: [")
			if at < 0 || op < 0 {
				t.Fatalf("no entry %s", name)
			}
			at += op + len("operations: [")
			d = d[:at] + more + ", " + d[at:]
		}
		return d
	})
}

// examplesEdited compiles the example policies with keys.yaml edited.
func examplesEdited(t *testing.T, edit func(string) string) *policies.Engine {
	t.Helper()
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if files[i].Name == "keys.yaml" {
			files[i].Data = []byte(edit(string(files[i].Data)))
		}
	}
	e, err := policies.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestChangeKeyCarriesKeys: a new key travels in ChangeKey under the
// session's keys, so under the key that authenticated the session: samd
// makes the cryptogram only if that key's entry permits card.changekey
// (denied, rule key-entry) and the key is at least as strong as the new
// one (wrong-role), on the EV1 path as on EV2's.
func TestChangeKeyCarriesKeys(t *testing.T) {
	f := newFixture(t)
	tokenKey(t, f.keys.Store, "an10922/test/example-aes256", keys.RoleDiversifyMaster, keys.AES256, unhex("00112233445566778899AABBCCDDEEFF0102030405060708090A0B0C0D0E0F00"))
	ctx := context.Background()
	ref := func(n string) keys.Ref { r, _ := keys.NewRef(n, 1); return r }
	ev1 := &cardsim.EV1AES{Key: unhex(an10922Key), Rand: rand.Reader, Version: unhex("04010101001A05"), File: make([]byte, 32)}
	session := func() string {
		t.Helper()
		g := f.decide(t, perso1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref("an10922/test/example-aes128-ev1")}})
		_, ch := ev1.Transceive(0xAA, []byte{0})
		ans, tok, err := f.a.BeginAuth(ctx, perso1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV1AES, Key: authority.CardKey{Master: ref("an10922/test/example-aes128-ev1"), Input: nxpAbu(t)}, Challenge: ch})
		if err != nil {
			t.Fatal(err)
		}
		st, resp := ev1.Transceive(0xAF, ans)
		if st != cardsim.StatusOK {
			t.Fatalf("EV1 refused samd: %02X", st)
		}
		res, err := f.a.FinishAuth(ctx, perso1, g, tok, resp)
		if err != nil {
			t.Fatal(err)
		}
		return res.Session
	}
	changeKey := func(s, newKey string) error {
		g := f.decide(t, perso1, policies.OpCardChangeKey, policies.Request{Keys: []keys.Ref{ref(newKey), ref("an10922/test/example-aes128-ev1")}})
		_, _, err := f.a.ChangeKey(ctx, perso1, g, authority.ChangeKeyRequest{Session: s, KeyNo: 1, KeyVersion: 1,
			New: authority.CardKey{Master: ref(newKey), Input: nxpAbu(t)}, Old: authority.CardKey{Master: ref("an10922/test/example-aes128-ev1"), Input: nxpAbu(t)}})
		return err
	}
	// Under the example policy the session's key (example-aes128-ev1)
	// lists card.auth only; under carrying, it and an AES-256 key of its
	// protocol permit card.changekey.
	examples := examplesWith(t, nil)
	carrying := examplesEdited(t, func(d string) string {
		d = strings.Replace(d, "  - name: an10922/test/example-aes256\n    operations: [diversify.kcv, diversify.export]",
			"  - name: an10922/test/example-aes256\n    protocol: desfire-ev1-aes\n    operations: [card.changekey]", 1)
		return strings.Replace(d, "  - name: an10922/test/example-aes128-ev1\n    protocol: desfire-ev1-aes\n    operations: [card.auth]",
			"  - name: an10922/test/example-aes128-ev1\n    protocol: desfire-ev1-aes\n    operations: [card.auth, card.changekey]", 1)
	})
	t.Run("fail/session-key-carries-no-keys", func(t *testing.T) {
		f.a.SetPolicy(examples)
		s := session()
		f.a.SetPolicy(carrying) // the new key may be changed; the session's may carry none
		wantDenial(t, changeKey(s, "an10922/test/example-aes128-ev1"), "key-entry")
	})
	f.a.SetPolicy(carrying)
	t.Run("ok/same-strength", func(t *testing.T) {
		if err := changeKey(session(), "an10922/test/example-aes128-ev1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/stronger-key-under-weaker-session", func(t *testing.T) {
		if err := changeKey(session(), "an10922/test/example-aes256"); errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection) {
			t.Fatalf("got %v", err)
		}
	})
}
