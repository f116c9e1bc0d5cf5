package authority_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
)

// TestFailedMACsAreCounted: every MAC of a batch that does not verify is
// a failed verification in the request's audit note — what the server
// makes the caller wait for — though the batch itself succeeds; a
// malformed object or one without a MAC is no verification at all and
// touches no key.
func TestFailedMACsAreCounted(t *testing.T) {
	f := newFixture(t)
	const legacy = "mac/dev/legacy-master:v1"
	ref, _ := keys.ParseLabel("samd:" + legacy)
	req := policies.Request{Keys: []keys.Ref{ref}, ProductOwners: []string{"dev-operator"}}
	objs := make([]mac.Object, 12)
	for i := range objs {
		objs[i] = mac.Object{Type: 1, CardID: unhex(fmt.Sprintf("04%012X", i)), Seq: uint32(i), Owner: "dev-operator", Data: []byte(fmt.Sprintf("ticket %d", i))}
	}
	sealed, _, err := f.a.SealObjects(context.Background(), terminal1, f.decide(t, terminal1, policies.OpMACSeal, req), "legacy-retail", objs)
	if err != nil {
		t.Fatal(err)
	}
	macs := make([][]byte, len(objs))
	for i, r := range sealed {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		macs[i] = append([]byte(nil), r.MAC...)
		if i < 10 {
			macs[i][0] ^= 0x5A // ten guesses of a 4-byte MAC
		}
	}
	macs[11] = nil // no MAC: fails as invalid input
	note := &audit.Note{}
	ctx := audit.WithNote(context.Background(), note)
	uses := f.usage(t, legacy)
	res, _, err := f.a.VerifyObjects(ctx, terminal1, f.decide(t, terminal1, policies.OpMACVerify, req), "legacy-retail", objs, macs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		switch {
		case i < 10 && errkind.Of(r.Err) != errkind.CheckFailed,
			i == 10 && r.Err != nil,
			i == 11 && errkind.Of(r.Err) != errkind.InvalidInput:
			t.Errorf("object %d: %v", i, r.Err)
		}
	}
	if note.Failures() != 10 {
		t.Fatalf("the note counts %d failed verifications, want 10", note.Failures())
	}
	if n := f.usage(t, legacy) - uses; n != 11 {
		t.Fatalf("verifying 11 MACs counted %d uses", n)
	}
}
