package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

func macsOf(c *clients) samdv1connect.MACServiceClient {
	return samdv1connect.NewMACServiceClient(c.http, "https://"+c.addr, connect.WithGRPC())
}

// TestLimitsBusyAfterFailedVerifications is issue 14, item 3, against a
// running samd with limits.busy_after_failure: a VerifyObjects batch of
// wrong 4-byte legacy-retail MACs is answered (every MAC invalid) and
// leaves its caller busy, as one wrong SUN message and one wrong value
// record do; the busy answer is the stable code busy, over gRPC and in
// the Samd-Error-Code header of raw JSON. A caller whose MACs verify is
// never slowed. busy_after_failure is an hour, so nothing here is timed.
func TestLimitsBusyAfterFailedVerifications(t *testing.T) {
	e := newEnv(t, nil)
	e.setLimits(map[string]any{"busy_after_failure": "1h"})
	e.start()
	ctx := ctxT(t)

	term := e.as("terminal", "dev-operator", "dev-terminal-1")
	var objs []*samdv1.DataObject
	for i := 0; i < 100; i++ {
		objs = append(objs, &samdv1.DataObject{Type: 1, CardId: fmt.Sprintf("04%012X", i), Sequence: uint32(i), ProductOwner: "dev-operator", Data: fmt.Sprintf("%032X", i*7919)})
	}
	sealed, err := macsOf(term).SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "legacy-retail", Objects: objs}))
	if err != nil || sealed.Msg.GetFailed() != 0 {
		t.Fatalf("seal: %v", err)
	}
	wrong := make([]*samdv1.DataObject, len(objs))
	for i, r := range sealed.Msg.GetResults() {
		objs[i].Mac = r.GetMac()
		wrong[i] = proto.Clone(objs[i]).(*samdv1.DataObject)
		m := unhexT(t, r.GetMac())
		m[3] ^= byte(i + 1) // 100 guesses of a 4-byte MAC
		wrong[i].Mac = hex.EncodeToString(m)
	}
	good := connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: "legacy-retail", Objects: objs})

	t.Run("ok/verified-macs-never-busy", func(t *testing.T) {
		c := macsOf(e.as("clearing-house", "dev-clearing", "ch-honest"))
		for i := 0; i < 3; i++ {
			if v, err := c.VerifyObjects(ctx, good); err != nil || v.Msg.GetInvalid() != 0 {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})

	t.Run("fail/batch-of-wrong-macs", func(t *testing.T) {
		guesser := e.as("clearing-house", "dev-clearing", "ch-guesser")
		v, err := macsOf(guesser).VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: "legacy-retail", Objects: wrong}))
		if err != nil || v.Msg.GetInvalid() != 100 {
			t.Fatalf("the batch: %v, %d invalid", err, v.Msg.GetInvalid())
		}
		_, err = macsOf(guesser).VerifyObjects(ctx, good)
		if code(err) != "busy" {
			t.Fatalf("after 100 wrong MACs: %v", err)
		}
		// Raw Connect JSON: the stable code in the header.
		body, _ := json.Marshal(map[string]any{"profile": "legacy-retail", "objects": []map[string]any{{"type": 1, "card_id": objs[0].CardId, "product_owner": "dev-operator", "data": objs[0].Data, "mac": objs[0].Mac}}})
		resp, err := guesser.http.Post("https://"+e.addr+"/samd.v1.MACService/VerifyObjects", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Samd-Error-Code") != "busy" || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("raw JSON after the batch: %d %q", resp.StatusCode, resp.Header.Get("Samd-Error-Code"))
		}
		// The record of the batch counts its failures.
		found := false
		for _, r := range readAudit(t, e) {
			if r.Method == "/samd.v1.MACService/VerifyObjects" && r.Caller != nil && r.Caller.Device == "ch-guesser" && r.Outcome == "ok" {
				found = r.FailedChecks == 100
			}
		}
		if !found {
			t.Fatal("no audit record of the batch with failed_checks 100")
		}
	})

	t.Run("fail/one-wrong-sun", func(t *testing.T) {
		sys, aid, uid := []byte("samd-test-sun-tags"), unhexT(t, "F48EE1"), unhexT(t, "04DE5F1EACC040")
		tag := &cardsim.SUN{UID: uid, Counter: 10, Rand: rand.Reader,
			MetaKey: personalise(t, keys.AES128, exampleAES, append(append([]byte(nil), aid...), sys...)),
			FileKey: personalise(t, keys.AES128, exampleAES, append(append(append([]byte(nil), uid...), aid...), sys...))}
		tap := func(forge bool) *connect.Request[samdv1.VerifySUNRequest] {
			picc, enc, in, mac := tag.Tap()
			if forge {
				mac[7] ^= 1
			}
			return connect.NewRequest(&samdv1.VerifySUNRequest{Profile: "test-tags", PiccData: hex.EncodeToString(picc), EncFileData: hex.EncodeToString(enc), MacInput: hex.EncodeToString(in), Sdmmac: hex.EncodeToString(mac)})
		}
		c := e.cardAs("terminal", "dev-operator", "dev-terminal-sun")
		if _, err := c.VerifySUN(ctx, tap(false)); err != nil {
			t.Fatal(err)
		}
		_, err := c.VerifySUN(ctx, tap(true))
		if code(err) != "check-failed" {
			t.Fatalf("a forged SDMMAC: %v", err)
		}
		if _, err := c.VerifySUN(ctx, tap(false)); code(err) != "busy" {
			t.Fatalf("after a forged SDMMAC: %v", err)
		}
	})

	t.Run("fail/one-wrong-value-record", func(t *testing.T) {
		a, err := term.val.AuthorizeValue(ctx, valueReq(100, "dev-operator"))
		if err != nil {
			t.Fatal(err)
		}
		rec := a.Msg.GetAuthorization()
		forged := proto.Clone(rec).(*samdv1.ValueAuthorization)
		forged.Amount = 50000
		bo := e.as("back-office", "dev-operator", "bo-1")
		verify := func(r *samdv1.ValueAuthorization) error {
			_, err := bo.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: r}))
			return err
		}
		if err := verify(rec); err != nil {
			t.Fatal(err)
		}
		if err := verify(forged); code(err) != "check-failed" {
			t.Fatalf("a forged record: %v", err)
		}
		if err := verify(rec); code(err) != "busy" {
			t.Fatalf("after a forged record: %v", err)
		}
	})
}

