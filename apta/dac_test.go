package apta_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
	"github.com/samd-io/samd/test/vectors"
)

type dacVector struct {
	Name       string   `json:"name"`
	Type       uint8    `json:"type"`
	Key        string   `json:"key"`
	KeyNote    string   `json:"key_note"`
	Card       string   `json:"card"`
	Fields     string   `json:"fields"`
	Object     string   `json:"object"`
	Extensions []string `json:"extensions"`
	Input      string   `json:"input"`
	CMAC       string   `json:"cmac"`
	DAC        string   `json:"dac"`
	Sealed     string   `json:"sealed"`
	Amount     *int64   `json:"amount"`
	Currency   string   `json:"currency"`
}

func loadDAC(t *testing.T) []dacVector {
	var f struct {
		Source  string      `json:"source"`
		Vectors []dacVector `json:"vectors"`
	}
	vectors.Load(t, "testdata/dac.json", &f)
	if f.Source == "" || len(f.Vectors) < 6 {
		t.Fatalf("dac.json: no source or only %d vectors", len(f.Vectors))
	}
	return f.Vectors
}

func (v dacVector) unit(t *testing.T) apta.Unit {
	t.Helper()
	typ, err := apta.TypeByID(v.Type)
	if err != nil {
		t.Fatal(err)
	}
	b := vectors.Hex(t, v.Object)
	for _, x := range v.Extensions {
		b = append(b, vectors.Hex(t, x)...)
	}
	u, err := apta.ParseUnit(typ, b)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func requireOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if softhsmtest.Required() {
			t.Fatal("openssl is required")
		}
		t.Skip("no openssl")
	}
}

