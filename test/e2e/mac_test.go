package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
)

func (d *daemon) macClient(t *testing.T, as string) samdv1connect.MACServiceClient {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: d.tlsFor(t, as), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return samdv1connect.NewMACServiceClient(&http.Client{Transport: tr}, "https://"+d.addr, connect.WithGRPC())
}

// TestSealAndVerify: a terminal seals a batch of APTA objects, the
// clearing house verifies it, a tampered object in a batch is reported
// exactly, and the clearing house may not seal.
func TestSealAndVerify(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term, ch := d.macClient(t, "terminal"), d.macClient(t, "clearing-house")

	for _, profile := range []string{"apta-object", "product-entity", "legacy-retail"} {
		t.Run(profile, func(t *testing.T) {
			var objs []*samdv1.DataObject
			for i := 0; i < 200; i++ {
				objs = append(objs, &samdv1.DataObject{Type: 1, CardId: fmt.Sprintf("04%012X", i), Sequence: uint32(i), ProductOwner: "dev-operator",
					Data: fmt.Sprintf("%032X", i*7919)})
			}
			res, err := term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: profile, Objects: objs}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetFailed() != 0 || len(res.Msg.GetResults()) != len(objs) || res.Msg.GetKey().GetName() == "" {
				t.Fatalf("seal: %d failed of %d", res.Msg.GetFailed(), len(res.Msg.GetResults()))
			}
			for i, r := range res.Msg.GetResults() {
				objs[i].Mac = r.GetMac()
			}
			v, err := ch.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: profile, Objects: objs}))
			if err != nil || v.Msg.GetInvalid() != 0 {
				t.Fatalf("verify: %v, %d invalid", err, v.Msg.GetInvalid())
			}
			// Tamper with one object's data, move another's seal to another
			// card, and send one malformed: exactly those three fail.
			bad := make([]*samdv1.DataObject, len(objs))
			for i, o := range objs {
				bad[i] = proto.Clone(o).(*samdv1.DataObject)
			}
			bad[37].Data = fmt.Sprintf("%032X", 1)
			bad[101].CardId = bad[102].CardId
			bad[150].CardId = "zz"
			v, err = ch.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: profile, Objects: bad}))
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range v.Msg.GetResults() {
				want := i != 37 && i != 101 && i != 150
				if r.GetValid() != want {
					t.Errorf("object %d valid=%v (%s)", i, r.GetValid(), r.GetMessage())
				}
			}
			if v.Msg.GetResults()[37].GetCode() != "check-failed" || v.Msg.GetResults()[150].GetCode() != "invalid-input" || v.Msg.GetInvalid() != 3 {
				t.Errorf("codes %q %q, %d invalid", v.Msg.GetResults()[37].GetCode(), v.Msg.GetResults()[150].GetCode(), v.Msg.GetInvalid())
			}
		})
	}
	_, err := ch.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-object", Objects: []*samdv1.DataObject{{CardId: "04782E21801D80", ProductOwner: "dev-operator", Data: "00112233445566778899AABBCCDDEEFF"}}}))
	check(t, err, outcome{"denied", "role clearing-house may not call"})
	_, err = term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-object", Objects: []*samdv1.DataObject{{CardId: "04782E21801D80", ProductOwner: "no-pto:999", Data: "00112233445566778899AABBCCDDEEFF"}}}))
	check(t, err, outcome{"denied", "policy: product-owner:"})
	_, err = term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "nope", Objects: []*samdv1.DataObject{{CardId: "04", Data: "00"}}}))
	check(t, err, outcome{"invalid-input", "no seal profile"})
	res, err := term.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: "apta-object", Objects: []*samdv1.DataObject{{CardId: "04782E21801D80", ProductOwner: "dev-operator", Data: "0011"}}}))
	if err != nil || res.Msg.GetResults()[0].GetCode() != "invalid-input" {
		t.Fatalf("a 2-byte APTA object: %v %v", err, res.Msg)
	}
}

// TestKCVBatch: the batch diversification answers each input as the
// single call does, and fails a short input alone.
func TestKCVBatch(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: d.tlsFor(t, "terminal"), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := samdv1connect.NewDiversificationServiceClient(&http.Client{Transport: tr}, "https://"+d.addr, connect.WithGRPC())
	master := &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}
	res, err := c.DiversifiedKeyCheckValues(ctx, connect.NewRequest(&samdv1.DiversifiedKeyCheckValuesRequest{MasterKey: master, Inputs: []*samdv1.DiversificationInput{
		nxpInput(), {Uid: "04782E21801D80"}, {Uid: "04782E21801D81", Aid: "3042F5", SystemIdentifier: "4E585020416275"},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	single, err := c.DiversifiedKeyCheckValue(ctx, connect.NewRequest(&samdv1.DiversifiedKeyCheckValueRequest{MasterKey: master, Input: nxpInput()}))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Msg.GetResults()
	if len(r) != 3 || r[0].GetKcv() != single.Msg.GetKcv() || r[1].GetCode() != "invalid-input" || r[2].GetKcv() == "" || r[2].GetKcv() == r[0].GetKcv() || res.Msg.GetFailed() != 1 {
		t.Fatalf("batch %v", res.Msg)
	}
}
