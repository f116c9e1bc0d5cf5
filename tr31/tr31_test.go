package tr31

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

type vector struct {
	Name, KBPK, Block, Key, KCV string
	Usage, Algorithm, Mode      string
	Exportability               string
	KeyVersion                  string `json:"key_version"`
	Optional                    []struct{ ID, Data string }
}

func load(t *testing.T) (vs, refused []vector) {
	t.Helper()
	b, err := os.ReadFile("testdata/published.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors, Refused []vector }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Vectors, f.Refused
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kdfFor(t *testing.T, block string, kbpk []byte) KDF {
	t.Helper()
	k, err := SoftwareKDF(block[0], kbpk)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func checkValue(t *testing.T, alg byte, key []byte) string {
	t.Helper()
	a, m := keys.TDEA2, kcv.EncryptZero
	switch {
	case alg == 'A' && len(key) == 16:
		a, m = keys.AES128, kcv.CMACZero
	case alg == 'A' && len(key) == 32:
		a, m = keys.AES256, kcv.CMACZero
	case len(key) == 24:
		a = keys.TDEA3
	}
	c, err := kcv.Compute(a, secret.Copy(key), m)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(c))
}

// TestPublishedBlocks decodes the published key blocks to their keys and
// check values, and re-encodes each, with the padding the block carries,
// to exactly the published block.
func TestPublishedBlocks(t *testing.T) {
	vs, _ := load(t)
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			kbpk := unhex(t, v.KBPK)
			kdf := kdfFor(t, v.Block, kbpk)
			b, err := Decode(v.Block, len(kbpk), kdf)
			if err != nil {
				t.Fatal(err)
			}
			h := b.Header
			if !bytes.Equal(b.Key.Reveal(), unhex(t, v.Key)) {
				t.Fatalf("key %X, want %s", b.Key.Reveal(), v.Key)
			}
			if got := checkValue(t, h.Algorithm, b.Key.Reveal()); got != v.KCV {
				t.Fatalf("KCV %s, want %s", got, v.KCV)
			}
			if h.Usage != v.Usage || string(h.Algorithm) != v.Algorithm || string(h.ModeOfUse) != v.Mode || string(h.Exportability) != v.Exportability {
				t.Fatalf("header %+v", h)
			}
			if v.KeyVersion != "" && h.KeyVersion != v.KeyVersion {
				t.Fatalf("key version %q", h.KeyVersion)
			}
			if len(h.Optional) != len(v.Optional) {
				t.Fatalf("optional blocks %+v", h.Optional)
			}
			for i, o := range v.Optional {
				if h.Optional[i].ID != o.ID || h.Optional[i].Data != o.Data {
					t.Fatalf("optional block %d: %+v, want %+v", i, h.Optional[i], o)
				}
			}
			// Re-encode with the block's own padding: the same bytes.
			_, payload, err := decode(v.Block, len(kbpk), kdf)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := versionParams(h.Version)
			again, err := encode(h, b.Key.Reveal(), payload[2+len(b.Key.Reveal()):], len(kbpk), kdf, p)
			if err != nil {
				t.Fatal(err)
			}
			if again != v.Block {
				t.Fatalf("encoded\n%s\nwant\n%s", again, v.Block)
			}
		})
	}
}

