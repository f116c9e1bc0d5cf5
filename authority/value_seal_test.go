package authority_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state/sqlite"
)

// An APTA agency whose ticket machines load T-purses (USD, as Part II's
// default currency) and whose back office seals without value rights.
const agencyPolicy = `kind: operator
operator: agency-7
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  terminal:
    operations: [mac.seal, mac.verify, value.authorize, value.cancel, card.auth]
    keys: ["mac/a7/*", "value/a7/*", "an10922/test/*"]
    product_owners: [agency-7]
    value: {currency: USD, per_transaction: 5000, per_device_per_day: 1000000, seal_key: "value/a7/seal:v1", cancellation_window: 10m}
  back-office:
    operations: [mac.seal, mac.verify]
    keys: ["mac/a7/*"]
    product_owners: [agency-7]
`

const agencyKeys = `kind: keys
keys:
  - name: mac/a7/tpurse
    operations: [mac.seal, mac.verify]
    usage_limit: 1000
  - name: value/a7/seal
    operations: [value.authorize, value.cancel, value.verify]
  - name: an10922/test/example-aes128
    operations: [card.auth]
`

// aptaCard is the card of AN10922's example (UID 04782E21801D80).
var aptaCard = unhex("04782E21801D80")

type agency struct {
	a     *authority.Authority
	keys  *countingKeys
	state *sqlite.Store
	p     mac.Profile
}

var (
	tvm1 = identity.Principal{Role: identity.RoleTerminal, Operator: "agency-7", Device: "tvm-1"}
	bo1  = identity.Principal{Role: identity.RoleBackOffice, Operator: "agency-7", Device: "bo-1"}
)

