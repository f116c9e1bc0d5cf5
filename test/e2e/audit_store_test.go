package e2e

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"

	"github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/config"
)

// TestAuditInStateStore keeps the audit log in the state store (SQLite
// here; PostgreSQL in a cluster): `samd audit verify` proves the chain and
// its signed checkpoints, and names the record where an edit, a deletion
// or a reordering in the table breaks it; `samd audit export` answers from
// it.
func TestAuditInStateStore(t *testing.T) {
	e := newEnv(t, nil)
	cfgPath := filepath.Join(e.dir, "samd.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Store = "state"
	b, _ := yaml.Marshal(cfg)
	os.WriteFile(cfgPath, b, 0o600)
	e.start()
	term := []string{"--dev", e.dir, "--as", "terminal"}
	for range 3 {
		e.mustClient(t, term, "kcv", "--key", "an10922/test/example-aes128:v1", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu")
	}
	if out, err := e.client(t, term, "kcv", "--key", "desfire/prod/none:v1", "--uid", "04782E21801D80"); err == nil {
		t.Fatalf("a call for a key outside the policy succeeded:\n%s", out)
	}
	// The officers' search reads the same chain, verified.
	found, err := e.as("officer", "dev-operator", "dev-officer-1").offs.SearchAudit(ctxT(t), connect.NewRequest(&samdv1.SearchAuditRequest{Outcome: "denied"}))
	if err != nil || found.Msg.GetMatched() != 1 || found.Msg.GetRecords()[0].GetKeys()[0] != "desfire/prod/none:v1" ||
		len(found.Msg.GetChains()) != 1 || !found.Msg.GetChains()[0].GetIntact() || !found.Msg.GetChains()[0].GetCheckpointKey() {
		t.Fatalf("SearchAudit over the store: %v %+v", err, found)
	}
	e.stop() // a clean shutdown ends with a signed checkpoint
	if _, err := os.Stat(filepath.Join(e.dir, "data", "audit.jsonl")); err == nil {
		t.Fatal("the audit log was written to the file too")
	}
	verify := func() (string, error) {
		out, err := exec.Command(e.bin, "audit", "verify", "--config", cfgPath).CombinedOutput()
		return string(out), err
	}
	out, err := verify()
	if err != nil || !strings.Contains(out, "intact") || !strings.Contains(out, "checkpoints: 1, all signed") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	exp, err := exec.Command(e.bin, "audit", "export", "--config", cfgPath, "--outcome", "denied").Output()
	if err != nil || strings.Count(strings.TrimSpace(string(exp)), "\n") != 0 || !strings.Contains(string(exp), "desfire/prod/none") {
		t.Fatalf("audit export of the denied call: %v\n%s", err, exp)
	}

	db, err := sql.Open("sqlite", filepath.Join(e.dir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	record := func(seq int) []byte {
		var b []byte
		if err := db.QueryRow(`SELECT record FROM audit_record WHERE seq = ?`, seq).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(seq int, b []byte) {
		if _, err := db.Exec(`UPDATE audit_record SET record = ? WHERE seq = ?`, b, seq); err != nil {
			t.Fatal(err)
		}
	}
	r2, r3 := record(2), record(3)
	var n3 int64
	if err := db.QueryRow(`SELECT n FROM audit_record WHERE seq = 3`).Scan(&n3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		tamper func()
		undo   func()
		want   string
	}{
		{"edit", func() { set(2, []byte(strings.Replace(string(r2), `"outcome":"ok"`, `"outcome":"denied"`, 1))) }, func() { set(2, r2) }, "line 2 (seq 2)"},
		{"delete", func() { db.Exec(`DELETE FROM audit_record WHERE seq = 3`) }, func() {
			db.Exec(`INSERT INTO audit_record (n, chain, seq, record) VALUES (?, 'samd-dev', 3, ?)`, n3, r3)
		}, "line 3 (seq 4)"},
		{"reorder", func() { set(2, r3); set(3, r2) }, func() { set(2, r2); set(3, r3) }, "line 2 (seq 3)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.tamper()
			out, err := verify()
			c.undo()
			if err == nil || !strings.Contains(out, c.want) {
				t.Fatalf("audit verify after %s: %v\n%s", c.name, err, out)
			}
		})
	}
	if out, err := verify(); err != nil {
		t.Fatalf("audit verify after restoring: %v\n%s", err, out)
	}
}
