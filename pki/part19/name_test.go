package part19_test

import (
	"errors"
	"testing"

	"github.com/samd-io/samd/pki/part19"
)

// TestParseName: every field of XXYYYYZU.NNNNNNNNN, its allowed values
// (§3.1) and refused ones, each refusal naming its field.
func TestParseName(t *testing.T) {
	extra := []part19.HardwareType{"X1"}
	for _, c := range []struct {
		name, in string
		want     part19.Name
		field    part19.Field // "" when the name is valid
	}{
		{"ok/TR", "TR00041A.000000017", part19.Name{HardwareType: "TR", PTOID: 4, FileType: 1, DISVersion: 'A', Seq: 17}, ""},
		{"ok/MW CT", "MW99992Z.999999999", part19.Name{HardwareType: "MW", PTOID: 9999, FileType: 2, DISVersion: 'Z', Seq: 999999999}, ""},
		{"ok/IO zero", "IO00001M.000000000", part19.Name{HardwareType: "IO", PTOID: 0, FileType: 1, DISVersion: 'M', Seq: 0}, ""},
		{"ok/configured hardware type", "X101002B.000000001", part19.Name{HardwareType: "X1", PTOID: 100, FileType: 2, DISVersion: 'B', Seq: 1}, ""},

		{"fail/empty", "", part19.Name{}, part19.FieldPattern},
		{"fail/short", "TR00041A.00000001", part19.Name{}, part19.FieldPattern},
		{"fail/long", "TR00041A.0000000170", part19.Name{}, part19.FieldPattern},
		{"fail/no dot", "TR00041A-000000017", part19.Name{}, part19.FieldPattern},
		{"fail/dot elsewhere", "TR00041.A000000017", part19.Name{}, part19.FieldPattern},

		{"fail/hardware type not in 3.1", "TX00041A.000000017", part19.Name{}, part19.FieldHardwareType},
		{"fail/hardware type lower case", "tr00041A.000000017", part19.Name{}, part19.FieldHardwareType},
		{"fail/hardware type not configured", "X200041A.000000017", part19.Name{}, part19.FieldHardwareType},
		{"fail/hardware type blank", "T 00041A.000000017", part19.Name{}, part19.FieldHardwareType},

		{"fail/PTOID letter", "TR00A41A.000000017", part19.Name{}, part19.FieldPTOID},
		{"fail/PTOID sign", "TR-0041A.000000017", part19.Name{}, part19.FieldPTOID},
		{"fail/PTOID blank", "TR 0041A.000000017", part19.Name{}, part19.FieldPTOID},

		{"fail/file type 0", "TR00040A.000000017", part19.Name{}, part19.FieldFileType},
		{"fail/file type 3", "TR00043A.000000017", part19.Name{}, part19.FieldFileType},
		{"fail/file type letter", "TR0004AA.000000017", part19.Name{}, part19.FieldFileType},

		{"fail/DIS version lower case", "TR00041a.000000017", part19.Name{}, part19.FieldDISVersion},
		{"fail/DIS version digit", "TR000411.000000017", part19.Name{}, part19.FieldDISVersion},
		{"fail/DIS version before A", "TR00041@.000000017", part19.Name{}, part19.FieldDISVersion},
		{"fail/DIS version after Z", "TR00041[.000000017", part19.Name{}, part19.FieldDISVersion},

		{"fail/sequence letter", "TR00041A.00000001x", part19.Name{}, part19.FieldSequence},
		{"fail/sequence sign", "TR00041A.+00000017", part19.Name{}, part19.FieldSequence},
		{"fail/sequence blank", "TR00041A. 00000017", part19.Name{}, part19.FieldSequence},

		// Names samd's old reading (XX any two characters, ZU anything)
		// accepted and §3.1 refuses: the error names the field.
		{"fail/old name: file type TX", "TX0042A1.000000017", part19.Name{}, part19.FieldHardwareType},
		{"fail/old name: Z is a letter", "TR0042A1.000000017", part19.Name{}, part19.FieldFileType},
		{"fail/old name: U is a digit", "TR004210.000000017", part19.Name{}, part19.FieldDISVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := part19.ParseName(c.in, extra)
			if c.field == "" {
				if err != nil || n != c.want || n.String() != c.in {
					t.Fatalf("got %+v (%q), %v; want %+v", n, n.String(), err, c.want)
				}
				if err := n.Validate(extra); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ne *part19.NameError
			if !errors.As(err, &ne) || ne.Field != c.field {
				t.Fatalf("got %+v, %v; want a NameError on %s", n, err, c.field)
			}
		})
	}
}