// TestDACVectors checks the DAC input layout against inputs written out
// independently (testdata/dac.json), the DAC against OpenSSL's AES-CMAC
// of those inputs (recorded, and recomputed here by the openssl binary),
// and the sealed object against the recorded bytes 14-15.
func TestDACVectors(t *testing.T) {
	requireOpenSSL(t)
	ctx := context.Background()
	for _, v := range loadDAC(t) {
		t.Run(v.Name, func(t *testing.T) {
			u, card := v.unit(t), vectors.Hex(t, v.Card)
			in, err := apta.DACInput(card, u)
			if err != nil {
				t.Fatal(err)
			}
			if want := vectors.Hex(t, v.Input); !bytes.Equal(in, want) {
				t.Fatalf("input\n %X\nwant\n %X", in, want)
			}
			f := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(f, in, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("openssl", "mac", "-cipher", "AES-128-CBC", "-macopt", "hexkey:"+v.Key, "-in", f, "CMAC").Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != v.CMAC {
				t.Fatalf("openssl now says %s, the vector %s", got, v.CMAC)
			}
			m := softMAC(t, vectors.Hex(t, v.Key))
			d, err := apta.DAC(ctx, m, card, u)
			if err != nil {
				t.Fatal(err)
			}
			if got := hexs([]byte{byte(d >> 8), byte(d)}); got != v.DAC || !strings.HasPrefix(v.CMAC, got) {
				t.Fatalf("DAC %s, want %s (leftmost 16 bits of %s)", got, v.DAC, v.CMAC)
			}
			sealed, err := apta.SealDAC(ctx, m, card, u)
			if err != nil {
				t.Fatal(err)
			}
			if want := vectors.Hex(t, v.Sealed); !bytes.Equal(sealed[:], want) {
				t.Fatalf("sealed %X, want %X", sealed, want)
			}
			u.Object = sealed
			if err := apta.VerifyDAC(ctx, m, card, u); err != nil {
				t.Fatal(err)
			}
			if v.Amount != nil {
				f, ok := u.Type.Value()
				if !ok {
					t.Fatalf("%s carries no amount", u.Type.Name())
				}
				if err := f.Check(sealed[:], *v.Amount); err != nil {
					t.Fatal(err)
				}
			}
			if v.Currency != "" {
				if err := u.Type.CheckCurrency(sealed, v.Currency); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestDACInToken computes the vectors' DACs with their keys in SoftHSM2:
// the scheme-wide key as a mac key (the token computes the CMAC), the
// per-card key diversified by AN10922 (package derive) from the master in
// the token. Each must equal OpenSSL's.
func TestDACInToken(t *testing.T) {
	s := keystest.Store(t)
	ctx := context.Background()
	scheme := keystest.Import(t, s, "mac/apta/scheme", keys.RoleMAC, keys.AES128, vectors.Hex(t, "2B7E151628AED2A6ABF7158809CF4F3C"))
	master := keystest.Import(t, s, "mac/apta/master", keys.RoleDiversifyMaster, keys.AES128, vectors.Hex(t, "00112233445566778899AABBCCDDEEFF"))
	inToken := apta.MACFunc(func(ctx context.Context, msg []byte) ([]byte, error) { return s.CMAC(ctx, scheme, msg) })
	// AN10922's example: M = UID ‖ AID ‖ system identifier.
	perCard := apta.MACFunc(func(ctx context.Context, msg []byte) ([]byte, error) {
		in, err := derive.NewInput(vectors.Hex(t, "04782E21801D80"), vectors.Hex(t, "3042F5"), vectors.Hex(t, "4E585020416275"))
		if err != nil {
			return nil, err
		}
		key, err := derive.Diversify(ctx, s, master, in)
		if err != nil {
			return nil, err
		}
		defer key.Wipe()
		b, err := aes.NewCipher(key.Reveal())
		if err != nil {
			return nil, err
		}
		return cmac.Sum(b, msg)
	})
	ran := map[string]int{}
	for _, v := range loadDAC(t) {
		m, kind := apta.MACer(inToken), "scheme"
		switch v.Key {
		case "2B7E151628AED2A6ABF7158809CF4F3C":
		case "A8DD63A3B89D54B37CA802473FDA9175":
			m, kind = perCard, "diversified"
		default:
			t.Fatalf("%s: key %s is in neither place", v.Name, v.Key)
		}
		t.Run(kind+"/"+v.Name, func(t *testing.T) {
			u, card := v.unit(t), vectors.Hex(t, v.Card)
			sealed, err := apta.SealDAC(ctx, m, card, u)
			if err != nil {
				t.Fatal(err)
			}
			if want := vectors.Hex(t, v.Sealed); !bytes.Equal(sealed[:], want) {
				t.Fatalf("sealed %X, want %X", sealed, want)
			}
			u.Object = sealed
			if err := apta.VerifyDAC(ctx, m, card, u); err != nil {
				t.Fatal(err)
			}
			u.Object[15] ^= 0x80
			if err := apta.VerifyDAC(ctx, m, card, u); !errors.Is(err, apta.ErrInvalidDAC) || errkind.Of(err) != errkind.CheckFailed {
				t.Fatalf("flipped bit 127: %v", err)
			}
		})
		ran[kind]++
	}
	if ran["scheme"] == 0 || ran["diversified"] == 0 {
		t.Fatalf("ran %v", ran)
	}
}

// TestDACEveryBit seals a unit of every type that offers a DAC (with and
// without its extensions) and flips, one at a time, each of the object's
// 112 data bits, each bit of the DAC and each bit of every covered
// extension: each must be refused. It also moves the sealed unit to
// another card and to another type.
func TestDACEveryBit(t *testing.T) {
	ctx := context.Background()
	m := softMAC(t, vectors.Hex(t, "2B7E151628AED2A6ABF7158809CF4F3C"))
	card := vectors.Hex(t, "04782E21801D80")
	types := 0
	for _, typ := range apta.Types() {
		if typ.Trailer() != apta.TrailerDACOrCRC {
			continue
		}
		types++
		for _, u := range units(t, typ) {
			t.Run(typ.Name(), func(t *testing.T) {
				sealed, err := apta.SealDAC(ctx, m, card, u)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sealed[:apta.RegionBytes], u.Object[:apta.RegionBytes]) {
					t.Fatal("sealing changed bits 0-111")
				}
				u.Object = sealed
				if err := apta.VerifyDAC(ctx, m, card, u); err != nil {
					t.Fatal(err)
				}
				verify := func(c apta.Unit) error { return apta.VerifyDAC(ctx, m, card, c) }
				if n := flipEach(t, u, verify, apta.ReasonInvalidDAC); n != 128+128*len(u.Extensions) {
					t.Fatalf("%d flips", n)
				}
				if err := apta.VerifyDAC(ctx, m, vectors.Hex(t, "04782E21801D81"), u); !errors.Is(err, apta.ErrInvalidDAC) {
					t.Errorf("other card: %v", err)
				}
				for _, other := range apta.Types() {
					if other.ID() == typ.ID() || other.Trailer() != apta.TrailerDACOrCRC {
						continue
					}
					if lo, _ := other.Extensions(u.Object); lo != len(u.Extensions) {
						continue
					}
					c := u
					c.Type = other
					if err := apta.VerifyDAC(ctx, m, card, c); !errors.Is(err, apta.ErrInvalidDAC) {
						t.Errorf("verified as %s: %v", other.Name(), err)
					}
				}
			})
		}
	}
	if types != 10 {
		t.Fatalf("%d types offer a DAC; Part II's tables 2, 3, 6, 8, 9, 11, 17, 19, 20, 23 are ten", types)
	}
}

// TestDACRefusals: types whose bits 112-127 are data are refused, as are
// the CRC-only types, a card id out of range, and a MACer that returns
// something other than a whole block; the MACer's own error passes
// through unchanged. None of them calls the MACer for a refused unit.
func TestDACRefusals(t *testing.T) {
	ctx := context.Background()
	calls := 0
	m := apta.MACFunc(func(context.Context, []byte) ([]byte, error) { calls++; return make([]byte, 16), nil })
	card := []byte{1, 2, 3, 4}
	for _, typ := range apta.Types() {
		want := apta.ReasonUnknown
		switch typ.Trailer() {
		case apta.TrailerData:
			want = apta.ReasonDataTrailer
		case apta.TrailerCRC:
			want = apta.ReasonCRCOnly
		default:
			continue
		}
		t.Run("fail/"+typ.Name(), func(t *testing.T) {
			u := apta.Unit{Type: typ}
			if _, err := apta.SealDAC(ctx, m, card, u); apta.ReasonOf(err) != want || errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("seal: %v", err)
			}
			if err := apta.VerifyDAC(ctx, m, card, u); apta.ReasonOf(err) != want {
				t.Fatalf("verify: %v", err)
			}
		})
	}
	tapo := apta.Unit{Type: mustType(t, "TAPO")}
	for name, c := range map[string]struct {
		card []byte
		u    apta.Unit
		want apta.Reason
	}{
		"fail/no-card":      {nil, tapo, apta.ReasonLength},
		"fail/long-card":    {make([]byte, 17), tapo, apta.ReasonLength},
		"fail/zero-type":    {card, apta.Unit{}, apta.ReasonUnknownType},
		"fail/missing-ext":  {card, apta.Unit{Type: mustType(t, "P&TPO"), Object: apta.Object{0x04}}, apta.ReasonExtensions},
		"fail/pio-one-of-3": {card, apta.Unit{Type: mustType(t, "PIO"), Object: apta.Object{4: 0x80}, Extensions: make([]apta.Object, 1)}, apta.ReasonExtensions},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := apta.SealDAC(ctx, m, c.card, c.u); apta.ReasonOf(err) != c.want {
				t.Fatalf("got %v", err)
			}
		})
	}
	if calls != 0 {
		t.Fatalf("the MACer was called %d times for refused units", calls)
	}
	for name, out := range map[string][]byte{"fail/short": make([]byte, 4), "fail/empty": nil, "fail/long": make([]byte, 32)} {
		short := apta.MACFunc(func(context.Context, []byte) ([]byte, error) { return out, nil })
		if _, err := apta.SealDAC(ctx, short, card, tapo); apta.ReasonOf(err) != apta.ReasonMAC || errkind.Of(err) != errkind.Internal {
			t.Errorf("%s: %v", name, err)
		}
	}
	hsmDown := &errkind.Error{Kind: errkind.Unavailable, Msg: "hsm gone"}
	failing := apta.MACFunc(func(context.Context, []byte) ([]byte, error) { return nil, hsmDown })
	if err := apta.VerifyDAC(ctx, failing, card, tapo); !errors.Is(err, hsmDown) {
		t.Errorf("MACer error: %v", err)
	}
}

// TestDACInputDomain: the DAC input never starts like a package mac
// profile input, whose first byte is a profile name's length (1..64).
func TestDACInputDomain(t *testing.T) {
	in, err := apta.DACInput([]byte{1}, apta.Unit{Type: mustType(t, "TAPO")})
	if err != nil {
		t.Fatal(err)
	}
	if in[0] <= 64 {
		t.Fatalf("first byte %#x could be a mac profile name length", in[0])
	}
}
