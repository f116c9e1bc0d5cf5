package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state/sqlite"
)

const keysDoc = `kind: keys
keys:
  - name: desfire/dev/app-master-aes128
    operations: [diversify.kcv, diversify.export]
  - name: desfire/dev/app-master-aes256
    operations: [diversify.kcv]
    usage_limit: 2
  - name: an10922/test/example-aes128
    operations: [diversify.kcv]
  - name: transport/dev/perso-kek
    operations: [diversify.export]
  - name: transport/test/rfc3394-kek
    operations: [diversify.export]
  - name: value/dev/auth-seal
    operations: [value.authorize, value.cancel, value.verify]
`

func operatorDoc(op, until, terminalRate string) string {
	return fmt.Sprintf(`kind: operator
operator: %s
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: %s
roles:
  terminal:
    operations: [diversify.kcv, value.authorize, value.cancel]
    keys: ["desfire/dev/*", "value/dev/*"]
    product_owners: [%s, owner-ok]
    value:
      currency: NOK
      per_transaction: 1000
      per_device_per_day: 3000
      seal_key: value/dev/auth-seal:v1
      cancellation_window: 10m
    rate: %s
  personalisation:
    operations: [diversify.kcv, diversify.export]
    keys: ["desfire/dev/*", "transport/dev/*"]
  back-office:
    operations: [value.verify]
    keys: ["value/dev/*"]
  officer:
    operations: [allowance.read, allowance.topup, allowance.reset, policy.reload]
`, op, until, op, terminalRate)
}

const clearingDoc = `kind: operator
operator: ch
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  clearing-house:
    operations: [value.verify]
    keys: ["value/*/*"]
`

func matrixPolicies() map[string]string {
	return map[string]string{
		"keys.yaml":       keysDoc,
		"op-a.yaml":       operatorDoc("op-a", "2030-01-01T00:00:00Z", "{per_second: 10000, burst: 10000}"),
		"op-r.yaml":       operatorDoc("op-r", "2030-01-01T00:00:00Z", "{per_second: 0.01, burst: 2}"),
		"op-expired.yaml": operatorDoc("op-expired", "2026-02-01T00:00:00Z", "{per_second: 100, burst: 100}"),
		"ch.yaml":         clearingDoc,
	}
}

func kcvReq(key string) *connect.Request[samdv1.DiversifiedKeyCheckValueRequest] {
	return connect.NewRequest(&samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: key, Version: 1}, Input: nxpInput()})
}

func exportReq(kek string) *connect.Request[samdv1.ExportDiversifiedKeyRequest] {
	return connect.NewRequest(&samdv1.ExportDiversifiedKeyRequest{MasterKey: &samdv1.KeyRef{Name: "desfire/dev/app-master-aes128", Version: 1},
		TransportKey: &samdv1.KeyRef{Name: kek, Version: 1}, Input: nxpInput()})
}

func valueReq(amount int64, owner string) *connect.Request[samdv1.AuthorizeValueRequest] {
	return connect.NewRequest(&samdv1.AuthorizeValueRequest{Amount: amount, Currency: "NOK", ProductOwner: owner, Purpose: samdv1.Purpose_PURPOSE_LOAD,
		CardId: "04782E21801D80", Tsn: 7, TransactionType: 11})
}

// outcome is what a matrix cell expects: "" allowed, else the stable code
// and a fragment of the reason (the rule).
type outcome struct{ code, reason string }

var allowed = outcome{}

func check(t *testing.T, err error, want outcome) {
	t.Helper()
	if want == allowed {
		if err != nil {
			t.Fatalf("denied: %v", err)
		}
		return
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want %s (%s)", err, want.code, want.reason)
	}
	if got := ce.Meta().Get("Samd-Error-Code"); got != want.code || !strings.Contains(ce.Message(), want.reason) {
		t.Fatalf("got %s: %q, want %s containing %q", got, ce.Message(), want.code, want.reason)
	}
}

