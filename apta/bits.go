package apta

import "fmt"

// Size is the size of every APTA UTFS object (Part II §4.4: "The various
// objects that are organized within the Standard each contain 128 bits or
// 16 bytes of data").
const Size = 16

// Object is one 16-byte APTA UTFS data object, byte 0 first as it is read
// from and written to the card. Bit n (0..127) of the object is bit n mod 8
// of byte n/8, counted from the least significant bit: the object is a
// 128-bit little-endian number and bit n has the weight 2^n. See the
// package documentation for the seed's evidence.
type Object [Size]byte

// ParseObject returns the object in b, which must be exactly 16 bytes.
func ParseObject(b []byte) (Object, error) {
	var o Object
	if len(b) != Size {
		return o, refuse(ReasonLength, "an object is %d bytes, not %d", Size, len(b))
	}
	copy(o[:], b)
	return o, nil
}

// MaxWidth is the widest field Uint and PutUint read or write.
const MaxWidth = 64

// Uint returns the unsigned field of width bits (1..64) that starts at bit
// offset of b, under the numbering of [Object]: bit offset+i of b is bit i
// of the result, so the field's highest-numbered bit is its most
// significant ("Bit 28 = Most Significant Bit, Bit 21 = Least Significant
// Bit", Table 6 RtsActionMap; "bit 127 = Most significant and bit 112 =
// Least significant", §5.1 Note 2).
func Uint(b []byte, offset, width int) (uint64, error) {
	if err := checkField(b, offset, width); err != nil {
		return 0, err
	}
	var v uint64
	for i := range width {
		n := offset + i
		v |= uint64(b[n/8]>>(n%8)&1) << i
	}
	return v, nil
}

// PutUint writes v into the field of width bits (1..64) at bit offset of b,
// leaving every other bit of b as it was. v must fit the width.
func PutUint(b []byte, offset, width int, v uint64) error {
	if err := checkField(b, offset, width); err != nil {
		return err
	}
	if width < 64 && v>>width != 0 {
		return refuse(ReasonValueMalformed, "%d does not fit a %d-bit field", v, width)
	}
	for i := range width {
		n := offset + i
		if v>>i&1 == 1 {
			b[n/8] |= 1 << (n % 8)
		} else {
			b[n/8] &^= 1 << (n % 8)
		}
	}
	return nil
}

func checkField(b []byte, offset, width int) error {
	if width < 1 || width > MaxWidth || offset < 0 || offset > 8*len(b)-width {
		return refuse(ReasonField, "field of %d bits at bit %d does not fit %d bytes", width, offset, len(b))
	}
	return nil
}

// NoSign marks a value field without a sign bit.
const NoSign = -1

// MaxValueWidth is the widest magnitude a [ValueField] holds: 62 bits, so
// that the difference of two amounts fits an int64.
const MaxValueWidth = 62

// MaxValueBits bounds where a value field may sit: within the largest
// object a seal profile takes (4096 bytes), for profiles other than APTA's
// that use the same bit numbering.
const MaxValueBits = 4096 * 8

// ValueMeaning says what a value field's amount is.
type ValueMeaning uint8

// Meanings.
const (
	MeaningUnknown ValueMeaning = iota
	// MeaningBalance: the amount remaining on the product after the write
	// (SV&TPPO RtsRemValue). What a write adds or takes is the difference
	// to the previous object, which samd must have verified itself.
	MeaningBalance
	// MeaningTransaction: the amount the transaction added (positive) or
	// took (negative) (A&DVO RtsSVTransactionValue, THO RtsTransValue).
	MeaningTransaction
)

func (m ValueMeaning) String() string {
	return [...]string{"unknown", "balance", "transaction"}[min(int(m), 2)]
}

// ValueField is where an amount sits in an object: an unsigned magnitude
// of Width bits at bit Offset and, for signed fields, a sign bit (0
// positive, 1 negative), as APTA stores amounts ("RtsRemValueSign … 0 =
// Positive 1 = Negative", "RtsRemValue 16 0-65535 7-22", Table 17). Bits
// are numbered as for [Object]. Amounts are in the object's units (APTA:
// the region's currency unit, "one-cent, one nickel, one-dime,
// one-quarter or one-dollar", §5.12.1.5).
//
// The encoding is canonical: zero is always positive, so a field whose
// sign bit is set over a zero magnitude ("negative zero") holds no amount
// and is refused. The zero ValueField is invalid.
type ValueField struct {
	name    string
	offset  int
	width   int
	sign    int
	meaning ValueMeaning
}

