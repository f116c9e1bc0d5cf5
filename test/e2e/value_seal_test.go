package e2e

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state/sqlite"
)

// wantRefused fails unless err carries the stable code and, if given,
// the stable reason (Samd-Error-Code, Samd-Error-Reason).
func wantRefused(t *testing.T, err error, code, reason string) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want %s %s", err, code, reason)
	}
	if got := ce.Meta().Get("Samd-Error-Code"); got != code {
		t.Fatalf("code %s, want %s (%v)", got, code, err)
	}
	if got := ce.Meta().Get("Samd-Error-Reason"); reason != "" && got != reason {
		t.Fatalf("reason %q, want %s (%v)", got, reason, err)
	}
}

// aptaPolicies are the development policies, with the validators of an
// operator that may seal with apta-tpurse (to deduct fares) but have no
// value rights.
func aptaPolicies(t *testing.T) map[string]string {
	t.Helper()
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, f := range files {
		docs[f.Name] = string(f.Data)
	}
	docs["dev-apta-validators.yaml"] = `kind: operator
operator: dev-apta-val
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  terminal:
    operations: [mac.seal, mac.verify]
    keys: ["mac/dev/apta-tpurse-master"]
    product_owners: [dev-apta]
`
	return docs
}

// topUpBefore gives devices allowances in the state store of a samd not
// yet started.
func topUpBefore(t *testing.T, e *env, currency string, amounts map[string]int64) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(e.dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for dev, n := range amounts {
		if _, err := st.TopUp(t.Context(), dev, currency, n, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

const aptaUID = "04A1B2C3D4E5F6"

// aptaObj is a DataObject of the card aptaUID for dev-apta: an SV&TPPO
// in US dollars with balance cents (type 17), or an A&DVO adding cents
// (type 8).
func aptaObj(t *testing.T, typ uint8, cents int64) *samdv1.DataObject {
	t.Helper()
	at, err := apta.TypeByID(typ)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := at.Value()
	o := make([]byte, apta.Size)
	if err := f.PutAmount(o, cents); err != nil {
		t.Fatal(err)
	}
	if typ == 17 {
		_ = apta.PutUint(o, 75, 3, 1) // RtsCurrencyCode: US dollar
	}
	return &samdv1.DataObject{Type: uint32(typ), CardId: aptaUID, ProductOwner: "dev-apta", Data: hex.EncodeToString(o)}
}

func usd(cents int64, tsn uint32) *samdv1.AuthorizeValueRequest {
	return &samdv1.AuthorizeValueRequest{Amount: cents, Currency: "USD", ProductOwner: "dev-apta", Purpose: samdv1.Purpose_PURPOSE_LOAD,
		CardId: aptaUID, Tsn: tsn, TransactionType: 11}
}

// TestValueSeals is issue 17 against a running samd, with the
// development configuration's apta-tpurse profile (APTA DACs, value from
// the catalogue): a role with mac.seal but no value rights is refused
// before anything is taken; a terminal with no authorisation cannot seal
// a value object; with an authorisation of 500 it cannot seal a change of
// 501; the same authorisation cannot be used twice; the clearing house
// verifies what was sealed; 50 seals that each authorise 100 race for an
// allowance of 10 × 100 and exactly 10 seal; a Part 19 cancellation takes
// the same type and the card's current TSN, once.
func TestValueSeals(t *testing.T) {
	e := newEnv(t, aptaPolicies(t))
	topUpBefore(t, e, "USD", map[string]int64{"dev-apta/dev-apta-tvm-race": 1000})
	e.start()
	ctx := ctxT(t)
	termC := e.as("terminal", "dev-apta", "dev-apta-tvm-1")
	term := macsOf(termC)
	bo := macsOf(e.as("terminal", "dev-apta-val", "validator-1"))
	ch := macsOf(e.as("clearing-house", "dev-clearing", "ch-1"))
	// No value rights: denied by the policy, nothing taken.
	_, err := bo.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse",
		Objects: []*samdv1.DataObject{aptaObj(t, 17, 500)}, Authorize: usd(500, 1)}))
	wantRefused(t, err, "denied", "")
	// No authorisation: no value, for the back office and the terminal.
	_, err = bo.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse", Objects: []*samdv1.DataObject{aptaObj(t, 17, 500)}}))
	wantRefused(t, err, "denied", "value-unauthorised")
	_, err = term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse", Objects: []*samdv1.DataObject{aptaObj(t, 17, 500)}}))
	wantRefused(t, err, "denied", "value-unauthorised")

	// An authorisation of 500 does not pay for 501; it pays for 500, once.
	a, err := termC.val.AuthorizeValue(ctx, connect.NewRequest(usd(500, 1)))
	if err != nil {
		t.Fatal(err)
	}
	rec := a.Msg.GetAuthorization()
	if rec.GetVersion() != 2 || rec.GetCardId() != aptaUID || rec.GetTsn() != 1 || rec.GetTransactionType() != 11 {
		t.Fatalf("record %v", rec)
	}
	bySeq := func(objs ...*samdv1.DataObject) *connect.Request[samdv1.SealObjectsRequest] {
		return connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse", Objects: objs, AuthorizationSequence: rec.GetSequence()})
	}
	_, err = term.SealObjects(ctx, bySeq(aptaObj(t, 17, 501)))
	wantRefused(t, err, "denied", "value-mismatch")
	_, err = term.SealObjects(ctx, bySeq(aptaObj(t, 17, 500), aptaObj(t, 8, 501)))
	wantRefused(t, err, "denied", "value-mismatch")
	s, err := term.SealObjects(ctx, bySeq(aptaObj(t, 17, 500), aptaObj(t, 8, 500)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = term.SealObjects(ctx, bySeq(aptaObj(t, 17, 500)))
	wantRefused(t, err, "denied", "authorization-spent")
	// The clearing house verifies the sealed objects; a changed balance
	// does not verify.
	onCard := []*samdv1.DataObject{aptaObj(t, 17, 500), aptaObj(t, 8, 500)}
	for i, r := range s.Msg.GetResults() {
		onCard[i].Data = r.GetSealed()
	}
	v, err := ch.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: "apta-tpurse", Objects: onCard}))
	if err != nil || v.Msg.GetInvalid() != 0 {
		t.Fatalf("clearing house: %v %v", v, err)
	}
	forged := aptaObj(t, 17, 5000)
	forged.Data = forged.GetData()[:28] + onCard[0].GetData()[28:]
	v, err = ch.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: "apta-tpurse", Objects: []*samdv1.DataObject{forged}}))
	if err != nil || v.Msg.GetInvalid() != 1 || v.Msg.GetResults()[0].GetCode() != "check-failed" {
		t.Fatalf("a forged balance: %v %v", v, err)
	}
	// The next load, authorised with the seal, on the verified purse.
	next := aptaObj(t, 17, 800)
	next.Previous = onCard[0]
	s, err = term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse", Objects: []*samdv1.DataObject{next}, Authorize: usd(300, 2)}))
	if err != nil || s.Msg.GetAuthorization().GetAmount() != 300 || s.Msg.GetAuthorization().GetCardId() != aptaUID {
		t.Fatalf("a load on the purse: %v %v", s, err)
	}

	// The CRC profile: the seed's example (§5.1 Note 2, x16+x15+x2+1),
	// sealed without a key and verified by the clearing house.
	crc := &samdv1.DataObject{Type: 1, CardId: aptaUID, ProductOwner: "dev-apta", Data: "4352432044454D4F2041505441210000"}
	cs, err := term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-core-crc", Objects: []*samdv1.DataObject{crc}}))
	if err != nil || cs.Msg.GetResults()[0].GetSealed() != "4352432044454D4F2041505441218662" || cs.Msg.GetResults()[0].GetMac() != "6286" {
		t.Fatalf("CRC seal: %v %v", cs, err)
	}
	crc.Data = cs.Msg.GetResults()[0].GetSealed()
	if v, err := ch.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: "apta-core-crc", Objects: []*samdv1.DataObject{crc}})); err != nil || v.Msg.GetInvalid() != 0 {
		t.Fatalf("CRC verify: %v %v", v, err)
	}
	// An extension object under the DAC profile: its bits 112-127 are data.
	svpox := &samdv1.DataObject{Type: 18, CardId: aptaUID, ProductOwner: "dev-apta", Data: strings.Repeat("00", 16)}
	_, err = term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse", Objects: []*samdv1.DataObject{svpox}, Authorize: usd(1, 9)}))
	wantRefused(t, err, "invalid-input", "")

	// 50 seals race for 10 × 100.
	race := macsOf(e.as("terminal", "dev-apta", "dev-apta-tvm-race"))
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := race.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse",
				Objects: []*samdv1.DataObject{aptaObj(t, 8, 100)}, Authorize: usd(100, uint32(i+1))}))
			var ce *connect.Error
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.As(err, &ce) || ce.Meta().Get("Samd-Error-Code") != "limit-reached":
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 {
		t.Fatalf("%d of 50 seals against an allowance of 10 × 100", ok.Load())
	}

	// Håndbok 206 Part 19 §5: cancel with the type of the cancelled
	// operation and the card's current TSN, once.
	c5, err := termC.val.AuthorizeValue(ctx, connect.NewRequest(usd(700, 5)))
	if err != nil {
		t.Fatal(err)
	}
	cancel := func(tsn, typ uint32) (*connect.Response[samdv1.AuthorizeValueResponse], error) {
		return termC.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: c5.Msg.GetAuthorization().GetSequence(), Tsn: tsn, TransactionType: typ}))
	}
	_, err = cancel(5, 0)
	wantRefused(t, err, "invalid-input", "")
	_, err = cancel(6, 4)
	wantRefused(t, err, "denied", "")
	cr, err := cancel(6, 11)
	if err != nil {
		t.Fatal(err)
	}
	cancelled := cr.Msg.GetAuthorization()
	if cancelled.GetTsn() != 6 || cancelled.GetTransactionType() != 11 || cancelled.GetCardId() != aptaUID || cancelled.GetPurpose() != samdv1.Purpose_PURPOSE_CANCELLATION {
		t.Fatalf("cancellation record %v", cancelled)
	}
	_, err = cancel(7, 0)
	wantRefused(t, err, "denied", "")
	// The clearing house verifies the record and sees its card, TSN and type.
	vv, err := e.as("clearing-house", "dev-clearing", "ch-1").val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: cancelled}))
	if err != nil || vv.Msg.GetTransactionTypeName() != "CSC tPurse Product Reload" || vv.Msg.GetAuthorization().GetTsn() != 6 {
		t.Fatalf("verify the cancellation: %v %v", vv, err)
	}
	// A spent authorisation is not cancelled.
	_, err = termC.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: rec.GetSequence(), Tsn: 3}))
	wantRefused(t, err, "denied", "")

	e.stop()
	st, err := sqlite.Open(filepath.Join(e.dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if none, err := st.Authorizations(t.Context(), "dev-apta-val/validator-1"); err != nil || len(none) != 0 {
		t.Fatalf("the validator without value rights has records: %v %v", none, err)
	}
	recs, err := st.Authorizations(t.Context(), "dev-apta/dev-apta-tvm-race")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Spent != "seal:apta-tpurse" || r.Card != aptaUID {
			t.Fatalf("race record %+v", r)
		}
	}
	if al, err := st.Allowance(t.Context(), "dev-apta/dev-apta-tvm-race"); err != nil || len(recs) != 10 || al.Balance != 0 {
		t.Fatalf("%d records, balance %d (%v)", len(recs), al.Balance, err)
	}
}