// newAgency is an Authority with the apta-tpurse profile: a DAC under the
// card's AN10922 key (from AN10922's example master), on the SV&TPPO, its
// A&DVO and THO and the P&TPO, amounts from the catalogue, 3 failed DAC
// verifications per card; tvm-1 has an allowance of 10 000 cents.
func newAgency(t *testing.T) *agency {
	t.Helper()
	s := keystest.Store(t)
	tokenKey(t, s, "mac/a7/tpurse", keys.RoleDiversifyMaster, keys.AES128, unhex("00112233445566778899AABBCCDDEEFF"))
	tokenKey(t, s, "value/a7/seal", keys.RoleMAC, keys.AES128, unhex("2B7E151628AED2A6ABF7158809CF4F3C"))
	tokenKey(t, s, "an10922/test/example-aes128", keys.RoleDiversifyMaster, keys.AES128, unhex("00112233445566778899AABBCCDDEEFF"))
	engine, err := policies.Compile([]policies.File{{Name: "agency-7.yaml", Data: []byte(agencyPolicy)}, {Name: "keys.yaml", Data: []byte(agencyKeys)}})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := keys.NewRef("mac/a7/tpurse", 1)
	var types []apta.Type
	for _, n := range []string{"SV&TPPO", "A&DVO", "THO", "P&TPO"} {
		typ, _ := apta.TypeByName(n)
		types = append(types, typ)
	}
	p, err := mac.NewProfile(mac.ProfileConfig{Name: "apta-tpurse", Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Diversify: true,
		AID: unhex("F48EE1"), SystemID: []byte("APTA-UTFS"), Types: types, Value: &mac.ValueConfig{Catalogue: true}, CardFailureLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	f := newAuthority(t, s, engine, map[string]mac.Profile{"apta-tpurse": p}, nil)
	if _, err := f.state.TopUp(context.Background(), "agency-7/tvm-1", "USD", 10_000, time.Now()); err != nil {
		t.Fatal(err)
	}
	return &agency{a: f.a, keys: f.keys, state: f.state, p: p}
}

// Objects of the APTA catalogue, built field by field.
func aptaObject(t *testing.T, name string, amount int64, set func(o []byte)) mac.Object {
	t.Helper()
	typ, err := apta.TypeByName(name)
	if err != nil {
		t.Fatal(err)
	}
	o := make([]byte, apta.Size)
	if f, ok := typ.Value(); ok {
		if err := f.PutAmount(o, amount); err != nil {
			t.Fatal(err)
		}
	}
	if set != nil {
		set(o)
	}
	return mac.Object{Type: uint16(typ.ID()), CardID: aptaCard, Owner: "agency-7", Data: o}
}

// purse is an SV&TPPO in US dollars (RtsCurrencyCode 1) with balance
// cents and RtsSVTransSeqNumber seq.
func purse(t *testing.T, balance int64, seq uint64) mac.Object {
	return aptaObject(t, "SV&TPPO", balance, func(o []byte) {
		_ = apta.PutUint(o, 75, 3, 1)
		_ = apta.PutUint(o, 82, 7, seq)
	})
}

func (ag *agency) grant(t *testing.T, p identity.Principal, req policies.Request) policies.Grant {
	t.Helper()
	req.Keys = []keys.Ref{ag.p.Key()}
	req.Profile = "apta-tpurse"
	req.ProductOwners = []string{"agency-7"}
	g, err := ag.a.Decide(p, policies.OpMACSeal, req)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// authorize makes a T-purse reload authorisation for the card.
func (ag *agency) authorize(t *testing.T, cents int64) authority.SealedValue {
	t.Helper()
	amt := policies.Amount{Minor: cents, Currency: "USD"}
	g, err := ag.a.Decide(tvm1, policies.OpValueAuthorize, policies.Request{ProductOwner: "agency-7", Amount: &amt})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := ag.a.AuthorizeValue(context.Background(), tvm1, g, authority.ValueRequest{Amount: amt, Owner: "agency-7", Purpose: policies.PurposeLoad,
		CardID: aptaCard, TSN: 7, TxType: 11})
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

func (ag *agency) balance(t *testing.T) int64 {
	t.Helper()
	a, err := ag.state.Allowance(context.Background(), "agency-7/tvm-1")
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

func wantReason(t *testing.T, err error, k errkind.Kind, reason string) {
	t.Helper()
	if errkind.Of(err) != k || authority.ReasonOf(err) != reason {
		t.Fatalf("got %v (kind %v, reason %q), want %v %s", err, errkind.Of(err), authority.ReasonOf(err), k, reason)
	}
}

// sealed returns the object with the sealed core object in place.
func sealed(o mac.Object, r authority.ObjectResult) mac.Object {
	o.Data = append(append([]byte(nil), r.Sealed...), o.Data[apta.Size:]...)
	return o
}

// TestValueSeal: a T-purse load under a value-bearing APTA profile. A
// terminal with mac.seal but no authorisation cannot seal value; with an
// authorisation of 500 it cannot seal a change of 501 (refused before any
// key is used, the authorisation left unspent); the change of 500 seals
// once, and the same authorisation cannot pay twice; an authorisation
// made with the seal takes the allowance in the same transaction; a
// deduction against a verified purse needs none; the clearing house's
// check of the sealed object passes.
func TestValueSeal(t *testing.T) {
	ag := newAgency(t)
	ctx := context.Background()
	g := ag.grant(t, tvm1, policies.Request{ValueSeal: true})
	seal := func(req authority.ValueSeal) (authority.SealedObjects, error) {
		req.Profile = "apta-tpurse"
		return ag.a.SealValueObjects(ctx, tvm1, g, req)
	}
	cmacs := ag.keys.cmacs.Load()

	// No authorisation: no value.
	_, err := seal(authority.ValueSeal{Objects: []mac.Object{purse(t, 500, 1)}})
	wantReason(t, err, errkind.Denied, authority.ReasonValueUnauthorised)
	_, err = seal(authority.ValueSeal{Objects: []mac.Object{aptaObject(t, "P&TPO", 0, nil)}})
	wantReason(t, err, errkind.Denied, authority.ReasonValueUnauthorised) // a pass: nothing to check
	// Through SealObjects, which takes no authorisation: refused too.
	_, _, err = ag.a.SealObjects(ctx, tvm1, g, "apta-tpurse", []mac.Object{purse(t, 500, 1)})
	wantReason(t, err, errkind.Denied, authority.ReasonValueUnauthorised)

	// An authorisation of 500 does not pay for 501.
	auth := ag.authorize(t, 500)
	if auth.Record.Version != 2 || !bytes.Equal(auth.Record.CardID, aptaCard) || auth.Record.TSN != 7 || auth.Record.TxType != 11 {
		t.Fatalf("the record names no card, TSN or type: %+v", auth.Record)
	}
	if ag.keys.cmacs.Load() != cmacs+1 { // the record's seal only
		t.Fatalf("refusals used the token: %d CMACs", ag.keys.cmacs.Load()-cmacs)
	}
	cmacs = ag.keys.cmacs.Load()
	_, err = seal(authority.ValueSeal{Objects: []mac.Object{purse(t, 501, 1)}, Authorization: auth.Record.Seq})
	wantReason(t, err, errkind.Denied, apta.ReasonValueMismatch.String())
	var ae *apta.Error
	if !errors.As(err, &ae) || ae.Got != 501 || ae.Want != 500 {
		t.Fatalf("the mismatch says %+v", ae)
	}
	// Nor an A&DVO of 501 beside a right balance, nor a purse in euros.
	_, err = seal(authority.ValueSeal{Objects: []mac.Object{purse(t, 500, 1), aptaObject(t, "A&DVO", 501, nil)}, Authorization: auth.Record.Seq})
	wantReason(t, err, errkind.Denied, apta.ReasonValueMismatch.String())
	euro := purse(t, 500, 1)
	_ = apta.PutUint(euro.Data, 75, 3, 6)
	_, err = seal(authority.ValueSeal{Objects: []mac.Object{euro}, Authorization: auth.Record.Seq})
	wantReason(t, err, errkind.Denied, apta.ReasonCurrency.String())
	// Nor another card's objects.
	other := purse(t, 500, 1)
	other.CardID = unhex("04782E21801D81")
	_, err = seal(authority.ValueSeal{Objects: []mac.Object{other}, Authorization: auth.Record.Seq})
	wantReason(t, err, errkind.Denied, authority.ReasonAuthorizationMismatch)
	if ag.keys.cmacs.Load() != cmacs {
		t.Fatalf("refused value seals used the token: %d CMACs", ag.keys.cmacs.Load()-cmacs)
	}
	if rec, _ := ag.state.Authorization(ctx, "agency-7/tvm-1", auth.Record.Seq); rec.Spent != "" {
		t.Fatal("a refused seal spent the authorisation")
	}

	// 500 seals: the purse, its A&DVO and its THO, for one authorisation.
	load := []mac.Object{purse(t, 500, 1), aptaObject(t, "A&DVO", 500, nil), aptaObject(t, "THO", 500, nil)}
	res, err := seal(authority.ValueSeal{Objects: load, Authorization: auth.Record.Seq})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := ag.state.Authorization(ctx, "agency-7/tvm-1", auth.Record.Seq); rec.Spent != "seal:apta-tpurse" {
		t.Fatalf("spent by %q", rec.Spent)
	}
	onCard := sealed(load[0], res.Results[0])
	// The clearing house's check: the DAC verifies, and a changed balance
	// does not.
	vg := ag.grantVerify(t)
	v, _, err := ag.a.VerifyObjects(ctx, bo1, vg, "apta-tpurse", []mac.Object{onCard, sealed(load[1], res.Results[1])}, make([][]byte, 2))
	if err != nil || v[0].Err != nil || v[1].Err != nil {
		t.Fatalf("verify: %v %v", err, v)
	}

	// The same authorisation, again: refused, whatever the objects.
	_, err = seal(authority.ValueSeal{Objects: []mac.Object{purse(t, 500, 1)}, Authorization: auth.Record.Seq})
	wantReason(t, err, errkind.Denied, authority.ReasonAuthorizationSpent)
	// A spent authorisation is not cancelled either: its value was sealed.
	cg, _ := ag.a.Decide(tvm1, policies.OpValueCancel, policies.Request{})
	_, err = ag.a.CancelValue(ctx, tvm1, cg, authority.CancelRequest{Original: auth.Record.Seq, TSN: 8})
	if errkind.Of(err) != errkind.Denied {
		t.Fatalf("cancel a spent authorisation: %v", err)
	}

	// An authorisation made with the seal: 300 more on the verified purse,
	// the allowance taken in the seal's own transaction.
	before := ag.balance(t)
	amt := policies.Amount{Minor: 300, Currency: "USD"}
	gi := ag.grant(t, tvm1, policies.Request{ValueSeal: true, ProductOwner: "agency-7", Amount: &amt})
	res, err = ag.a.SealValueObjects(ctx, tvm1, gi, authority.ValueSeal{Profile: "apta-tpurse", Objects: []mac.Object{purse(t, 800, 2)},
		Previous:  []*authority.PreviousObject{{Object: onCard}},
		Authorize: &authority.ValueRequest{Amount: amt, Owner: "agency-7", Purpose: policies.PurposeLoad, TSN: 8, TxType: 11}})
	if err != nil {
		t.Fatal(err)
	}
	if ag.balance(t) != before-300 || res.Authorization == nil || res.Authorization.Record.Amount != 300 || !bytes.Equal(res.Authorization.Record.CardID, aptaCard) {
		t.Fatalf("balance %d (was %d), record %+v", ag.balance(t), before, res.Authorization)
	}
	if rec, _ := ag.state.Authorization(ctx, "agency-7/tvm-1", res.Authorization.Record.Seq); rec.Spent != "seal:apta-tpurse" {
		t.Fatalf("the authorisation made with the seal is not spent: %q", rec.Spent)
	}
	onCard = sealed(purse(t, 800, 2), res.Results[0])

	// A forged baseline (a DAC that does not verify): refused as a failed
	// verification, nothing taken.
	forged := purse(t, 5000, 2)
	forged.Data[14], forged.Data[15] = 0x12, 0x34
	before = ag.balance(t)
	note := &audit.Note{}
	_, err = ag.a.SealValueObjects(audit.WithNote(ctx, note), tvm1, gi, authority.ValueSeal{Profile: "apta-tpurse", Objects: []mac.Object{purse(t, 5300, 3)},
		Previous:  []*authority.PreviousObject{{Object: forged}},
		Authorize: &authority.ValueRequest{Amount: amt, Owner: "agency-7", Purpose: policies.PurposeLoad, TSN: 9, TxType: 11}})
	if errkind.Of(err) != errkind.CheckFailed || apta.ReasonOf(err) != apta.ReasonInvalidDAC || note.Failures() != 1 || ag.balance(t) != before {
		t.Fatalf("forged baseline: %v, %d failures, balance %d → %d", err, note.Failures(), before, ag.balance(t))
	}

	// A fare deducted: no authorisation, a verified baseline, less value.
	gb := ag.grant(t, bo1, policies.Request{})
	res, err = ag.a.SealValueObjects(ctx, bo1, gb, authority.ValueSeal{Profile: "apta-tpurse", Objects: []mac.Object{purse(t, 650, 3), aptaObject(t, "THO", -150, nil)},
		Previous: []*authority.PreviousObject{{Object: onCard}, nil}})
	if err != nil {
		t.Fatal(err)
	}
	// Adding value without an authorisation is refused even against a
	// verified baseline.
	_, err = ag.a.SealValueObjects(ctx, bo1, gb, authority.ValueSeal{Profile: "apta-tpurse", Objects: []mac.Object{purse(t, 801, 3)},
		Previous: []*authority.PreviousObject{{Object: onCard}}})
	wantReason(t, err, errkind.Denied, authority.ReasonValueUnauthorised)
	// Every use of the profile's key was counted, none for a refusal: 3
	// sealed for the first load, 2 verified, 1 + 1 for the load on a
	// baseline, 1 for the forged baseline, 1 + 2 for the deduction.
	if n, err := ag.state.KeyUsage(ctx, "mac/a7/tpurse:v1"); err != nil || n != 11 {
		t.Fatalf("the profile's key counts %d uses, want 11 (%v)", n, err)
	}
}

// grantVerify is the back office's grant to verify under apta-tpurse.
func (ag *agency) grantVerify(t *testing.T) policies.Grant {
	t.Helper()
	g, err := ag.a.Decide(bo1, policies.OpMACVerify, policies.Request{Keys: []keys.Ref{ag.p.Key()}, Profile: "apta-tpurse", ProductOwners: []string{"agency-7"}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestValueSealRace: 50 seals, each authorising 100 with the seal, race
// for an allowance of 10 × 100: exactly 10 seal, each with its record
// stored and spent, and the balance is 0.
func TestValueSealRace(t *testing.T) {
	ag := newAgency(t)
	ctx := context.Background()
	if _, err := ag.state.ResetAllowance(ctx, "agency-7/tvm-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ag.state.TopUp(ctx, "agency-7/tvm-1", "USD", 1000, time.Now()); err != nil {
		t.Fatal(err)
	}
	amt := policies.Amount{Minor: 100, Currency: "USD"}
	g := ag.grant(t, tvm1, policies.Request{ValueSeal: true, ProductOwner: "agency-7", Amount: &amt})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ag.a.SealValueObjects(ctx, tvm1, g, authority.ValueSeal{Profile: "apta-tpurse", Objects: []mac.Object{aptaObject(t, "A&DVO", 100, nil)},
				Authorize: &authority.ValueRequest{Amount: amt, Owner: "agency-7", Purpose: policies.PurposeLoad, TSN: uint32(i), TxType: 11}})
			switch {
			case err == nil:
				ok.Add(1)
			case errkind.Of(err) != errkind.Limit:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, err := ag.state.Authorizations(ctx, "agency-7/tvm-1")
	if err != nil {
		t.Fatal(err)
	}
	spent := 0
	for _, r := range recs {
		if r.Spent == "seal:apta-tpurse" {
			spent++
		}
	}
	if ok.Load() != 10 || spent != 10 || ag.balance(t) != 0 {
		t.Fatalf("%d seals, %d spent records, balance %d; want 10, 10, 0", ok.Load(), spent, ag.balance(t))
	}
}

// TestDACCardLimit: failed DAC verifications count per card, across
// requests; at the limit (3) the card is refused before its DAC is
// computed, even with a valid one, while another card is not; a DAC that
// verifies counts nothing.
func TestDACCardLimit(t *testing.T) {
	ag := newAgency(t)
	ctx := context.Background()
	g := ag.grantVerify(t)
	gs := ag.grant(t, bo1, policies.Request{})
	obj := aptaObject(t, "THO", -100, nil)
	res, err := ag.a.SealValueObjects(ctx, bo1, gs, authority.ValueSeal{Profile: "apta-tpurse", Objects: []mac.Object{obj}})
	if err != nil {
		t.Fatal(err)
	}
	good := sealed(obj, res.Results[0])
	bad := good
	bad.Data = append([]byte(nil), good.Data...)
	bad.Data[15] ^= 0x80
	verify := func(objs ...mac.Object) []authority.ObjectResult {
		t.Helper()
		r, _, err := ag.a.VerifyObjects(ctx, bo1, g, "apta-tpurse", objs, make([][]byte, len(objs)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for range 5 {
		if r := verify(good); r[0].Err != nil {
			t.Fatalf("a valid DAC: %v", r[0].Err)
		}
	}
	r := verify(bad, bad)
	if apta.ReasonOf(r[0].Err) != apta.ReasonInvalidDAC || apta.ReasonOf(r[1].Err) != apta.ReasonInvalidDAC {
		t.Fatalf("forgeries: %v", r)
	}
	cmacs := ag.keys.cmacs.Load()
	r = verify(bad, good, good)
	if apta.ReasonOf(r[0].Err) != apta.ReasonInvalidDAC || authority.ReasonOf(r[1].Err) != authority.ReasonCardFailures || errkind.Of(r[2].Err) != errkind.Limit {
		t.Fatalf("at the limit: %v", r)
	}
	if n := ag.keys.cmacs.Load() - cmacs; n != 1 { // the card key's derivation, for the one admitted
		t.Fatalf("%d CMACs in the token for one admitted check", n)
	}
	other := good
	other.CardID = unhex("04782E21801D81")
	if r := verify(other); apta.ReasonOf(r[0].Err) != apta.ReasonInvalidDAC {
		t.Fatalf("another card is not blocked: %v", r[0].Err)
	}
	if n, _ := ag.state.CardFailures(ctx, "mac/a7/tpurse|04782E21801D80"); n != 3 {
		t.Fatalf("the card counts %d failures", n)
	}
}

// TestProtectCredit: finding 7 of the review of issue 14. A DESFire
// Credit (0C) creates value: samd protects it only against an unspent
// authorisation of the terminal for the amount in the command, for the
// card whose key the session was diversified from, once.
func TestProtectCredit(t *testing.T) {
	ag := newAgency(t)
	ctx := context.Background()
	master, _ := keys.NewRef("an10922/test/example-aes128", 1)
	g, err := ag.a.Decide(tvm1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{master}})
	if err != nil {
		t.Fatal(err)
	}
	card := &cardsim.EV2{Keys: [][]byte{unhex(an10922Key)}, Rand: rand.Reader, Values: map[byte]*cardsim.Value{4: {Value: 100, Mode: 3}}}
	_, ch := card.Transceive(0x71, []byte{0, 0})
	ans, tok, err := ag.a.BeginAuth(ctx, tvm1, g, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2, Key: authority.CardKey{Master: master, Input: nxpAbu(t)}, Challenge: ch})
	if err != nil {
		t.Fatal(err)
	}
	st, resp := card.Transceive(0xAF, ans)
	if st != cardsim.StatusOK {
		t.Fatalf("authentication: %02X", st)
	}
	fr, err := ag.a.FinishAuth(ctx, tvm1, g, tok, resp)
	if err != nil {
		t.Fatal(err)
	}
	s := fr.Session
	le := func(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

	_, _, err = ag.a.ProtectCommand(ctx, tvm1, g, s, 0x0C, []byte{4}, le(500), authority.CommFull)
	wantReason(t, err, errkind.Denied, authority.ReasonValueUnauthorised)
	_, _, err = ag.a.ProtectCommand(ctx, tvm1, g, s, 0x1C, []byte{4}, le(500), authority.CommFull)
	wantReason(t, err, errkind.Denied, authority.ReasonValueUnauthorised)
	auth := ag.authorize(t, 500)
	_, _, err = ag.a.ProtectCredit(ctx, tvm1, g, s, 0x0C, []byte{4}, le(501), authority.CommFull, auth.Record.Seq)
	wantReason(t, err, errkind.Denied, authority.ReasonAuthorizationMismatch)
	_, _, err = ag.a.ProtectCredit(ctx, tvm1, g, s, 0x0C, []byte{4}, le(-500), authority.CommFull, auth.Record.Seq)
	if errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a negative credit: %v", err)
	}
	// An authorisation for another card.
	amt := policies.Amount{Minor: 500, Currency: "USD"}
	ga, _ := ag.a.Decide(tvm1, policies.OpValueAuthorize, policies.Request{ProductOwner: "agency-7", Amount: &amt})
	elsewhere, err := ag.a.AuthorizeValue(ctx, tvm1, ga, authority.ValueRequest{Amount: amt, Owner: "agency-7", Purpose: policies.PurposeLoad,
		CardID: unhex("04AABBCCDDEEFF"), TSN: 1, TxType: 11})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ag.a.ProtectCredit(ctx, tvm1, g, s, 0x0C, []byte{4}, le(500), authority.CommFull, elsewhere.Record.Seq)
	wantReason(t, err, errkind.Denied, authority.ReasonAuthorizationMismatch)

	out, s, err := ag.a.ProtectCredit(ctx, tvm1, g, s, 0x0C, []byte{4}, le(500), authority.CommFull, auth.Record.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := card.Transceive(0x0C, out); st != cardsim.StatusOK || card.Values[4].Value != 600 {
		t.Fatalf("the card's Credit: %02X, value %d", st, card.Values[4].Value)
	}
	_, _, err = ag.a.ProtectCredit(ctx, tvm1, g, s, 0x0C, []byte{4}, le(500), authority.CommFull, auth.Record.Seq)
	wantReason(t, err, errkind.Denied, authority.ReasonAuthorizationSpent)
	if rec, _ := ag.state.Authorization(ctx, "agency-7/tvm-1", auth.Record.Seq); rec.Spent != "card-command:0C" {
		t.Fatalf("spent by %q", rec.Spent)
	}
}
