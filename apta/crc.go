package apta

// Polynomial is a CRC-16 generator polynomial a region may choose (Part II
// §5.1 Note 2: "The polynomial used within the algorithm shall be defined
// by the region and used by all participating agencies within that
// region"). The zero value is invalid.
type Polynomial uint8

// Polynomials, named by their normal (MSB-first) hex form.
const (
	PolyUnknown Polynomial = iota
	// Poly8005 is x¹⁶+x¹⁵+x²+1, the seed's first example (result 0x6286);
	// with the seed's parameters it is the CRC catalogue's CRC-16/ARC.
	Poly8005
	// Poly1021 is x¹⁶+x¹²+x⁵+1, the seed's second example (result 0xA16B);
	// with the seed's parameters it is the CRC catalogue's CRC-16/KERMIT.
	Poly1021
)

// ParsePolynomial parses "8005" or "x16+x15+x2+1", and "1021" or
// "x16+x12+x5+1".
func ParsePolynomial(s string) (Polynomial, error) {
	switch s {
	case "8005", "x16+x15+x2+1":
		return Poly8005, nil
	case "1021", "x16+x12+x5+1":
		return Poly1021, nil
	}
	return PolyUnknown, refuse(ReasonPolynomial, "unknown CRC-16 polynomial %q (want 8005 or 1021)", s)
}

func (p Polynomial) String() string {
	return [...]string{"unknown", "8005", "1021"}[min(int(p), 2)]
}

// reflected is the polynomial with its bits reversed, for the LSB-first
// shift register.
func (p Polynomial) reflected() (uint16, bool) {
	switch p {
	case Poly8005:
		return 0xA001, true
	case Poly1021:
		return 0x8408, true
	}
	return 0, false
}

// CRC16 computes the CRC-16 of data as Part II §5.1 Note 2 specifies: "CR
// 16 to ISO 13239" with "Start value for the CRC calculations in both
// cases … 0x0000". Following ISO/IEC 13239 (HDLC), each byte enters the
// register least significant bit first and the register is read out in the
// same order (reflected input and output); unlike HDLC's frame check
// sequence there is no final complement. These are the only parameters
// under which the seed's worked example gives both of its results
// (testdata/crc.json).
func CRC16(p Polynomial, data []byte) (uint16, error) {
	poly, ok := p.reflected()
	if !ok {
		return 0, refuse(ReasonPolynomial, "no CRC-16 polynomial chosen")
	}
	var crc uint16 // start value 0x0000
	for _, b := range data {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ poly
			} else {
				crc >>= 1
			}
		}
	}
	return crc, nil
}

// SealCRC returns u's object with the CRC-16 of its region (see [Unit])
// written into bits 112–127, bit 127 the most significant (§5.1 Note 2):
// byte 14 holds the CRC's low byte, byte 15 its high byte. The type's bits
// 112–127 must be a check value (DAC or CRC, or CRC only).
func SealCRC(p Polynomial, u Unit) (Object, error) {
	c, err := unitCRC(p, u)
	if err != nil {
		return Object{}, err
	}
	o := u.Object
	_ = PutUint(o[:], CheckOffset, CheckWidth, uint64(c))
	return o, nil
}

// VerifyCRC checks the CRC in bits 112–127 of u's object; a mismatch is
// ErrInvalidCRC (kind check-failed). A CRC detects errors; it does not
// authenticate: anyone can compute one.
func VerifyCRC(p Polynomial, u Unit) error {
	c, err := unitCRC(p, u)
	if err != nil {
		return err
	}
	if got, _ := Uint(u.Object[:], CheckOffset, CheckWidth); got != uint64(c) {
		return ErrInvalidCRC
	}
	return nil
}

func unitCRC(p Polynomial, u Unit) (uint16, error) {
	if _, ok := p.reflected(); !ok {
		return 0, refuse(ReasonPolynomial, "no CRC-16 polynomial chosen")
	}
	if err := u.check(false); err != nil {
		return 0, err
	}
	return CRC16(p, u.Region())
}