// TestValueSealCrash kills samd with SIGKILL at random moments during a
// burst of value seals (each authorising its amount with the seal),
// restarts it each time, and checks that every seal answered has its
// authorisation in the store, spent by the seal (stored ≥ acknowledged),
// and that the allowance is what it was less what is stored.
func TestValueSealCrash(t *testing.T) {
	e := newEnv(t, nil)
	const device, allowance = "dev-apta/dev-apta-tvm-crash", 100_000
	topUpBefore(t, e, "USD", map[string]int64{device: allowance})
	e.start()
	ctx := ctxT(t)
	acked := killDuring(t, e, "dev-apta", "dev-apta-tvm-crash", func(c *clients) (*samdv1.ValueAuthorization, error) {
		amt := int64(1 + rand.IntN(50))
		r, err := macsOf(c).SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-tpurse",
			Objects: []*samdv1.DataObject{aptaObj(t, 8, amt)}, Authorize: usd(amt, uint32(rand.IntN(1<<20)))}))
		if err != nil {
			return nil, err
		}
		if len(r.Msg.GetResults()) != 1 || r.Msg.GetResults()[0].GetSealed() == "" {
			t.Error("a seal answered without its object")
			return nil, errors.New("no object")
		}
		return r.Msg.GetAuthorization(), nil
	})
	checkStored(t, e, device, acked, allowance)
	st, err := sqlite.Open(filepath.Join(e.dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Authorizations(t.Context(), device)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Spent != "seal:apta-tpurse" {
			t.Fatalf("record %d was stored unspent: a seal's authorisation is spent in its own transaction", r.Seq)
		}
	}
}