// TestAuthorisationMatrix runs every operation against a running samd over
// mTLS as the right operator, another operator, the wrong role, with a key
// outside the role's patterns, a product owner not allowed, an expired
// policy, and over each limit.
func TestAuthorisationMatrix(t *testing.T) {
	e := newEnv(t, matrixPolicies())
	e.register("op-a/off-1", "op-r/off-r", "op-zzz/o")
	e.start()
	ctx := ctxT(t)
	officer := e.as("officer", "op-a", "off-1")
	for _, dev := range []string{"op-a/t1", "op-r/t1"} {
		if _, err := officer.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: dev, Amount: 5000, Currency: "NOK"})); err != nil && !strings.HasPrefix(dev, "op-r") {
			t.Fatal(err)
		}
	}
	e.as("officer", "op-r", "off-r").adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-r/t1", Amount: 5000, Currency: "NOK"}))
	if _, err := officer.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-a/t2", Amount: 500, Currency: "NOK"})); err != nil {
		t.Fatal(err)
	}
	term := e.as("terminal", "op-a", "t1")
	term2 := e.as("terminal", "op-a", "t2")
	perso := e.as("personalisation", "op-a", "p1")
	other := e.as("terminal", "op-zzz", "t1")
	expired := e.as("terminal", "op-expired", "t1")
	bo := e.as("back-office", "op-a", "bo1")
	ch := e.as("clearing-house", "ch", "ch1")
	rated := e.as("terminal", "op-r", "t1")

	var first *samdv1.ValueAuthorization
	cells := []struct {
		name string
		call func() error
		want outcome
	}{
		{"diversify.kcv/ok", func() error {
			_, err := term.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
			return err
		}, allowed},
		{"diversify.kcv/other-operator", func() error {
			_, err := other.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
			return err
		}, outcome{"denied", "policy: operator:"}},
		{"diversify.kcv/wrong-role", func() error {
			_, err := bo.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
			return err
		}, outcome{"denied", "role back-office may not call"}},
		{"diversify.kcv/key-outside", func() error {
			_, err := term.div.DiversifiedKeyCheckValue(ctx, kcvReq("an10922/test/example-aes128"))
			return err
		}, outcome{"denied", "policy: key:"}},
		{"diversify.kcv/expired-policy", func() error {
			_, err := expired.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
			return err
		}, outcome{"denied", "policy: validity:"}},
		{"diversify.kcv/usage-1", func() error {
			_, err := term.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes256"))
			return err
		}, allowed},
		{"diversify.kcv/usage-2", func() error {
			_, err := term.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes256"))
			return err
		}, allowed},
		{"diversify.kcv/over-usage-limit", func() error {
			_, err := term.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes256"))
			return err
		}, outcome{"limit-reached", "usage_limit"}},

		{"diversify.export/ok", func() error {
			_, err := perso.div.ExportDiversifiedKey(ctx, exportReq("transport/dev/perso-kek"))
			return err
		}, allowed},
		{"diversify.export/wrong-role", func() error {
			_, err := term.div.ExportDiversifiedKey(ctx, exportReq("transport/dev/perso-kek"))
			return err
		}, outcome{"denied", "role terminal may not call"}},
		{"diversify.export/key-outside", func() error {
			_, err := perso.div.ExportDiversifiedKey(ctx, exportReq("transport/test/rfc3394-kek"))
			return err
		}, outcome{"denied", "policy: key:"}},

		{"value.authorize/ok", func() error {
			r, err := term.val.AuthorizeValue(ctx, valueReq(1000, "owner-ok"))
			if err == nil {
				first = r.Msg.GetAuthorization()
				if r.Msg.GetAllowanceRemaining() != 4000 || first.GetSequence() != 1 {
					return fmt.Errorf("unexpected record %v", r.Msg)
				}
			}
			return err
		}, allowed},
		{"value.authorize/other-operator", func() error { _, err := other.val.AuthorizeValue(ctx, valueReq(10, "owner-ok")); return err }, outcome{"denied", "policy: operator:"}},
		{"value.authorize/wrong-role", func() error { _, err := perso.val.AuthorizeValue(ctx, valueReq(10, "owner-ok")); return err }, outcome{"denied", "role personalisation may not call"}},
		{"value.authorize/owner-not-allowed", func() error { _, err := term.val.AuthorizeValue(ctx, valueReq(10, "owner-bad")); return err }, outcome{"denied", "policy: product-owner:"}},
		{"value.authorize/expired-policy", func() error { _, err := expired.val.AuthorizeValue(ctx, valueReq(10, "owner-ok")); return err }, outcome{"denied", "policy: validity:"}},
		{"value.authorize/over-per-transaction", func() error { _, err := term.val.AuthorizeValue(ctx, valueReq(1001, "owner-ok")); return err }, outcome{"denied", "policy: value.per_transaction:"}},
		{"value.authorize/day-2", func() error { _, err := term.val.AuthorizeValue(ctx, valueReq(1000, "owner-ok")); return err }, allowed},
		{"value.authorize/day-3", func() error { _, err := term.val.AuthorizeValue(ctx, valueReq(1000, "op-a")); return err }, allowed},
		{"value.authorize/over-per-day", func() error { _, err := term.val.AuthorizeValue(ctx, valueReq(1, "owner-ok")); return err }, outcome{"limit-reached", "per_device_per_day"}},
		{"value.authorize/over-allowance", func() error { _, err := term2.val.AuthorizeValue(ctx, valueReq(600, "owner-ok")); return err }, outcome{"limit-reached", "allowance:"}},
		{"value.authorize/rate-1", func() error { _, err := rated.val.AuthorizeValue(ctx, valueReq(1, "owner-ok")); return err }, allowed},
		{"value.authorize/rate-2", func() error { _, err := rated.val.AuthorizeValue(ctx, valueReq(1, "owner-ok")); return err }, allowed},
		{"value.authorize/over-rate", func() error { _, err := rated.val.AuthorizeValue(ctx, valueReq(1, "owner-ok")); return err }, outcome{"limit-reached", "rate:"}},

		{"value.cancel/other-device", func() error {
			_, err := term2.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: 1, Tsn: 8}))
			return err
		}, outcome{"not-found", "has no authorisation 1"}},
		{"value.cancel/ok", func() error {
			r, err := term.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: 1, Tsn: 8}))
			if err == nil && (r.Msg.GetAuthorization().GetOriginalSequence() != 1 || r.Msg.GetAuthorization().GetPurpose() != samdv1.Purpose_PURPOSE_CANCELLATION) {
				return fmt.Errorf("unexpected record %v", r.Msg)
			}
			return err
		}, allowed},
		{"value.cancel/twice", func() error {
			_, err := term.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: 1, Tsn: 8}))
			return err
		}, outcome{"denied", "already cancelled"}},
		{"value.authorize/after-cancel-day-free", func() error { _, err := term.val.AuthorizeValue(ctx, valueReq(1000, "owner-ok")); return err }, allowed},
		{"value.cancel/wrong-role", func() error {
			_, err := perso.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: 1, Tsn: 8}))
			return err
		}, outcome{"denied", "may not call"}},

		{"value.verify/clearing-house-ok", func() error {
			_, err := ch.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: first}))
			return err
		}, allowed},
		{"value.verify/back-office-ok", func() error {
			_, err := bo.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: first}))
			return err
		}, allowed},
		{"value.verify/tampered", func() error {
			bad := proto.Clone(first).(*samdv1.ValueAuthorization)
			bad.Amount = 999
			_, err := ch.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: bad}))
			return err
		}, outcome{"check-failed", "invalid seal"}},
		{"value.verify/wrong-role", func() error {
			_, err := term.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: first}))
			return err
		}, outcome{"denied", "role terminal may not call"}},
		{"value.verify/clearing-house-cannot-seal", func() error { _, err := ch.val.AuthorizeValue(ctx, valueReq(1, "owner-ok")); return err }, outcome{"denied", "may not call"}},

		{"allowance.read/ok", func() error {
			r, err := officer.adm.GetAllowance(ctx, connect.NewRequest(&samdv1.GetAllowanceRequest{Device: "op-a/t2"}))
			if err == nil && r.Msg.GetBalance() != 500 {
				return fmt.Errorf("balance %d", r.Msg.GetBalance())
			}
			return err
		}, allowed},
		{"allowance.topup/other-operator-device", func() error {
			_, err := officer.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-r/t1", Amount: 1, Currency: "NOK"}))
			return err
		}, outcome{"denied", "only their own operator's devices"}},
		{"allowance.topup/wrong-role", func() error {
			_, err := term.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-a/t1", Amount: 1, Currency: "NOK"}))
			return err
		}, outcome{"denied", "role terminal may not call"}},
		{"allowance.topup/other-operator", func() error {
			_, err := e.as("officer", "op-zzz", "o").adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-zzz/t1", Amount: 1, Currency: "NOK"}))
			return err
		}, outcome{"denied", "policy: operator:"}},
		{"allowance.topup/officer-outside-the-registry", func() error {
			_, err := e.as("officer", "op-a", "off-9").adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-a/t1", Amount: 1, Currency: "NOK"}))
			return err
		}, outcome{"denied", "not in the officer registry"}},
		{"allowance.reset/ok", func() error {
			_, err := officer.adm.ResetAllowance(ctx, connect.NewRequest(&samdv1.ResetAllowanceRequest{Device: "op-a/t2"}))
			return err
		}, allowed},
		{"policy.reload/scheme-wide", func() error {
			_, err := officer.adm.ReloadPolicies(ctx, connect.NewRequest(&samdv1.ReloadPoliciesRequest{}))
			return err
		}, outcome{"denied", "samd admin propose policy.activate"}},
		{"policy.reload/wrong-role", func() error {
			_, err := term.adm.ReloadPolicies(ctx, connect.NewRequest(&samdv1.ReloadPoliciesRequest{}))
			return err
		}, outcome{"denied", "may not call"}},
	}
	for _, c := range cells {
		// Cells run in order: later ones depend on the state earlier ones
		// left (daily totals, usage counts, the first record).
		if !t.Run(c.name, func(t *testing.T) { check(t, c.call(), c.want) }) {
			t.FailNow()
		}
	}

	// Every decision, allowed or not, is in the audit log with the policy
	// version it was decided under.
	recs := readAudit(t, e)
	denied, withPolicy := 0, 0
	for _, r := range recs {
		if r.Outcome == "denied" {
			denied++
		}
		if strings.Contains(r.Policy, "op-a@1") {
			withPolicy++
		}
	}
	if denied < 10 || withPolicy < 10 {
		t.Errorf("audit: %d denied records, %d naming policy op-a@1", denied, withPolicy)
	}
}

