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
	Version: 1, Operator: "no-pto:042", Device: "VAL-000123", Seq: 7, Amount: 25000, Currency: "NOK",
	Owner: "no-pto:001", Purpose: "load", Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
}

// record2 is a version-2 record: record's fields, with the card, its TSN
// and the Part 19 transaction type.
var record2 = value.Record{
	Version: 2, Operator: "no-pto:042", Device: "VAL-000123", Seq: 8, Amount: 25000, Currency: "NOK",
	Owner: "no-pto:001", Purpose: "load", Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
	CardID: unhex("04782E21801D80"), TSN: 7, TxType: 11,
}

func unhex(s string) []byte {
	b, _ := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	return b
}

// TestEncoding checks both versions' encodings against the byte layout
// written in the package documentation, held in testdata (made with
// Python's struct module, not this encoder).
func TestEncoding(t *testing.T) {
	for _, c := range []struct {
		file string
		r    value.Record
	}{{"record.json", record}, {"record2.json", record2}} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		var f struct{ Encoding string }
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		got, err := c.r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(f.Encoding); !bytes.Equal(got, want) {
			t.Fatalf("%s: encoding\n got %X\nwant %X", c.file, got, want)
		}
	}
}

// TestEncodingRefuses: a record whose version and fields disagree, or
// whose card or transaction type is out of range, has no encoding.
func TestEncodingRefuses(t *testing.T) {
	for name, mut := range map[string]func(*value.Record){
		"fail/version-0":          func(r *value.Record) { r.Version = 0 },
		"fail/version-3":          func(r *value.Record) { r.Version = 3 },
		"fail/v1-with-card":       func(r *value.Record) { r.Version = 1 },
		"fail/no-card":            func(r *value.Record) { r.CardID = nil },
		"fail/card-17-bytes":      func(r *value.Record) { r.CardID = make([]byte, 17) },
		"fail/type-0":             func(r *value.Record) { r.TxType = 0 },
		"fail/type-36-blacklist":  func(r *value.Record) { r.TxType = 36 },
		"fail/currency-2-letters": func(r *value.Record) { r.Currency = "NO" },
	} {
		r := record2
		mut(&r)
		if _, err := r.Encode(); errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTransactionTypes: each purpose takes the Part 19 §1.3.2 types of
// its kind, and no type that moves no value.
func TestTransactionTypes(t *testing.T) {
	for _, c := range []struct {
		name    string
		purpose string
		typ     value.TxType
		ok      bool
	}{
		{"ok/reload", "load", 11, true},
		{"ok/autoload", "load", 16, true},
		{"ok/product-sale", "sale", 3, true},
		{"ok/tpurse-refund", "refund", 9, true},
		{"fail/reload-as-sale", "sale", 11, false},
		{"fail/sale-as-load", "load", 3, false},
		{"fail/checkin", "sale", 30, false},
		{"fail/blacklist", "load", 36, false},
		{"fail/none", "load", 0, false},
	} {
		err := value.CheckTransaction(c.purpose, c.typ)
		if (err == nil) != c.ok || !c.ok && errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if value.TxType(11).Name() != "CSC tPurse Product Reload" || value.TxType(36).Name() != "" {
		t.Fatal("names")
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
	// Version 2: the card, its TSN and the transaction type are sealed,
	// and a version-2 seal is no version-1 seal of the same fields.
	seal2, err := value.Seal(context.Background(), softCMAC{kb}, k, record2)
	if err != nil {
		t.Fatal(err)
	}
	enc2, _ := record2.Encode()
	f2 := filepath.Join(t.TempDir(), "rec2")
	os.WriteFile(f2, enc2, 0o600)
	out2, err := exec.Command("openssl", "mac", "-cipher", "AES-128-CBC", "-macopt", "hexkey:"+key, "-in", f2, "CMAC").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ToUpper(hex.EncodeToString(seal2)); got != strings.TrimSpace(string(out2)) {
		t.Fatalf("seal v2 %s, openssl %s", got, out2)
	}
	for name, mut := range map[string]func(*value.Record){
		"card": func(r *value.Record) { r.CardID = unhex("04782E21801D81") }, "tsn": func(r *value.Record) { r.TSN++ },
		"type": func(r *value.Record) { r.TxType = 16 },
	} {
		r := record2
		mut(&r)
		if err := value.Verify(context.Background(), softCMAC{kb}, k, r, seal2); errkind.Of(err) != errkind.CheckFailed {
			t.Errorf("tampered v2 %s: %v", name, err)
		}
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
