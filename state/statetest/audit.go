package statetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

func testAudit(t *testing.T, s state.Store) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for round := range 2 { // the second round continues the chains
		for _, chain := range []string{"samd-1", "samd-2"} {
			sink, err := audit.OpenStore(ctx, s, chain)
			if err != nil {
				t.Fatal(err)
			}
			sink.SetCheckpoints(audit.CheckpointSigner{Signer: key, Key: "audit/test/key:v1", Now: func() time.Time { return t0 }})
			for i := range 3 {
				r := &audit.Record{Time: t0, RequestID: fmt.Sprintf("%s-%d-%d", chain, round, i), Method: "/samd.v1.Test/Call", Outcome: audit.OutcomeOK,
					Caller: &audit.Caller{Role: "terminal", Operator: "op", Device: "d"}}
				if err := sink.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := sink.Checkpoint(ctx, true); err != nil {
				t.Fatal(err)
			}
			sink.Close()
		}
	}
	chains, err := s.AuditChains(ctx)
	if err != nil || fmt.Sprint(chains) != "[samd-1 samd-2]" {
		t.Fatalf("chains %v %v", chains, err)
	}
	for _, chain := range chains {
		recs, err := audit.ReadStore(ctx, s, chain)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 8 || recs[7].Seq != 8 {
			t.Fatalf("%s: %d records", chain, len(recs))
		}
		if err := audit.Verify(recs); err != nil {
			t.Fatalf("%s: %v", chain, err)
		}
		if cov, err := audit.VerifyCheckpoints(recs, &key.PublicKey); err != nil || cov.Checkpoints != 2 || !cov.Final || cov.After != 0 {
			t.Fatalf("%s: %+v, %v", chain, cov, err)
		}
	}
	wantKind(t, s.AppendAudit(ctx, "samd-1", 3, []byte("{}")), errkind.Exists)

	// The stored bytes are what is verified: a row that decodes to a
	// record with a correct hash but is not its canonical encoding (a
	// space added) is refused by readers, and the chain is not continued.
	recs, err := audit.ReadStore(ctx, s, "samd-2")
	if err != nil {
		t.Fatal(err)
	}
	forged := chainNext(t, recs[len(recs)-1])
	forged = bytes.Replace(forged, []byte(`"outcome":`), []byte(`"outcome": `), 1)
	if err := s.AppendAudit(ctx, "samd-2", recs[len(recs)-1].Seq+1, forged); err != nil {
		t.Fatal(err)
	}
	var be *audit.BrokenError
	if _, err := audit.ReadStore(ctx, s, "samd-2"); !errors.As(err, &be) || be.Line != 9 {
		t.Fatalf("a non-canonical row was read: %v", err)
	}
	if _, err := audit.OpenStore(ctx, s, "samd-2"); !errors.As(err, &be) || be.Line != 9 {
		t.Fatalf("a chain with a non-canonical row was continued: %v", err)
	}
}

// chainNext returns the line of a valid record following last, computed
// as the package documentation defines it: SHA-256(prev ‖ canonical JSON
// with an empty hash).
func chainNext(t *testing.T, last audit.Record) []byte {
	t.Helper()
	r := audit.Record{Seq: last.Seq + 1, Time: t0, RequestID: "forged", Method: "/samd.v1.Test/Call", Outcome: audit.OutcomeOK, Prev: last.Hash}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte(last.Hash), b...))
	r.Hash = hex.EncodeToString(h[:])
	if b, err = json.Marshal(&r); err != nil {
		t.Fatal(err)
	}
	return b
}