// TestRefusals: a wrong KBPK, an altered header or body, a truncated
// block, a wrong length field and the deprecated versions are refused,
// each with its error.
func TestRefusals(t *testing.T) {
	vs, refused := load(t)
	v := vs[2] // version D
	kbpk := unhex(t, v.KBPK)
	kdf := kdfFor(t, v.Block, kbpk)
	wrong := bytes.Clone(kbpk)
	wrong[0] ^= 1
	alter := func(i int) string {
		b := []byte(v.Block)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	for _, c := range []struct {
		name, block string
		kdf         KDF
		kbpkLen     int
		want        error
	}{
		{"wrong KBPK", v.Block, kdfFor(t, v.Block, wrong), len(kbpk), ErrMAC},
		{"header altered (exportability)", strings.Replace(v.Block, "P0AE00E", "P0AE00N", 1), kdf, len(kbpk), ErrMAC},
		{"ciphertext altered", alter(20), kdf, len(kbpk), ErrMAC},
		{"MAC altered", alter(len(v.Block) - 1), kdf, len(kbpk), ErrMAC},
		{"truncated", v.Block[:len(v.Block)-2], kdf, len(kbpk), ErrFormat},
		{"length field wrong", "D0113" + v.Block[5:] + "0", kdf, len(kbpk), ErrFormat},
		{"KBPK length for another version", v.Block, kdf, 8, ErrKBPKSize},
		{"not hex", v.Block[:40] + "ZZ" + v.Block[42:], kdf, len(kbpk), ErrFormat},
		{"version A", refused[0].Block, kdf, 16, ErrVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.block, c.kbpkLen, c.kdf)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestRoundTrip encodes keys under each KBPK size with random padding.
func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		version byte
		alg     byte
		kbpk    int
		key     int
	}{{'B', 'T', 16, 16}, {'B', 'T', 24, 24}, {'D', 'A', 16, 16}, {'D', 'A', 24, 24}, {'D', 'A', 32, 32}, {'D', 'T', 32, 24}} {
		kbpk := make([]byte, c.kbpk)
		key := make([]byte, c.key)
		rand.Read(kbpk)
		rand.Read(key)
		kdf, err := SoftwareKDF(c.version, kbpk)
		if err != nil {
			t.Fatal(err)
		}
		h := Header{Version: c.version, Usage: "K0", Algorithm: c.alg, ModeOfUse: 'B', KeyVersion: "00", Exportability: 'E',
			Optional: []OptionalBlock{{ID: "KV", Data: "samd"}}}
		s, err := Encode(rand.Reader, h, secret.Copy(key), c.kbpk, kdf)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Decode(s, c.kbpk, kdf)
		if err != nil || !bytes.Equal(b.Key.Reveal(), key) || b.Header.Optional[0].Data != "samd" {
			t.Fatalf("%c/%d/%d: %v %s", c.version, c.kbpk, c.key, err, s)
		}
	}
	if _, err := Encode(rand.Reader, Header{Version: 'A', Usage: "K0", KeyVersion: "00"}, secret.Copy(make([]byte, 16)), 16, nil); !errors.Is(err, ErrVersion) {
		t.Fatalf("encode version A: %v", err)
	}
}

// TestProtection: a block is refused, on encoding and on decoding, when
// its KBPK is weaker than the key it carries (NIST SP 800-57 Part 1
// Table 2 strengths) or when an AES key is in a block that is not version
// D; TDEA keys go in B under TDEA or in D under AES.
func TestProtection(t *testing.T) {
	for _, c := range []struct {
		name    string
		version byte
		alg     byte
		kbpk    int
		key     int
		ok      bool
	}{
		{"ok/aes256-key-in-d-under-aes256", 'D', 'A', 32, 32, true},
		{"ok/aes128-key-in-d-under-aes256", 'D', 'A', 32, 16, true},
		{"ok/aes192-key-in-d-under-aes192", 'D', 'A', 24, 24, true},
		{"ok/2tdea-key-in-b-under-2tdea", 'B', 'T', 16, 16, true},
		{"ok/3tdea-key-in-b-under-3tdea", 'B', 'T', 24, 24, true},
		{"ok/2tdea-key-in-b-under-3tdea", 'B', 'T', 24, 16, true},
		{"ok/3tdea-key-in-d-under-aes128", 'D', 'T', 16, 24, true},
		{"fail/aes256-key-in-b-under-2tdea", 'B', 'A', 16, 32, false},
		{"fail/aes128-key-in-b-under-3tdea", 'B', 'A', 24, 16, false},
		{"fail/aes256-key-in-d-under-aes128", 'D', 'A', 16, 32, false},
		{"fail/aes256-key-in-d-under-aes192", 'D', 'A', 24, 32, false},
		{"fail/aes192-key-in-d-under-aes128", 'D', 'A', 16, 24, false},
		{"fail/3tdea-key-in-b-under-2tdea", 'B', 'T', 16, 24, false},
		{"fail/hmac-key-in-d-under-aes256", 'D', 'H', 32, 32, false},
		{"fail/des-key-in-b-under-3tdea", 'B', 'T', 24, 8, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			kbpk := make([]byte, c.kbpk)
			key := make([]byte, c.key)
			rand.Read(kbpk)
			rand.Read(key)
			kdf, err := SoftwareKDF(c.version, kbpk)
			if err != nil {
				t.Fatal(err)
			}
			h := Header{Version: c.version, Usage: "D0", Algorithm: c.alg, ModeOfUse: 'N', KeyVersion: "00", Exportability: 'N'}
			s, err := Encode(rand.Reader, h, secret.Copy(key), c.kbpk, kdf)
			if c.ok {
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				if b, err := Decode(s, c.kbpk, kdf); err != nil || !bytes.Equal(b.Key.Reveal(), key) {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection) {
				t.Fatalf("encode: %v, want wrong-role (weak protection)", err)
			}
			// A block made elsewhere with a valid MAC is refused too,
			// after its MAC has been checked.
			p, _ := versionParams(c.version)
			pad := make([]byte, (p.blockSize-(2+c.key)%p.blockSize)%p.blockSize)
			s, err = encode(h, key, pad, c.kbpk, kdf, p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(s, c.kbpk, kdf); errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection) {
				t.Fatalf("decode: %v, want wrong-role (weak protection)", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := os.ReadFile("testdata/published.json")
	var file struct{ Vectors []vector }
	json.Unmarshal(b, &file)
	for _, v := range file.Vectors {
		f.Add(v.Block)
	}
	f.Add("B0016P0TE00E0000")
	kdf, _ := SoftwareKDF('D', make([]byte, 32))
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Decode(s, 32, kdf)
		_, _, _ = ParseHeader(s)
	})
}
