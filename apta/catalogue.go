package apta

// CheckOffset and CheckWidth place the check value: bits 112–127 of every
// object whose type carries one ("DAC… or CRC… 16 0-65,535 112-127" in
// Tables 2, 3, 6, 8, 9, 11, 17, 19, 20, 23; "CRCDIO 16 0-65535 112-127",
// Table 1).
const (
	CheckOffset = 112
	CheckWidth  = 16
)

// RegionBytes is how much of the core object a check covers: bits 0–111,
// bytes 0–13 (the seed's CRC example is exactly this "14 Byte" stream).
const RegionBytes = CheckOffset / 8

// Trailer says what bits 112–127 of an object type hold.
type Trailer uint8

// Trailers.
const (
	TrailerUnknown Trailer = iota
	// TrailerDACOrCRC: "Data Authentication Code [DAC] or Cyclic Redundancy
	// Check (CRC)"; the seal profile chooses which.
	TrailerDACOrCRC
	// TrailerCRC: a CRC only (DIO, PHPOX1); the tables offer no DAC.
	TrailerCRC
	// TrailerData: data or reserved bits (the extension objects); neither
	// mode writes or checks them.
	TrailerData
)

func (t Trailer) String() string {
	return [...]string{"unknown", "dac-or-crc", "crc", "data"}[min(int(t), 3)]
}

// Type is one APTA UTFS object type from Part II §5. Its id is the number
// of the table that lays it out. The zero Type is invalid.
type Type struct {
	id      uint8
	name    string
	title   string
	trailer Trailer
	ext     extRule
	value   ValueField // zero when the type carries no amount
	curr    int        // bit offset of a 3-bit RtsCurrencyCode, or NoSign
}

// extRule says which extension objects the type's check covers, in card
// order after the core object.
type extRule struct {
	statusBit int    // a bit of the core object that says how many; NoSign if none
	counts    [2]int // extensions when that bit is 0, when it is 1
	upTo      int    // without a status bit: the caller supplies 0..upTo
}

var noExt = extRule{statusBit: NoSign}

func mustValue(name string, offset, width, sign int, m ValueMeaning) ValueField {
	f, err := NewValueField(name, offset, width, sign, m)
	if err != nil {
		panic(err)
	}
	return f
}