// cmacCount reads how many CMACs samd has asked its HSM for (0 before
// the first, when the series is not yet there).
func cmacCount(t *testing.T, e *env) int {
	t.Helper()
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `samd_hsm_call_duration_seconds_count{op="CMAC"} `); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestKCVBatchInvalidItemsReachNoHSM is issue 14, item 16: the inputs of a
// KCV batch that do not parse fail alone and are never diversified — the
// HSM computes one CMAC per valid AES-128 input and none for the others.
func TestKCVBatchInvalidItemsReachNoHSM(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	term := e.as("terminal", "dev-operator", "dev-terminal-1")
	before := cmacCount(t, e)
	res, err := term.div.DiversifiedKeyCheckValues(ctx, connect.NewRequest(&samdv1.DiversifiedKeyCheckValuesRequest{
		MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1},
		Inputs: []*samdv1.DiversificationInput{
			nxpInput(), {Uid: "zz"}, {Uid: "04782E"}, {Uid: "04782E21801D81", Aid: "3042F5", SystemIdentifier: "4E585020416275"}, {},
		}}))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Msg.GetResults()
	if r[0].GetKcv() == "" || r[3].GetKcv() == "" || res.Msg.GetFailed() != 3 {
		t.Fatalf("batch %v", res.Msg)
	}
	for _, i := range []int{1, 2, 4} {
		if r[i].GetCode() != "invalid-input" {
			t.Errorf("input %d: %v", i, r[i])
		}
	}
	if n := cmacCount(t, e) - before; n != 2 {
		t.Fatalf("the HSM computed %d CMACs for 2 valid and 3 invalid inputs, want 2", n)
	}
}
