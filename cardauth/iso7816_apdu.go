package cardauth

import "github.com/samd-io/samd/errkind"

// ISOCommand is a plain ISO/IEC 7816-4 command APDU (ISO/IEC 7816-4:2020
// §5.1, ISO/IEC 7816-3 §12.1 cases 1 to 4), as a terminal would send it
// without secure messaging:
//
//	CLA INS P1 P2 [Lc Data] [Le]
//
// Ne is the number of response bytes expected: 0 when the command has no
// Le field, 1 to 256 in short form (Le 00 = 256), up to 65536 in extended
// form (Le 0000 = 65536).
type ISOCommand struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Ne               int
}

// ParseISOCommand parses a command APDU in short or extended form. It
// refuses every length field that does not match the bytes that follow.
func ParseISOCommand(b []byte) (ISOCommand, error) {
	if len(b) < 4 {
		return ISOCommand{}, invalid("a command APDU has at least the 4 header bytes")
	}
	c := ISOCommand{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	short := func(le byte) int {
		if le == 0 {
			return 256
		}
		return int(le)
	}
	ext := func(hi, lo byte) int {
		if n := int(hi)<<8 | int(lo); n != 0 {
			return n
		}
		return 65536
	}
	switch {
	case len(body) == 0: // case 1
	case len(body) == 1: // case 2S
		c.Ne = short(body[0])
	case body[0] != 0 && len(body) == 1+int(body[0]): // case 3S
		c.Data = body[1:]
	case body[0] != 0 && len(body) == 2+int(body[0]): // case 4S
		c.Data, c.Ne = body[1:len(body)-1], short(body[len(body)-1])
	case body[0] == 0 && len(body) == 3: // case 2E
		c.Ne = ext(body[1], body[2])
	case body[0] == 0 && len(body) > 3:
		lc := int(body[1])<<8 | int(body[2])
		switch {
		case lc != 0 && len(body) == 3+lc: // case 3E
			c.Data = body[3:]
		case lc != 0 && len(body) == 5+lc: // case 4E
			c.Data, c.Ne = body[3:3+lc], ext(body[len(body)-2], body[len(body)-1])
		default:
			return ISOCommand{}, invalid("the extended Lc of the command APDU does not match its length")
		}
	default:
		return ISOCommand{}, invalid("the Lc of the command APDU does not match its length")
	}
	return c, nil
}

// smDO is one BER-TLV data object of a secure-messaging response, with its
// encoding as it appeared (the MAC covers the encoding).
type smDO struct {
	tag byte
	val []byte
	raw []byte
}

// readDO reads one BER-TLV data object with a one-byte tag and a length in
// one of the forms ISO/IEC 7816-4 §6.3 allows here: 00..7F, 81 xx,
// 82 xx xx.
func readDO(b []byte) (smDO, []byte, bool) {
	if len(b) < 2 || b[0]&0x1F == 0x1F { // a multi-byte tag is none of ours
		return smDO{}, nil, false
	}
	n, hdr := int(b[1]), 2
	switch {
	case b[1] < 0x80:
	case b[1] == 0x81 && len(b) >= 3:
		n, hdr = int(b[2]), 3
	case b[1] == 0x82 && len(b) >= 4:
		n, hdr = int(b[2])<<8|int(b[3]), 4
	default:
		return smDO{}, nil, false
	}
	if len(b)-hdr < n {
		return smDO{}, nil, false
	}
	return smDO{tag: b[0], val: b[hdr : hdr+n], raw: b[:hdr+n]}, b[hdr+n:], true
}

// appendDO appends a BER-TLV data object with a one-byte tag and a
// minimal length (ISO/IEC 7816-4 §6.3).
func appendDO(out []byte, tag byte, val []byte) []byte {
	out = append(out, tag)
	switch n := len(val); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	return append(out, val...)
}

// smResponse is a parsed secure-messaging response APDU (ICAO 9303-11
// §9.8, ISO/IEC 7816-4 §10.3):
//
//	[DO'87' 01 ‖ cryptogram | DO'85' cryptogram] ‖ DO'99' SW1 SW2 ‖ DO'8E' MAC ‖ SW1 SW2
type smResponse struct {
	data     *smDO   // DO'87' or DO'85', or nil
	status   [2]byte // the value of DO'99'
	mac      []byte  // the value of DO'8E'
	macInput []byte  // every DO before DO'8E', as encoded
	sw       [2]byte // the plain trailer
}

// parseSMResponse parses the data objects of a protected response in the
// order ICAO 9303-11 §9.8 fixes; anything else is refused. It checks only
// the structure: the MAC is the caller's to verify, before using any value.
func parseSMResponse(r []byte, macLen int) (smResponse, error) {
	var p smResponse
	if len(r) < 2 {
		return p, invalid("a response APDU ends with SW1 SW2")
	}
	body := r[:len(r)-2]
	copy(p.sw[:], r[len(r)-2:])
	if len(body) == 0 {
		return p, errPlainStatus(p.sw)
	}
	do, rest, ok := readDO(body)
	if ok && (do.tag == 0x87 || do.tag == 0x85) {
		d := do
		p.data = &d
		do, rest, ok = readDO(rest)
	}
	if !ok || do.tag != 0x99 || len(do.val) != 2 {
		return p, invalid("a protected response has DO'99' (2 status bytes) after its data object")
	}
	copy(p.status[:], do.val)
	p.macInput = body[:len(body)-len(rest)]
	do, rest, ok = readDO(rest)
	if !ok || do.tag != 0x8E || len(do.val) != macLen || len(rest) != 0 {
		return p, invalid("a protected response ends with DO'8E' (a %d-byte MAC)", macLen)
	}
	p.mac = do.val
	return p, nil
}

// errPlainStatus is what a response without secure messaging means: the
// card has left secure messaging (ISO/IEC 7816-4 §10.4: 6987 SM data
// objects missing, 6988 SM data objects incorrect, or an error it could
// not protect). The status is not authenticated; the session is over.
func errPlainStatus(sw [2]byte) error {
	return errkind.Errorf(errkind.CheckFailed, "cardauth: the card answered %02X%02X without secure messaging; the session has ended", sw[0], sw[1])
}