// catalogue holds the object types, quoting the row of each table that
// defines bits 112–127 and, where one exists, the rows of the amount.
var catalogue = []Type{
	// Table 1: "CRCDIO 16 0-65535 112-127 Cyclic Redundancy Check (CRC) for
	// error detection".
	{id: 1, name: "DIO", title: "Directory Index Object", trailer: TrailerCRC, ext: noExt, curr: NoSign},
	// Table 2: "DACTAPO or CRCTAPO … 16 0-65,535 112-127 … Calculated on
	// TAPO data only!"
	{id: 2, name: "TAPO", title: "Transit Application Profile Object", trailer: TrailerDACOrCRC, ext: noExt, curr: NoSign},
	// Table 3: "DACPHPO Or CRCPHPO … 16 0-65,535 112-127 … Calculated only
	// for this PHPO data."
	{id: 3, name: "PHPO", title: "PICC Holder Profile Object", trailer: TrailerDACOrCRC, ext: noExt, curr: NoSign},
	// Table 4: "CRCPHPOX 16 0-65,535 112-127 Calculated on all PHPOX
	// data." The PHPOX2..n that follow have no check of their own; how
	// many there are is the DIO's ("RtsProfilePHPOExtensionQty 4 0-15 …
	// Number of PHPOX (plus one)"), so the caller supplies 0..15.
	{id: 4, name: "PHPOX1", title: "PICC Holder Profile Object Extension 1", trailer: TrailerCRC,
		ext: extRule{statusBit: NoSign, upTo: 15}, curr: NoSign},
	// Table 5: "RtsCardHolderDescription 128 0-127".
	{id: 5, name: "PHPOX2", title: "PICC Holder Profile Object Extensions 2..n", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 6: "DACPIO or CRCPIO … 16 0-65,535 112-127 … Calculated on all
	// Profile Objects." The PIO's extensions follow it: "RtsPIOExtensions 1
	// 0-1 39 … 0 = 1 Extension 1 = 3 Extensions". samd reads "all Profile
	// Objects" as the PIO and its PIOXs (see the package documentation).
	{id: 6, name: "PIO", title: "Product Index Object", trailer: TrailerDACOrCRC,
		ext: extRule{statusBit: 39, counts: [2]int{1, 3}}, curr: NoSign},
	// Table 7: "RFU 16 112-127 Reserved for Future Use."
	{id: 7, name: "PIOX", title: "Product Index Object Extension", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 8: "DACA&DVO or CRCA&DVO 16 0-65,535 112-127 DAC for
	// authentication & error detection Or CRC for error detection only".
	// Amount: "RtsSVTransactionValue 15 0-32,767 48-62 Value Added or
	// Deducted …" and "RtsSVTransactionNegative 1 0-1 63 0 = Positive 1 =
	// Negative".
	{id: 8, name: "A&DVO", title: "Add & Deduct Value History Object", trailer: TrailerDACOrCRC, ext: noExt, curr: NoSign,
		value: mustValue("A&DVO RtsSVTransactionValue", 48, 15, 63, MeaningTransaction)},
	// Table 9: "DACTHO or CRCTHO DAC or Cyclic Redundancy Check (CRC) 16
	// 112-127 DAC for authentication & error detection Or CRC to verify
	// integrity of this object." Amount: "RtsTransValue 15 0-32,767 80-94
	// Value of the SV or T Purse transaction" and "RtsTransValueSign 1 0-1
	// 95 … 0 = Positive (Add) 1 = Negative (Deduct)". The THOX is not
	// covered.
	{id: 9, name: "THO", title: "Transaction History Object", trailer: TrailerDACOrCRC, ext: noExt, curr: NoSign,
		value: mustValue("THO RtsTransValue", 80, 15, 95, MeaningTransaction)},
	// Table 10: "RtsProfileCodeRider7 8 0-255 112-119", "RtsTransCodeRider7
	// 8 0-255 120-127".
	{id: 10, name: "THOX", title: "Transaction History Object Extension", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 11: "DACP&T or CRCP&T … 16 0-65,535 112-127 … Calculated on all
	// P&TPOs and P&TPOXs." Extension: "RtsExtensionStatus 1 0-1 2 0 = No
	// P&TPO Extension (P&TPOX) 1 = P&TPOX required … The extension(s)
	// position immediately follows the core P&TPO." A pass carries no
	// currency amount (RtsRemTrips/Rides counts rides).
	{id: 11, name: "P&TPO", title: "Pass and Transfer Product Object", trailer: TrailerDACOrCRC,
		ext: extRule{statusBit: 2, counts: [2]int{0, 1}}, curr: NoSign},
	// Table 12: "RtsExtensionData 120 8-127 Product Extension Data"
	// (Table 15: "RtsLocation7 16 0-65535 112-127"; Table 16: "RtsSector5
	// 11 0-2047 117-127").
	{id: 12, name: "P&TPOX", title: "Pass & Transfer Product Object Extension", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 17: "DACSV&TPPO or CRCSV&TPPO … 16 0-65535 112-127 … Calculated
	// on all SV&TPPO Objects including extension". Extension:
	// "RtsExtensionStatus 1 0-1 2 0 = SV or T-Purse Object with no
	// Extension. 1 = SV or T-Purse Object with Extension." Amount:
	// "RtsRemValueSign 1 0-1 6 … 0 = Positive 1 = Negative" and
	// "RtsRemValue 16 0-65535 7-22 Remaining currency value." Currency:
	// "RtsCurrencyCode 3 0-7 75-77".
	{id: 17, name: "SV&TPPO", title: "Stored Value & T-Purse Product Object", trailer: TrailerDACOrCRC,
		ext: extRule{statusBit: 2, counts: [2]int{0, 1}}, curr: 75,
		value: mustValue("SV&TPPO RtsRemValue", 7, 16, 6, MeaningBalance)},
	// Table 18: "RtsExtensionData 120 8-127 Stored Value Product Extension
	// Data."
	{id: 18, name: "SVPOX", title: "Stored Value Product Object Extension", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 19: "DACALPO or CRCALPO … 16 0-65535 112-127 DAC for
	// authentication & error detection or CRC for error detection only."
	// Currency: "RtsCurrencyCode 3 0-7 69-71". RtsDayUsedValueLimit is a
	// velocity counter, not stored value.
	{id: 19, name: "ALPO", title: "Account Linked Product Object", trailer: TrailerDACOrCRC, ext: noExt, curr: 69},
	// Table 20: "CRC/DAC 16 0-65535 112-127 DAC for authentication & error
	// detection Or CRC for error detection only."
	{id: 20, name: "ALRO", title: "Account Linked Reference Object", trailer: TrailerDACOrCRC, ext: noExt, curr: NoSign},
	// Table 21: "RFUS8-127 120 8-127 Reserved for future use."
	{id: 21, name: "ALPOX", title: "ALPO Extension Object", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 22: "RFUS8-127 120 8-127 Reserved for future use."
	{id: 22, name: "ALROX", title: "ALRO Extension Object", trailer: TrailerData, ext: noExt, curr: NoSign},
	// Table 23: "DACAVPO or CRAVPO … 16 0-65535 112-127 DAC for
	// authentication & error detection Or CRC for error detection only."
	// Its units are loyalty accumulations, not stored value.
	{id: 23, name: "AVPO", title: "AutoValue Product Object", trailer: TrailerDACOrCRC, ext: noExt, curr: NoSign},
	// Table 24: "RtsUnitsUD4 16 … 112-127 Accumulated of Value Units."
	{id: 24, name: "AVPOX", title: "AutoValue Product Object Extension", trailer: TrailerData, ext: noExt, curr: NoSign},
}

// Types returns the catalogue, in table order.
func Types() []Type { return append([]Type(nil), catalogue...) }

// TypeByID returns the type laid out by Part II's table id (e.g. 17 for
// the SV&TPPO).
func TypeByID(id uint8) (Type, error) {
	for _, t := range catalogue {
		if t.id == id {
			return t, nil
		}
	}
	return Type{}, refuse(ReasonUnknownType, "no object type %d (Part II tables 1-12 and 17-24)", id)
}

// TypeByName returns the type with the seed's abbreviation, e.g. "SV&TPPO".
func TypeByName(name string) (Type, error) {
	for _, t := range catalogue {
		if t.name == name {
			return t, nil
		}
	}
	return Type{}, refuse(ReasonUnknownType, "no object type %q", name)
}

// ID is the number of the Part II table that lays the type out.
func (t Type) ID() uint8 { return t.id }

// Name is the seed's abbreviation, e.g. "SV&TPPO".
func (t Type) Name() string { return t.name }

// Title is the seed's full name, e.g. "Stored Value & T-Purse Product Object".
func (t Type) Title() string { return t.title }

// Trailer says what the type's bits 112–127 hold.
func (t Type) Trailer() Trailer { return t.trailer }

// Value returns where the type's amount sits, if it carries one (SV&TPPO,
// A&DVO, THO).
func (t Type) Value() (ValueField, bool) { return t.value, t.value.width != 0 }

// Extensions returns how many extension objects the type's check covers
// for the core object o: a fixed number read from o's own extension
// status bit (P&TPO, SV&TPPO, PIO), 0..15 chosen by the caller (PHPOX1,
// whose count is in the DIO), or none.
func (t Type) Extensions(o Object) (lo, hi int) {
	if t.ext.statusBit == NoSign {
		return 0, t.ext.upTo
	}
	bit, _ := Uint(o[:], t.ext.statusBit, 1)
	n := t.ext.counts[bit]
	return n, n
}

// currencies are RtsCurrencyCode's values (Table 17, Table 19): "1 = US
// Dollar (default) 2 = Canadian Dollar 3 = Mexican Peso 4 = Pound Sterling
// 5 = Japanese Yen 6 = Euro 7 = Reserved for future use", as ISO 4217 codes.
var currencies = [8]string{1: "USD", 2: "CAD", 3: "MXN", 4: "GBP", 5: "JPY", 6: "EUR"}

// CheckCurrency reports whether o's RtsCurrencyCode names want (an ISO
// 4217 code), refusing with ReasonCurrency (kind denied) otherwise. Code 0
// ("Field not used") and 7 (reserved) are refused too: the seed says "The
// RtsCurrency Code field must always be populated" (Table 2), and samd
// does not infer a currency from the TAPO's country. Types without the
// field (A&DVO, THO: their purse's SV&TPPO names it) pass.
func (t Type) CheckCurrency(o Object, want string) error {
	if t.id == 0 {
		return refuse(ReasonUnknownType, "no object type")
	}
	if t.curr == NoSign {
		return nil
	}
	c, _ := Uint(o[:], t.curr, 3)
	if got := currencies[c]; got == "" || got != want {
		return refuse(ReasonCurrency, "%s RtsCurrencyCode %d (%s) is not the authorisation's %s", t.name, c, orNone(got), want)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Unit is what one check covers: a core object and, in card order, the
// extension objects its type's check includes.
type Unit struct {
	Type       Type
	Object     Object
	Extensions []Object
}

// ParseUnit splits b — the core object, then its extensions, 16 bytes each
// — into a unit of type t, refusing a length that is not a whole number of
// objects or an extension count the type and object do not call for.
func ParseUnit(t Type, b []byte) (Unit, error) {
	if t.id == 0 {
		return Unit{}, refuse(ReasonUnknownType, "no object type")
	}
	if len(b) == 0 || len(b)%Size != 0 || len(b) > Size*(1+MaxExtensions) {
		return Unit{}, refuse(ReasonLength, "%s: %d bytes are not 1..%d whole objects", t.name, len(b), 1+MaxExtensions)
	}
	u := Unit{Type: t, Object: Object(b[:Size])}
	for i := Size; i < len(b); i += Size {
		u.Extensions = append(u.Extensions, Object(b[i:i+Size]))
	}
	if err := u.checkExtensions(); err != nil {
		return Unit{}, err
	}
	return u, nil
}

// MaxExtensions is the most extension objects a unit carries (a PHPOX1
// with PHPOX2..16).
const MaxExtensions = 15

// Region returns the bytes a check covers: bytes 0–13 (bits 0–111) of the
// core object, then each extension's 16 bytes in order.
func (u Unit) Region() []byte {
	r := make([]byte, 0, RegionBytes+Size*len(u.Extensions))
	r = append(r, u.Object[:RegionBytes]...)
	for _, x := range u.Extensions {
		r = append(r, x[:]...)
	}
	return r
}

// check refuses a unit whose type carries no check value of the mode's
// kind, or whose extensions are not the ones the type calls for.
func (u Unit) check(dac bool) error {
	switch t := u.Type; {
	case t.id == 0:
		return refuse(ReasonUnknownType, "no object type")
	case t.trailer == TrailerData:
		return refuse(ReasonDataTrailer, "%s (Table %d): bits 112-127 are data, not a DAC or CRC", t.name, t.id)
	case dac && t.trailer == TrailerCRC:
		return refuse(ReasonCRCOnly, "%s (Table %d): bits 112-127 hold a CRC; the table offers no DAC", t.name, t.id)
	}
	return u.checkExtensions()
}

func (u Unit) checkExtensions() error {
	lo, hi := u.Type.Extensions(u.Object)
	if n := len(u.Extensions); n < lo || n > hi {
		if lo == hi {
			return refuse(ReasonExtensions, "%s: this object calls for %d extension object(s), not %d", u.Type.name, lo, n)
		}
		return refuse(ReasonExtensions, "%s: %d extension objects, want %d..%d", u.Type.name, n, lo, hi)
	}
	return nil
}