// TestPolicyReload activates policies (proposals of the scheme's
// officers, the only way) while terminals call samd: no request fails
// because of an activation, and an invalid document fails the proposal
// with its file and line while the old policy stays active.
func TestPolicyReload(t *testing.T) {
	docs := matrixPolicies()
	e := newEnv(t, docs)
	e.start()
	ctx := ctxT(t)
	s1, s2 := e.schemeOfficers()
	activate := func(version string) *samdv1.Proposal {
		t.Helper()
		p, err := s1.offs.Propose(ctx, connect.NewRequest(&samdv1.ProposeRequest{Operation: "policy.activate", ParamsJson: `{"version":"` + version + `"}`}))
		if err != nil {
			t.Fatal(err)
		}
		r, err := s2.offs.Approve(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: p.Msg.GetId()}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg
	}
	version := func() string {
		t.Helper()
		files, err := policies.ReadFS(os.DirFS(filepath.Join(e.dir, "policies")), ".")
		if err != nil {
			t.Fatal(err)
		}
		eng, err := policies.Compile(files)
		if err != nil {
			t.Fatal(err)
		}
		return eng.Version()
	}

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		c := e.as("terminal", "op-a", fmt.Sprintf("t%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128")); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	var last string
	for i := 0; i < 10; i++ {
		// Alternate two valid versions of op-a's policy.
		docs["op-a.yaml"] = strings.Replace(operatorDoc("op-a", "2030-01-01T00:00:00Z", "{per_second: 10000, burst: 10000}"), "version: 1", fmt.Sprintf("version: %d", i+2), 1)
		e.writePolicies(docs)
		last = version()
		if p := activate(last); p.GetStatus() != "executed" {
			t.Fatalf("activation %d: %s %s", i, p.GetStatus(), p.GetResult())
		}
		time.Sleep(30 * time.Millisecond)
	}
	// An invalid document: the proposal fails with file, line and field.
	bad := map[string]string{}
	for k, v := range docs {
		bad[k] = v
	}
	bad["op-a.yaml"] = strings.Replace(docs["op-a.yaml"], "operations: [diversify.kcv, value.authorize, value.cancel]", "operations: [diversify.kcv, value.authorise]", 1)
	e.writePolicies(bad)
	if p := activate(last); p.GetStatus() != "failed" || !strings.Contains(p.GetResult(), `op-a.yaml:8: roles.terminal.operations.[1]: unknown operation "value.authorise"`) {
		t.Fatalf("invalid activation: %s %s", p.GetStatus(), p.GetResult())
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during activations; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 10 {
		t.Fatalf("only %d requests ran", ok.Load())
	}
	// The old (valid) policy is still active: the terminal still works, and
	// the policy version in force is the last valid one.
	if _, err := e.as("terminal", "op-a", "t9").div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128")); err != nil {
		t.Fatalf("after the refused activation: %v", err)
	}
	recs := readAudit(t, e)
	if last := recs[len(recs)-1]; !strings.Contains(last.Policy, "op-a@11") {
		t.Errorf("last record decided under %q, want op-a@11", last.Policy)
	}
}