// TestCreditNeedsAuthorisation is finding 7 of the review of issue 14
// against a running samd: a terminal's default card commands include
// Credit (0C), but samd protects it only against an unspent value
// authorisation for the command's amount and the session's card, once.
func TestCreditNeedsAuthorisation(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	kx := personalise(t, keys.AES128, exampleAES, m)
	card := &cardsim.EV2{Keys: [][]byte{kx}, Rand: crand.Reader, Values: map[byte]*cardsim.Value{4: {Value: 0, Mode: 3}}}
	cl := e.as("terminal", "dev-operator", "dev-terminal-1")
	s := authEV2(t, ctx, cl.card, card, "an10922/test/example-aes128", 0, "")
	credit := func(cents int32, auth uint64) (*connect.Response[samdv1.ProtectCommandResponse], error) {
		return cl.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: 0x0C, Header: "04",
			Data: hex.EncodeToString(binary.LittleEndian.AppendUint32(nil, uint32(cents))), Mode: samdv1.CommMode_COMM_MODE_FULL, ValueAuthorization: auth}))
	}
	_, err := credit(0x7FFFFFFF, 0)
	wantRefused(t, err, "denied", "value-unauthorised")
	a, err := cl.val.AuthorizeValue(ctx, connect.NewRequest(&samdv1.AuthorizeValueRequest{Amount: 500, Currency: "NOK", ProductOwner: "dev-operator",
		Purpose: samdv1.Purpose_PURPOSE_LOAD, CardId: cardUID, Tsn: 3, TransactionType: 11}))
	if err != nil {
		t.Fatal(err)
	}
	seq := a.Msg.GetAuthorization().GetSequence()
	_, err = credit(501, seq)
	wantRefused(t, err, "denied", "authorization-mismatch")
	p, err := credit(500, seq)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := card.Transceive(0x0C, unhexT(t, p.Msg.GetData())); st != cardsim.StatusOK || card.Values[4].Value != 500 {
		t.Fatalf("the card's Credit: %02X, value %d", st, card.Values[4].Value)
	}
	s = p.Msg.GetSession()
	_, err = credit(500, seq)
	wantRefused(t, err, "denied", "authorization-spent")
}
