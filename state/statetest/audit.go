package statetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/keys"
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
			for i := range 3 {
				r := &audit.Record{Time: t0, RequestID: fmt.Sprintf("%s-%d-%d", chain, round, i), Method: "/samd.v1.Test/Call", Outcome: audit.OutcomeOK,
					Caller: &audit.Caller{Role: "terminal", Operator: "op", Device: "d"}}
				if err := sink.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := sink.Checkpoint(ctx, key, "audit/test/key:v1", t0); err != nil {
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
		if n, err := audit.VerifyCheckpoints(recs, &key.PublicKey); err != nil || n != 2 {
			t.Fatalf("%s: %d checkpoints, %v", chain, n, err)
		}
	}
	wantKind(t, s.AppendAudit(ctx, "samd-1", 3, []byte("{}")), keys.KindExists)
}
