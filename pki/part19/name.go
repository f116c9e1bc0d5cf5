package part19

import (
	"fmt"
	"slices"
	"strconv"
)

// HardwareType is XX of a file name, the sender's hardware type (§3.1):
// "PTO Translator = TR, Level 4 Middleware for PTO = MW, Level 4
// Middleware for PL4 = IO". Other values are refused unless the caller
// allows them (a deployment's configuration).
type HardwareType string

// The hardware types §3.1 names.
const (
	HardwareTR HardwareType = "TR" // PTO translator
	HardwareMW HardwareType = "MW" // level 4 middleware for a PTO
	HardwareIO HardwareType = "IO" // level 4 middleware for PL4
)

// ValidHardwareType reports whether h can be a configured extra hardware
// type: two characters A–Z or 0–9, like the three §3.1 names.
func ValidHardwareType(h HardwareType) error {
	if len(h) != 2 || !upperAlnum(string(h)) {
		return fmt.Errorf("part19: hardware type %q is not two characters A-Z 0-9", trim(string(h)))
	}
	return nil
}

// PTOID is YYYY of a file name, the sender's PTO id in four decimal
// digits (§3.1: "Example: 0004 = NSB"), 0000–9999.
type PTOID uint16

// MaxPTOID is the largest four-digit PTO id.
const MaxPTOID = 9999

// String formats the id as its four digits.
func (p PTOID) String() string { return fmt.Sprintf("%04d", uint16(p)) }

// ParsePTOID reads four decimal digits (a deployment's sender id).
func ParsePTOID(s string) (PTOID, error) {
	if len(s) != 4 || !digits(s) {
		return 0, fmt.Errorf("part19: PTO id %q is not four decimal digits", trim(s))
	}
	n, _ := strconv.Atoi(s)
	return PTOID(n), nil
}

// FileType is Z of a file name (§3.1): "Entity using XDR file format will
// use (Z = 1 = CSC transaction / Z = 2 = CT Transaction). Entity using XML
// transaction file format will use Z = 1 for CSC, CT and MT transactions".
// An XDR file's header tag has the same values (see [Header]).
type FileType uint8

// File types.
const (
	FileTypeUnknown FileType = 0
	FileTypeCSC     FileType = 1 // CSC transactions (XDR); every XML file
	FileTypeCT      FileType = 2 // CT transactions (XDR only)
)

// DISVersion is U of a file name: "DIS version ('A' to 'Z' which is the
// version of the interface definition file between Translators and Level
// 4)" (§3.1).
type DISVersion byte

// String is the version letter.
func (d DISVersion) String() string { return string([]byte{byte(d)}) }

// MaxSeq is the upper limit of NNNNNNNNN; §3.1: "It is incremented by 1
// for each new transaction file. It is reset to 0 at its upper limit."
const MaxSeq = 999_999_999

// seqModulus is how many sequence numbers there are: 0..MaxSeq.
const seqModulus = MaxSeq + 1

// Next is the sequence number after seq: seq+1, and 0 after MaxSeq.
func Next(seq uint32) uint32 { return (seq + 1) % seqModulus }

// Name is a transaction file name XXYYYYZU.NNNNNNNNN (Håndbok 206 Part 19
// §3.1), 18 characters:
//
//	offset 0–1   XX         HardwareType  TR, MW, IO (others if configured)
//	offset 2–5   YYYY       PTOID         four decimal digits
//	offset 6     Z          FileType      '1' or '2'
//	offset 7     U          DISVersion    'A'–'Z'
//	offset 8     '.'
//	offset 9–17  NNNNNNNNN  Seq           nine decimal digits, 0–999999999
//
// Make one with [ParseName], or fill the fields and call [Name.Validate].
type Name struct {
	HardwareType HardwareType
	PTOID        PTOID
	FileType     FileType
	DISVersion   DISVersion
	Seq          uint32
}

// String formats the name; for a valid Name it is the name parsed.
func (n Name) String() string {
	return fmt.Sprintf("%s%s%d%c.%09d", n.HardwareType, n.PTOID, n.FileType, n.DISVersion, n.Seq)
}

// Field names a part of a file name in a [NameError]. The values are
// stable codes.
type Field string

// Fields of a file name.
const (
	FieldPattern      Field = "pattern"       // not 18 characters with '.' at offset 8
	FieldHardwareType Field = "hardware-type" // XX
	FieldPTOID        Field = "ptoid"         // YYYY
	FieldFileType     Field = "file-type"     // Z
	FieldDISVersion   Field = "dis-version"   // U
	FieldSequence     Field = "sequence"      // NNNNNNNNN
)

// NameError says which field of a file name breaks §3.1 and why.
type NameError struct {
	Name   string // the name as given (cut to 40 characters)
	Field  Field
	Value  string // the field's characters
	Reason string // what §3.1 allows
}

