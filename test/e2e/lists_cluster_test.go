package e2e

import (
	"bytes"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/lists"
)

// TestListCluster: three replicas on one token and one PostgreSQL take
// list changes through all of them; one builds at a time, and versions
// 1..N are each numbered, signed and published exactly once — also after
// the replica that built them is killed with SIGKILL and another takes
// over; every replica serves the same documents.
func TestListCluster(t *testing.T) {
	e, dsn, reps, _ := startCluster(t)
	ctx := ctxT(t)
	if _, err := e.asAt(reps[0].addr, "officer", "dev-operator", "dev-officer-1").pki.CreateSigner(ctx, connect.NewRequest(&samdv1.CreateSignerRequest{
		Ca: "dev-scheme", Operator: "dev-operator", Signer: "cluster-lists", Profile: "list-signer"})); err != nil {
		t.Fatal(err)
	}
	alive := []int{0, 1, 2}
	published := func(r *replica) int { return strings.Count(r.out.String(), `msg="negative list published"`) }
	var version uint64
	round := func(n int) {
		t.Helper()
		for _, i := range alive {
			bo := e.asAt(reps[i].addr, "back-office", "dev-operator", "bo-1")
			if _, err := bo.lists.AddEntries(ctx, connect.NewRequest(&samdv1.ChangeListRequest{Kind: "card-hotlist",
				Entries: []*samdv1.ListEntry{{Card: fmt.Sprintf("04%04X%02X", n, i), Action: "block", Reason: 2}}})); err != nil {
				t.Fatal(err)
			}
		}
		// Every change waits for a version; wait for the one that has them
		// (on one connection: a client's connections are limited).
		poll := e.asAt(reps[alive[0]].addr, "back-office", "dev-operator", "bo-1")
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			st, err := poll.lists.ListStatus(ctx, connect.NewRequest(&samdv1.ListStatusRequest{Kind: "card-hotlist"}))
			if err != nil {
				t.Fatal(err)
			}
			if st.Msg.GetPending() == 0 && st.Msg.GetVersion() > version {
				version = st.Msg.GetVersion()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no version took the changes: %v", n, st.Msg)
			}
		}
	}
	for n := 1; n <= 3; n++ {
		round(n)
	}
	// One replica built them all; it goes, another takes over.
	leader := -1
	for _, i := range alive {
		if published(reps[i]) > 0 {
			if leader >= 0 {
				t.Fatalf("replicas %d and %d both published versions", leader+1, i+1)
			}
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no replica published a version")
	}
	reps[leader].cmd.Process.Signal(syscall.SIGKILL)
	<-reps[leader].proc.exited
	var rest []int
	for _, i := range alive {
		if i != leader {
			rest = append(rest, i)
		}
	}
	alive = rest
	for n := 4; n <= 6; n++ {
		round(n)
	}
	if published(reps[alive[0]])+published(reps[alive[1]]) == 0 {
		t.Fatal("no surviving replica took over")
	}

	// Versions 1..N, each once, each published.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version, published IS NOT NULL FROM list_version WHERE owner = 'dev-operator' AND kind = 'card-hotlist' ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	var want uint64 = 1
	for rows.Next() {
		var v uint64
		var pub bool
		if err := rows.Scan(&v, &pub); err != nil {
			t.Fatal(err)
		}
		if v != want || !pub {
			t.Fatalf("version %d (published %v) where %d was due", v, pub, want)
		}
		want++
	}
	rows.Close()
	if want-1 != version {
		t.Fatalf("versions 1..%d in the database, %d served", want-1, version)
	}
	// Each version signed once, in all the replicas' audit logs together.
	signed := map[string]int{}
	for n := 1; n <= 3; n++ {
		recs, err := audit.ReadFile(filepath.Join(e.dir, fmt.Sprintf("data-%d", n), "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Method == "samd.lists/SignList" && r.Outcome == audit.OutcomeOK {
				signed[r.Inputs[0].Name]++
			}
		}
	}
	for v := uint64(1); v <= version; v++ {
		if name := fmt.Sprintf("card-hotlist/dev-operator/%d", v); signed[name] != 1 {
			t.Errorf("version %d signed %d times", v, signed[name])
		}
	}
	// Every surviving replica serves the same newest version, which
	// verifies and holds every change.
	var first []byte
	for _, i := range alive {
		doc := fetchFrom(t, reps[i].pki, fmt.Sprintf("/lists/dev-operator/card-hotlist/%d.bin", version))
		sig := fetchFrom(t, reps[i].pki, fmt.Sprintf("/lists/dev-operator/card-hotlist/%d.p7s", version))
		if first == nil {
			first = doc
			v, err := lists.Verify(bytes.NewReader(doc), sig, lists.VerifyOptions{Roots: e.roots, Owner: "dev-operator", Kind: lists.KindCardHotlist, Now: time.Now()})
			if err != nil || v.Trailer.Records != 3*3+3*2 {
				t.Fatalf("version %d: %+v %v", version, v, err)
			}
		} else if !bytes.Equal(doc, first) {
			t.Fatalf("replicas %d and %d serve different documents of version %d", alive[0]+1, i+1, version)
		}
	}
}