// TestAllowanceRace races many goroutines over several connections for
// one allowance: the sum authorised never exceeds it, and every
// acknowledged authorisation is in the store.
func TestAllowanceRace(t *testing.T) {
	docs := matrixPolicies()
	docs["op-a.yaml"] = strings.Replace(docs["op-a.yaml"], "per_device_per_day: 3000", "per_device_per_day: 100000000", 1)
	e := newEnv(t, docs)
	e.register("op-a/o")
	e.start()
	ctx := ctxT(t)
	const allowance, amount = 2_000, 7
	if _, err := e.as("officer", "op-a", "o").adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-a/race", Amount: allowance, Currency: "NOK"})); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64]int64{}
	var wg sync.WaitGroup
	for conn := 0; conn < 4; conn++ {
		c := e.as("terminal", "op-a", "race") // one device, four connections
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					r, err := c.val.AuthorizeValue(ctx, valueReq(amount, "owner-ok"))
					if err != nil {
						var ce *connect.Error
						if errors.As(err, &ce) && ce.Meta().Get("Samd-Error-Code") == "limit-reached" {
							continue
						}
						t.Error(err)
						return
					}
					mu.Lock()
					acked[r.Msg.GetAuthorization().GetSequence()] = r.Msg.GetAuthorization().GetAmount()
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	e.stop()
	var sum int64
	for _, a := range acked {
		sum += a
	}
	if sum > allowance {
		t.Fatalf("authorised %d of %d", sum, allowance)
	}
	if want := int64(allowance / amount); int64(len(acked)) != want {
		t.Fatalf("%d acknowledged, want %d", len(acked), want)
	}
	checkStored(t, e, "op-a/race", acked, allowance)
}

// checkStored opens the stopped samd's state and checks that every
// acknowledged authorisation is there, and that nothing exceeds the
// allowance.
func checkStored(t *testing.T, e *env, device string, acked map[uint64]int64, allowance int64) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(e.dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Authorizations(t.Context(), device)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64]int64{}
	var sum int64
	for _, r := range recs {
		stored[r.Seq] = r.Amount
		sum += r.Amount
	}
	for seq, amt := range acked {
		if stored[seq] != amt {
			t.Errorf("acknowledged authorisation %d (%d) is not in the store", seq, amt)
		}
	}
	if sum > allowance {
		t.Fatalf("the store holds %d authorised of %d", sum, allowance)
	}
	a, err := st.Allowance(t.Context(), device)
	if err != nil || a.Balance != allowance-sum {
		t.Fatalf("balance %d, want %d (%v)", a.Balance, allowance-sum, err)
	}
}