func (e *NameError) Error() string {
	if e.Field == FieldPattern {
		return fmt.Sprintf("part19: file name %q: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("part19: file name %q: %s %q %s", e.Name, e.Field, e.Value, e.Reason)
}

// ParseName reads a file name XXYYYYZU.NNNNNNNNN. extra lists the hardware
// types a deployment allows beyond TR, MW and IO. A name that breaks §3.1
// gives a *NameError naming the first field (left to right) at fault.
func ParseName(s string, extra []HardwareType) (Name, error) {
	fail := func(f Field, v, reason string) (Name, error) {
		return Name{}, &NameError{Name: trim(s), Field: f, Value: v, Reason: reason}
	}
	if len(s) != 18 || s[8] != '.' {
		return fail(FieldPattern, "", "is not XXYYYYZU.NNNNNNNNN (18 characters, '.' after the eighth)")
	}
	n := Name{HardwareType: HardwareType(s[0:2]), DISVersion: DISVersion(s[7])}
	if err := n.checkHardware(extra); err != nil {
		return Name{}, err.at(s)
	}
	if !digits(s[2:6]) {
		return fail(FieldPTOID, s[2:6], "is not four decimal digits (the sender's PTOID, e.g. 0004 = NSB)")
	}
	pto, _ := strconv.Atoi(s[2:6])
	n.PTOID = PTOID(pto)
	switch s[6] {
	case '1':
		n.FileType = FileTypeCSC
	case '2':
		n.FileType = FileTypeCT
	default:
		return fail(FieldFileType, s[6:7], "is not 1 (CSC transactions) or 2 (CT transactions)")
	}
	if err := n.checkDIS(); err != nil {
		return Name{}, err.at(s)
	}
	if !digits(s[9:]) {
		return fail(FieldSequence, s[9:], "is not nine decimal digits")
	}
	seq, _ := strconv.ParseUint(s[9:], 10, 32) // nine digits fit
	n.Seq = uint32(seq)
	return n, nil
}

// Validate checks a Name built field by field, as ParseName checks a
// string; extra as for ParseName.
func (n Name) Validate(extra []HardwareType) error {
	if err := n.checkHardware(extra); err != nil {
		return err.at(n.String())
	}
	switch {
	case n.PTOID > MaxPTOID:
		return (&NameError{Field: FieldPTOID, Value: strconv.Itoa(int(n.PTOID)), Reason: "is over 9999: not four decimal digits"}).at(n.String())
	case n.FileType != FileTypeCSC && n.FileType != FileTypeCT:
		return (&NameError{Field: FieldFileType, Value: strconv.Itoa(int(n.FileType)), Reason: "is not 1 (CSC transactions) or 2 (CT transactions)"}).at(n.String())
	}
	if err := n.checkDIS(); err != nil {
		return err.at(n.String())
	}
	if n.Seq > MaxSeq {
		return (&NameError{Field: FieldSequence, Value: strconv.FormatUint(uint64(n.Seq), 10), Reason: "is over 999999999"}).at(n.String())
	}
	return nil
}

func (n Name) checkHardware(extra []HardwareType) *NameError {
	h := n.HardwareType
	if ValidHardwareType(h) == nil && (h == HardwareTR || h == HardwareMW || h == HardwareIO || slices.Contains(extra, h)) {
		return nil
	}
	return &NameError{Field: FieldHardwareType, Value: string(h), Reason: "is not TR (PTO translator), MW (level 4 middleware for a PTO), IO (level 4 middleware for PL4) or a configured hardware type"}
}

func (n Name) checkDIS() *NameError {
	if n.DISVersion >= 'A' && n.DISVersion <= 'Z' {
		return nil
	}
	return &NameError{Field: FieldDISVersion, Value: string([]byte{byte(n.DISVersion)}), Reason: "is not a DIS version 'A' to 'Z'"}
}

func (e *NameError) at(name string) *NameError {
	e.Name = trim(name)
	return e
}

// Format is a transaction file's encoding (§3.1: "Format for transaction
// messages shall be either XML ... or XDR").
type Format uint8

// Formats.
const (
	FormatUnknown Format = iota
	FormatXDR
	FormatXML
)

// CheckFormat checks the name's file type against the file's format:
// an XML file's Z is 1 (§3.1: "Entity using XML transaction file format
// will use Z = 1 for CSC, CT and MT transactions").
func (n Name) CheckFormat(f Format) error {
	switch f {
	case FormatXDR:
		return nil
	case FormatXML:
		if n.FileType == FileTypeCSC {
			return nil
		}
		return (&NameError{Field: FieldFileType, Value: strconv.Itoa(int(n.FileType)), Reason: "is not 1: an XML file uses Z = 1 for CSC, CT and MT transactions"}).at(n.String())
	}
	return fmt.Errorf("part19: unknown file format %d", f)
}

// Series is the sequence a file belongs to: its sender (PTOID), the
// sender's hardware type and the file type. The DIS version is not part
// of it: a new interface version continues the sender's numbering.
type Series struct {
	HardwareType HardwareType
	PTOID        PTOID
	FileType     FileType
}

// Series returns the name's series.
func (n Name) Series() Series { return Series{n.HardwareType, n.PTOID, n.FileType} }

// String is the series as the first seven characters of its files' names
// (XXYYYYZ), e.g. "TR00041".
func (s Series) String() string { return fmt.Sprintf("%s%s%d", s.HardwareType, s.PTOID, s.FileType) }

// MarshalText writes the series as String does (for JSON reports).
func (s Series) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func upperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// trim cuts a caller's string for an error message.
func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
