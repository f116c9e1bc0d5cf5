package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

func cert(ca, serial string) state.Certificate {
	return state.Certificate{CA: ca, Serial: serial, Profile: "terminal", Role: "terminal", Operator: "op", Device: "d" + serial,
		NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), Cert: []byte{0x30, 0x00}, Issued: t0}
}

func testPKIRecords(t *testing.T, s state.Store) {
	ctx := context.Background()
	if err := s.RecordCertificate(ctx, cert("nope", "01")); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("certificate of an unknown CA: %v", err)
	}
	for _, name := range []string{"root", "issuing"} {
		if err := s.PutCA(ctx, state.CA{Name: name, Key: "pki/" + name + ":v1", Cert: []byte{1}, CRLURL: "http://x/" + name + ".crl", Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	wantKind(t, s.PutCA(ctx, state.CA{Name: "root", Key: "k", Cert: []byte{1}, Created: t0}), errkind.Exists)
	cas, err := s.CAs(ctx)
	if err != nil || len(cas) != 2 || cas[0].Name != "root" || cas[1].CRLURL != "http://x/issuing.crl" || !cas[0].Created.Equal(t0) {
		t.Fatalf("CAs %+v %v", cas, err)
	}
	c := cert("issuing", "0A")
	c.Renews, c.Key = "09", "vault-transit:transit/op-signer"
	if err := s.RecordCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.RecordCertificate(ctx, c), errkind.Exists)
	got, err := s.Certificate(ctx, "issuing", "0A")
	if err != nil || got.Device != "d0A" || got.Renews != "09" || got.Key != c.Key || !got.NotAfter.Equal(c.NotAfter) || len(got.Cert) != 2 {
		t.Fatalf("certificate %+v %v", got, err)
	}
	_, err = s.Certificate(ctx, "root", "0A")
	wantKind(t, err, errkind.NotFound)
	newer := cert("root", "0B")
	newer.Device, newer.Issued = "d0A", t0.Add(time.Hour)
	if err := s.RecordCertificate(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LatestCertificate(ctx, "terminal", "op", "d0A"); err != nil || got.Serial != "0B" || got.CA != "root" {
		t.Fatalf("latest certificate %+v %v", got, err)
	}
	_, err = s.LatestCertificate(ctx, "signer", "op", "d0A")
	wantKind(t, err, errkind.NotFound)
	other := cert("root", "0C")
	other.Operator, other.Issued = "op-2", t0.Add(2*time.Hour)
	if err := s.RecordCertificate(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    state.CertificateQuery
		want []string
	}{
		{"ok/all-newest-first", state.CertificateQuery{}, []string{"0C", "0B", "0A"}},
		{"ok/limit", state.CertificateQuery{Limit: 1}, []string{"0C"}},
		{"ok/operator", state.CertificateQuery{Operator: "op"}, []string{"0B", "0A"}},
		{"ok/device", state.CertificateQuery{Operator: "op", Device: "d0A"}, []string{"0B", "0A"}},
		{"ok/ca", state.CertificateQuery{CA: "issuing"}, []string{"0A"}},
		{"ok/serial", state.CertificateQuery{Serial: "0C"}, []string{"0C"}},
		{"ok/none", state.CertificateQuery{Operator: "op-2", Device: "d0A"}, nil},
	} {
		got, err := s.Certificates(ctx, c.q)
		var serials []string
		for _, g := range got {
			serials = append(serials, g.Serial)
		}
		if err != nil || fmt.Sprint(serials) != fmt.Sprint(c.want) {
			t.Errorf("certificates %s: %v %v, want %v", c.name, serials, err, c.want)
		}
	}

	// Published CRLs: kept per CA and kind, never replaced by a lower number.
	_, err = s.LatestCRL(ctx, "root", false)
	wantKind(t, err, errkind.NotFound)
	wantKind(t, s.PutCRL(ctx, state.PublishedCRL{CA: "nope", Number: 1, DER: []byte{1}, ThisUpdate: t0, NextUpdate: t0}), errkind.NotFound)
	for _, c := range []state.PublishedCRL{
		{CA: "root", Number: 5, DER: []byte{5}, ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)},
		{CA: "root", Number: 4, DER: []byte{4}, ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)}, // late: ignored
		{CA: "root", Delta: true, Number: 6, DER: []byte{6}, ThisUpdate: t0, NextUpdate: t0.Add(time.Minute)},
	} {
		if err := s.PutCRL(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := s.LatestCRL(ctx, "root", false); err != nil || c.Number != 5 || c.DER[0] != 5 || !c.NextUpdate.Equal(t0.Add(time.Hour)) {
		t.Fatalf("latest complete CRL %+v %v", c, err)
	}
	if c, err := s.LatestCRL(ctx, "root", true); err != nil || c.Number != 6 || !c.Delta {
		t.Fatalf("latest delta CRL %+v %v", c, err)
	}
	if lead, err := s.Lead(ctx, "crl"); err != nil || !lead {
		t.Fatalf("the only process does not lead: %v %v", lead, err)
	}
	if lead, err := s.Lead(ctx, "crl"); err != nil || !lead {
		t.Fatalf("the lead was not kept: %v %v", lead, err)
	}
}

func testRevocations(t *testing.T, s state.Store) {
	ctx := context.Background()
	if err := s.PutCA(ctx, state.CA{Name: "ca", Key: "k", Cert: []byte{1}, Created: t0}); err != nil {
		t.Fatal(err)
	}
	n, err := s.TakeCRLNumber(ctx, "ca", true)
	if err != nil || n != (state.CRLNumber{Number: 1, Base: 1}) {
		t.Fatalf("first CRL number %+v %v", n, err)
	}
	_, err = s.Revoke(ctx, state.Revocation{CA: "nope", Serial: "01", Time: t0, Reason: 1})
	wantKind(t, err, errkind.NotFound) // no such CA
	const total = 2500                 // more than two read batches (1000)
	for i := 1; i <= total; i++ {
		if err := s.RecordCertificate(ctx, cert("ca", fmt.Sprintf("%04X", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 10; i++ {
		r, err := s.Revoke(ctx, state.Revocation{CA: "ca", Serial: fmt.Sprintf("%04X", i), Time: t0.Add(time.Duration(i) * time.Second), Reason: i % 6})
		if err != nil || r.Seq != int64(i) {
			t.Fatalf("revoke %d: %+v %v", i, r, err)
		}
	}
	r, err := s.Revoke(ctx, state.Revocation{CA: "ca", Serial: "0003", Time: t0.Add(time.Hour), Reason: 4})
	if errkind.Of(err) != errkind.Exists || r.Seq != 3 || !r.Time.Equal(t0.Add(3*time.Second)) || r.Reason != 3 {
		t.Fatalf("second revocation of 0003: %+v %v", r, err)
	}
	if r, err := s.Revocation(ctx, "ca", "0004"); err != nil || r.Seq != 4 || r.Reason != 4 || r.FromCounter != 0 {
		t.Fatalf("revocation of 0004: %+v %v", r, err)
	}
	_, err = s.Revocation(ctx, "ca", "0B00")
	wantKind(t, err, errkind.NotFound)
	n, err = s.TakeCRLNumber(ctx, "ca", true)
	if err != nil || n != (state.CRLNumber{Number: 2, HighWater: 10, Base: 2, BaseHighWater: 10}) {
		t.Fatalf("complete CRL number %+v %v", n, err)
	}
	// Concurrent revocations each get their own sequence number.
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for i := 11; i <= total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Revoke(ctx, state.Revocation{CA: "ca", Serial: fmt.Sprintf("%04X", i), Time: t0, Reason: 1})
			errs <- err
		}()
		if i%64 == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.TakeCRLNumber(ctx, "ca", false)
	if err != nil || d != (state.CRLNumber{Number: 3, HighWater: total, Base: 2, BaseHighWater: 10}) {
		t.Fatalf("delta CRL number %+v %v", d, err)
	}
	var seqs []int64
	seen := map[string]bool{}
	err = s.Revocations(ctx, "ca", d.BaseHighWater, d.HighWater, func(r state.Revocation) error {
		seqs = append(seqs, r.Seq)
		seen[r.Serial] = true
		return nil
	})
	if err != nil || len(seqs) != total-10 || len(seen) != total-10 || seqs[0] != 11 || seqs[len(seqs)-1] != total {
		t.Fatalf("delta revocations: %d (%d distinct), %v", len(seqs), len(seen), err)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("revocations out of order at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}
	var upTo3 []string
	if err := s.Revocations(ctx, "ca", 0, 3, func(r state.Revocation) error { upTo3 = append(upTo3, r.Serial); return nil }); err != nil || fmt.Sprint(upTo3) != "[0001 0002 0003]" {
		t.Fatalf("revocations up to 3: %v %v", upTo3, err)
	}
	if err := s.RecordCertificate(ctx, cert("ca", "F000")); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Revoke(ctx, state.Revocation{CA: "ca", Serial: "F000", Time: t0, Reason: 1, FromCounter: 1 << 40}); err != nil || r.Seq != total+1 {
		t.Fatalf("revocation from a counter: %+v %v", r, err)
	}
	if r, err := s.Revocation(ctx, "ca", "F000"); err != nil || r.FromCounter != 1<<40 {
		t.Fatalf("revocation from a counter read back: %+v %v", r, err)
	}
	// A serial the CA signed outside samd's records is revoked too, and
	// lands on the next CRL like any other.
	if r, err := s.Revoke(ctx, state.Revocation{CA: "ca", Serial: "7E577E57", Time: t0, Reason: 1}); err != nil || r.Seq != total+2 {
		t.Fatalf("revocation of an unrecorded serial: %+v %v", r, err)
	}
	_, err = s.Revoke(ctx, state.Revocation{CA: "ca", Serial: "7E577E57", Time: t0, Reason: 4})
	wantKind(t, err, errkind.Exists)
	n, err = s.TakeCRLNumber(ctx, "ca", true)
	if err != nil || n.HighWater != total+2 {
		t.Fatalf("CRL number after the unrecorded serial: %+v %v", n, err)
	}
	var last string
	if err := s.Revocations(ctx, "ca", total+1, n.HighWater, func(r state.Revocation) error { last = r.Serial; return nil }); err != nil || last != "7E577E57" {
		t.Fatalf("the unrecorded serial among the revocations: %q %v", last, err)
	}
}

func testEnrolmentToken(t *testing.T, s state.Store) {
	ctx := context.Background()
	if err := s.PutCA(ctx, state.CA{Name: "issuing", Key: "k", Cert: []byte{1}, Created: t0}); err != nil {
		t.Fatal(err)
	}
	tok := state.EnrolmentToken{Hash: []byte("h1"), CA: "issuing", Profile: "terminal", Role: "terminal", Operator: "op", Device: "d1",
		Expires: t0.Add(time.Hour), Created: t0, CreatedBy: "officer/op/o1"}
	if err := s.AddEnrolmentToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.AddEnrolmentToken(ctx, tok), errkind.Exists)
	_, err := s.EnrolmentToken(ctx, []byte("nope"), t0)
	wantKind(t, err, errkind.NotFound)
	wantKind(t, s.RedeemEnrolmentToken(ctx, []byte("nope"), t0, cert("issuing", "01")), errkind.NotFound)
	if got, err := s.EnrolmentToken(ctx, []byte("h1"), t0); err != nil || got.Device != "d1" || got.Profile != "terminal" || got.CreatedBy != "officer/op/o1" || !got.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("token %+v %v", got, err)
	}
	// A certificate that cannot be recorded leaves the token unspent.
	wantKind(t, s.RedeemEnrolmentToken(ctx, []byte("h1"), t0, cert("no-such-ca", "01")), errkind.NotFound)
	// Eight concurrent redemptions: exactly one wins, and only its
	// certificate is recorded.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := ""
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serial := fmt.Sprintf("%02X", 0x10+i)
			err := s.RedeemEnrolmentToken(ctx, []byte("h1"), t0.Add(time.Minute), cert("issuing", serial))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && won == "":
				won = serial
			case err == nil:
				t.Errorf("a second redemption succeeded (%s after %s)", serial, won)
			case errkind.Of(err) != errkind.Denied:
				t.Errorf("redeem: %v", err)
			}
		}()
	}
	wg.Wait()
	if won == "" {
		t.Fatal("no redemption succeeded")
	}
	for i := range 8 {
		serial := fmt.Sprintf("%02X", 0x10+i)
		_, err := s.Certificate(ctx, "issuing", serial)
		if (serial == won) != (err == nil) {
			t.Errorf("certificate %s (winner %s): %v", serial, won, err)
		}
	}
	_, err = s.EnrolmentToken(ctx, []byte("h1"), t0)
	wantKind(t, err, errkind.Denied)
	tok.Hash = []byte("h2")
	if err := s.AddEnrolmentToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.RedeemEnrolmentToken(ctx, []byte("h2"), t0.Add(time.Hour), cert("issuing", "20")), errkind.Denied) // expired
}

func testSequence(t *testing.T, s state.Store) {
	ctx := context.Background()
	var got []uint64
	for range 5 {
		n, err := s.NextSequence(ctx, "files/a", 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[1 2 3 1 2]" {
		t.Fatalf("sequence with upper limit 3: %v", got)
	}
	if n, err := s.NextSequence(ctx, "files/b", 999999999); err != nil || n != 1 {
		t.Fatalf("another sequence: %d %v", n, err)
	}
	_, err := s.NextSequence(ctx, "files/c", 0)
	wantKind(t, err, errkind.InvalidInput)
	// Concurrent takers never get the same number.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.NextSequence(ctx, "files/d", 1000)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || seen[n] {
				t.Errorf("sequence number %d: %v (seen before: %v)", n, err, seen[n])
			}
			seen[n] = true
		}()
	}
	wg.Wait()
}

// CheckFileSequencesMigrated checks a store opened on a database that held,
// before sqlstore.MigrateFileSequences, the sequences file/TR0004 at
// 999999999, file/TX0100 at 5 and signer/ca/1A at 3: each file sequence
// continues in both file types of its Part 19 series (TR0004 1 and 2
// reach 10^9, read as 000000000; TX0100 1 and 2 reach 6), nothing is left
// under the old names, and other sequences are untouched.
func CheckFileSequencesMigrated(t *testing.T, s state.Store) {
	t.Helper()
	ctx := context.Background()
	for name, want := range map[string]uint64{
		"file/TR00041": 1_000_000_000, "file/TR00042": 1_000_000_000,
		"file/TX01001": 6, "file/TX01002": 6,
		"file/TR0004": 1, "file/TX0100": 1, // new sequences: the old ones moved
		"signer/ca/1A": 4,
	} {
		if n, err := s.NextSequence(ctx, name, 1_000_000_000); err != nil || n != want {
			t.Errorf("after the migration, the next of %s is %d (%v), want %d", name, n, err, want)
		}
	}
}