// TestNameValidate: a Name built field by field is checked as a parsed one.
func TestNameValidate(t *testing.T) {
	good := part19.Name{HardwareType: "MW", PTOID: 4, FileType: 2, DISVersion: 'C', Seq: 5}
	for _, c := range []struct {
		name  string
		edit  func(*part19.Name)
		field part19.Field
	}{
		{"ok", func(*part19.Name) {}, ""},
		{"fail/hardware type", func(n *part19.Name) { n.HardwareType = "XY" }, part19.FieldHardwareType},
		{"fail/PTOID over 9999", func(n *part19.Name) { n.PTOID = 10000 }, part19.FieldPTOID},
		{"fail/file type 0", func(n *part19.Name) { n.FileType = 0 }, part19.FieldFileType},
		{"fail/file type 3", func(n *part19.Name) { n.FileType = 3 }, part19.FieldFileType},
		{"fail/DIS version", func(n *part19.Name) { n.DISVersion = 'a' }, part19.FieldDISVersion},
		{"fail/sequence over the limit", func(n *part19.Name) { n.Seq = part19.MaxSeq + 1 }, part19.FieldSequence},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := good
			c.edit(&n)
			err := n.Validate(nil)
			var ne *part19.NameError
			if c.field == "" && err != nil || c.field != "" && (!errors.As(err, &ne) || ne.Field != c.field) {
				t.Fatalf("%+v: %v, want field %q", n, err, c.field)
			}
		})
	}
}

// TestNext: "incremented by 1 for each new transaction file. It is reset
// to 0 at its upper limit" (§3.1).
func TestNext(t *testing.T) {
	for in, want := range map[uint32]uint32{0: 1, 41: 42, 999999998: 999999999, 999999999: 0} {
		if got := part19.Next(in); got != want {
			t.Errorf("Next(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestCheckFormat: "Entity using XML transaction file format will use Z =
// 1 for CSC, CT and MT transactions".
func TestCheckFormat(t *testing.T) {
	csc, _ := part19.ParseName("TR00041A.000000001", nil)
	ct, _ := part19.ParseName("TR00042A.000000001", nil)
	var ne *part19.NameError
	switch {
	case csc.CheckFormat(part19.FormatXML) != nil, csc.CheckFormat(part19.FormatXDR) != nil, ct.CheckFormat(part19.FormatXDR) != nil:
		t.Fatal("a valid format is refused")
	case !errors.As(ct.CheckFormat(part19.FormatXML), &ne) || ne.Field != part19.FieldFileType:
		t.Fatal("an XML file with Z = 2 is not refused on its file type")
	case csc.CheckFormat(part19.FormatUnknown) == nil:
		t.Fatal("an unknown format passes")
	}
}

func TestParsePTOID(t *testing.T) {
	if p, err := part19.ParsePTOID("0004"); err != nil || p != 4 || p.String() != "0004" {
		t.Fatalf("0004: %v %v", p, err)
	}
	for _, bad := range []string{"", "4", "00004", "00a4", "-004"} {
		if _, err := part19.ParsePTOID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, h := range []part19.HardwareType{"X1", "ZZ", "TR"} {
		if part19.ValidHardwareType(h) != nil {
			t.Errorf("%q refused", h)
		}
	}
	for _, h := range []part19.HardwareType{"", "x1", "X", "XYZ", "X-"} {
		if part19.ValidHardwareType(h) == nil {
			t.Errorf("%q accepted", h)
		}
	}
}

func FuzzParseName(f *testing.F) {
	f.Add("TR00041A.000000017")
	f.Add("IO99992Z.999999999")
	f.Add("TX0042A1.000000017")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := part19.ParseName(s, []part19.HardwareType{"X1"})
		if err == nil {
			if n.String() != s || n.Validate([]part19.HardwareType{"X1"}) != nil {
				t.Fatalf("%q parsed as %+v, formats as %q", s, n, n.String())
			}
			return
		}
		var ne *part19.NameError
		if !errors.As(err, &ne) || ne.Field == "" {
			t.Fatalf("%q: %v is not a NameError with a field", s, err)
		}
	})
}