// NewValueField validates a value field: a name for messages (e.g.
// "SV&TPPO RtsRemValue"), the magnitude's bit offset and width (1..62),
// and the sign bit's offset or NoSign. The field must lie within
// MaxValueBits and the sign bit outside the magnitude.
func NewValueField(name string, offset, width, signBit int, m ValueMeaning) (ValueField, error) {
	switch {
	case name == "" || len(name) > 64:
		return ValueField{}, refuse(ReasonField, "a value field needs a name of 1..64 bytes")
	case width < 1 || width > MaxValueWidth:
		return ValueField{}, refuse(ReasonField, "value field %s: width %d is not 1..%d", name, width, MaxValueWidth)
	case offset < 0 || offset+width > MaxValueBits:
		return ValueField{}, refuse(ReasonField, "value field %s: bits %d..%d are not within %d bits", name, offset, offset+width-1, MaxValueBits)
	case signBit != NoSign && (signBit < 0 || signBit >= MaxValueBits):
		return ValueField{}, refuse(ReasonField, "value field %s: sign bit %d is not within %d bits", name, signBit, MaxValueBits)
	case signBit >= offset && signBit < offset+width:
		return ValueField{}, refuse(ReasonField, "value field %s: sign bit %d lies inside the magnitude (bits %d..%d)", name, signBit, offset, offset+width-1)
	case m != MeaningBalance && m != MeaningTransaction:
		return ValueField{}, refuse(ReasonField, "value field %s: meaning must be balance or transaction", name)
	}
	return ValueField{name: name, offset: offset, width: width, sign: signBit, meaning: m}, nil
}

// Name is the field's name for messages.
func (f ValueField) Name() string { return f.name }

// Offset is the bit where the magnitude starts.
func (f ValueField) Offset() int { return f.offset }

// Width is the magnitude's width in bits.
func (f ValueField) Width() int { return f.width }

// SignBit is the sign bit's offset, or NoSign for an unsigned field.
func (f ValueField) SignBit() int { return f.sign }

// Meaning says whether the amount is a balance or a transaction's amount.
func (f ValueField) Meaning() ValueMeaning { return f.meaning }

// Max is the largest magnitude the field holds.
func (f ValueField) Max() int64 { return int64(1)<<f.width - 1 }

// Amount reads the field's amount from b.
func (f ValueField) Amount(b []byte) (int64, error) {
	if f.width == 0 {
		return 0, refuse(ReasonField, "the zero value field holds no amount")
	}
	mag, err := Uint(b, f.offset, f.width)
	if err != nil {
		return 0, err
	}
	if f.sign == NoSign {
		return int64(mag), nil
	}
	neg, err := Uint(b, f.sign, 1)
	if err != nil {
		return 0, err
	}
	switch {
	case neg == 0:
		return int64(mag), nil
	case mag == 0:
		return 0, refuse(ReasonValueMalformed, "%s is negative zero", f.name)
	}
	return -int64(mag), nil
}

// PutAmount writes v into the field of b. |v| must fit the magnitude and
// a negative v needs a sign bit.
func (f ValueField) PutAmount(b []byte, v int64) error {
	if f.width == 0 {
		return refuse(ReasonField, "the zero value field holds no amount")
	}
	mag, neg := v, uint64(0)
	if v < 0 {
		if f.sign == NoSign {
			return refuse(ReasonValueMalformed, "%s is unsigned: %d does not fit", f.name, v)
		}
		mag, neg = -v, 1
	}
	if mag > f.Max() || mag < 0 {
		return refuse(ReasonValueMalformed, "%s holds at most %d in magnitude, not %d", f.name, f.Max(), v)
	}
	// Check both positions before writing either, so a refused write
	// leaves b as it was.
	if err := checkField(b, f.offset, f.width); err != nil {
		return err
	}
	if f.sign != NoSign {
		if err := checkField(b, f.sign, 1); err != nil {
			return err
		}
		_ = PutUint(b, f.sign, 1, neg)
	}
	return PutUint(b, f.offset, f.width, uint64(mag))
}

// Check reports whether b's amount is want, and otherwise refuses with
// ReasonValueMismatch (kind denied) naming the field, the amount found and
// the amount wanted. It uses no key: the integrator calls it on the
// object a terminal sent before any key is touched.
func (f ValueField) Check(b []byte, want int64) error {
	got, err := f.Amount(b)
	if err != nil {
		return err
	}
	if got != want {
		return &Error{Reason: ReasonValueMismatch, Field: f.name, Got: got, Want: want,
			Msg: fmt.Sprintf("%s is %d; the authorisation says %d", f.name, got, want)}
	}
	return nil
}

// CheckChange reports whether the amount changes by exactly want from prev
// to next (next − prev = want), and otherwise refuses with
// ReasonValueMismatch, Got being the change found.
//
// prev must be an object samd has verified itself (its DAC, for this
// card): a baseline the terminal could choose would let it choose the
// result.
func (f ValueField) CheckChange(prev, next []byte, want int64) error {
	a, err := f.Amount(prev)
	if err != nil {
		return err
	}
	b, err := f.Amount(next)
	if err != nil {
		return err
	}
	// Both magnitudes are below 2^62, so the difference cannot overflow.
	if got := b - a; got != want {
		return &Error{Reason: ReasonValueMismatch, Field: f.name, Got: got, Want: want,
			Msg: fmt.Sprintf("%s changes by %+d (%d to %d); the authorisation says %+d", f.name, got, a, b, want)}
	}
	return nil
}