// TestCrash kills samd with SIGKILL at random moments during a stream of
// authorisations, restarts it each time, and checks that nothing
// acknowledged was lost and nothing exceeds the allowance.
func TestCrash(t *testing.T) {
	docs := matrixPolicies()
	docs["op-a.yaml"] = strings.Replace(docs["op-a.yaml"], "per_device_per_day: 3000", "per_device_per_day: 100000000", 1)
	e := newEnv(t, docs)
	e.register("op-a/o")
	e.start()
	ctx := ctxT(t)
	const allowance = 100_000
	if _, err := e.as("officer", "op-a", "o").adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-a/crash", Amount: allowance, Currency: "NOK"})); err != nil {
		t.Fatal(err)
	}
	acked := killDuring(t, e, "op-a", "crash", func(c *clients) (*samdv1.ValueAuthorization, error) {
		r, err := c.val.AuthorizeValue(ctx, valueReq(int64(1+rand.IntN(50)), "owner-ok"))
		if err != nil {
			return nil, err
		}
		return r.Msg.GetAuthorization(), nil
	})
	checkStored(t, e, "op-a/crash", acked, allowance)
	// And samd starts again on the state and audit log the kills left.
	e.start()
	if _, err := e.as("terminal", "op-a", "crash").val.AuthorizeValue(ctx, valueReq(1, "owner-ok")); err != nil {
		t.Fatalf("after the last restart: %v", err)
	}
}

// killDuring runs work in a loop on four connections of the terminal
// operator/device, kills samd with SIGKILL at a random moment, and
// restarts it, five times; it returns the authorisations acknowledged
// (sequence → amount), at least 20 of them. work's error is the end of
// its loop: samd was killed, and that answer was not acknowledged.
func killDuring(t *testing.T, e *env, operator, device string, work func(c *clients) (*samdv1.ValueAuthorization, error)) map[uint64]int64 {
	t.Helper()
	var mu sync.Mutex
	acked := map[uint64]int64{}
	for round := 0; round < 5; round++ {
		if round > 0 {
			e.start()
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			c := e.as("terminal", operator, device)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					a, err := work(c)
					if err != nil {
						return
					}
					mu.Lock()
					acked[a.GetSequence()] = a.GetAmount()
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		e.kill()
		wg.Wait()
	}
	if len(acked) < 20 {
		t.Fatalf("only %d authorisations were acknowledged across the rounds", len(acked))
	}
	return acked
}
