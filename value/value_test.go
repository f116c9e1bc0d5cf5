package value_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
	"github.com/samd-io/samd/value"
)

// softCMAC is an in-memory CMACer for this test (the daemon uses the HSM).
type softCMAC struct{ key []byte }

func (s softCMAC) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	b, _ := aes.NewCipher(s.key)
	return cmac.Sum(b, msg)
}

var record = value.Record{
	Operator: "no-pto:042", Device: "VAL-000123", Seq: 7, Amount: 25000, Currency: "NOK",
	Owner: "no-pto:001", Purpose: "load", Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
}

// TestEncoding checks the encoding against the byte layout written in the
// package documentation, held in testdata/record.json.
func TestEncoding(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "record.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Encoding string }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	got, err := record.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(strings.Join(strings.Fields(f.Encoding), ""))
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %X\nwant %X", got, want)
	}
}

// TestSealAgainstOpenSSL seals with a known key and checks the MAC with
// OpenSSL's CMAC, then checks tampering is caught.
func TestSealAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if softhsmtest.Required() {
			t.Fatal("openssl is required")
		}
		t.Skip("no openssl")
	}
	key := "2B7E151628AED2A6ABF7158809CF4F3C"
	kb, _ := hex.DecodeString(key)
	k := keys.Key{Role: keys.RoleMAC, Algorithm: keys.AES128}
	seal, err := value.Seal(context.Background(), softCMAC{kb}, k, record)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := record.Encode()
	f := filepath.Join(t.TempDir(), "rec")
	os.WriteFile(f, enc, 0o600)
	out, err := exec.Command("openssl", "mac", "-cipher", "AES-128-CBC", "-macopt", "hexkey:"+key, "-in", f, "CMAC").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ToUpper(hex.EncodeToString(seal)); got != strings.TrimSpace(string(out)) {
		t.Fatalf("seal %s, openssl %s", got, out)
	}
	if err := value.Verify(context.Background(), softCMAC{kb}, k, record, seal); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*value.Record){
		"amount": func(r *value.Record) { r.Amount++ }, "device": func(r *value.Record) { r.Device = "VAL-000124" },
		"seq": func(r *value.Record) { r.Seq++ }, "owner": func(r *value.Record) { r.Owner = "x" },
		"purpose": func(r *value.Record) { r.Purpose = "sale" }, "time": func(r *value.Record) { r.Time = r.Time.Add(time.Microsecond) },
	} {
		r := record
		mut(&r)
		if err := value.Verify(context.Background(), softCMAC{kb}, k, r, seal); errkind.Of(err) != errkind.CheckFailed {
			t.Errorf("tampered %s: %v", name, err)
		}
	}
	if _, err := value.Seal(context.Background(), softCMAC{kb}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, record); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("seal with a master key: %v", err)
	}
}
