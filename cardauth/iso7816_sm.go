package cardauth

import (
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// ISOSession is an ISO/IEC 7816-4 secure-messaging session as ICAO Doc
// 9303 Part 11 §9.8 runs it: the session keys from [ISOAuth.Finish] and
// the send sequence counter. The caller keeps it (sealed) between steps;
// the package stores nothing. Each protected command and each checked
// response advances the counter by one, and the two alternate: Pending is
// set by [ISOSession.ProtectCommand] and cleared by
// [ISOSession.CheckResponse].
type ISOSession struct {
	Alg     keys.Algorithm // keys.TDEA2 or AES
	Enc     secret.Bytes   // KS_enc
	MAC     secret.Bytes   // KS_mac
	SSC     []byte         // send sequence counter, big-endian, one cipher block
	Pending bool           // a command was protected and its response is due
}

// Wipe clears the session keys.
func (s *ISOSession) Wipe() {
	s.Enc.Wipe()
	s.MAC.Wipe()
}

// nextSSC returns SSC + 1 (modulo 2^(8·len)), leaving s unchanged.
func (s *ISOSession) nextSSC() ([]byte, error) {
	if s.Alg != keys.TDEA2 && !s.Alg.AES() || len(s.SSC) != isoBlockSize(s.Alg) || s.Enc.Len() != s.Alg.KeyLen() || s.MAC.Len() != s.Alg.KeyLen() {
		return nil, invalid("the secure-messaging state is not of its cipher")
	}
	ssc := append([]byte(nil), s.SSC...)
	for i := len(ssc) - 1; i >= 0; i-- {
		ssc[i]++
		if ssc[i] != 0 {
			break
		}
	}
	return ssc, nil
}

// iv is the CBC IV for the message with counter ssc: zero for 2TDEA
// (ICAO 9303-11 §9.8, BAC), E(KS_enc, SSC) for AES.
func (s *ISOSession) iv(ssc []byte) ([]byte, error) {
	b, err := isoBlock(s.Alg, s.Enc)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, b.BlockSize())
	if s.Alg.AES() {
		b.Encrypt(iv, ssc)
	}
	return iv, nil
}

// ProtectCommand wraps a plain command for the card (ICAO 9303-11 §9.8,
// ISO/IEC 7816-4 §10), with SSC + 1:
//
//	CLA' = CLA | 0C (secure messaging, header authenticated)
//	DO'87' = 87 L 01 ‖ E(KS_enc, pad(data))   data, even INS (01: padding method 2)
//	DO'85' = 85 L E(KS_enc, pad(data))        data, odd INS (BER-TLV data)
//	DO'97' = 97 L Le                          when Ne > 0: 1 byte (00 = 256) or 2 (0000 = 65536)
//	DO'8E' = 8E 08 MAC(KS_mac, SSC ‖ pad(CLA' INS P1 P2) ‖ DO'87'|DO'85' ‖ DO'97')
//	APDU   = CLA' INS P1 P2 ‖ Lc' ‖ DOs ‖ Le'
//
// pad is ISO/IEC 9797-1 padding method 2 to the cipher block; E is CBC
// with a zero IV (2TDEA) or IV = E(KS_enc, SSC) (AES); MAC is ISO/IEC
// 9797-1 MAC algorithm 3 (2TDEA) or CMAC cut to 8 bytes (AES), over the
// input padded once by method 2. The APDU is in short form (Le' 00) unless the DOs exceed 255 bytes
// or Ne exceeds 256, then in extended form (Le' 0000).
//
// The command's class must be interindustry without secure messaging or
// chaining (CLA 00 to 03, logical channels 0 to 3): a masked CLA' is then
// 0C to 0F, which no protected response can begin with, so a command's MAC
// is never a valid response MAC. On success SSC advances and Pending is
// set; on error s is unchanged.
func (s *ISOSession) ProtectCommand(cmd ISOCommand) ([]byte, error) {
	if s.Pending {
		return nil, invalid("the previous command's response has not been checked")
	}
	if cmd.CLA&^0x03 != 0 {
		return nil, invalid("secure messaging takes interindustry commands with CLA 00 to 03, not %02X", cmd.CLA)
	}
	if cmd.Ne < 0 || cmd.Ne > 65536 {
		return nil, invalid("Ne must be 0 to 65536")
	}
	ssc, err := s.nextSSC()
	if err != nil {
		return nil, err
	}
	header := []byte{cmd.CLA | 0x0C, cmd.INS, cmd.P1, cmd.P2}
	var dos []byte
	if len(cmd.Data) > 0 {
		b, err := isoBlock(s.Alg, s.Enc)
		if err != nil {
			return nil, err
		}
		iv, err := s.iv(ssc)
		if err != nil {
			return nil, err
		}
		padded := padISO(cmd.Data, b.BlockSize())
		ct := cbcEncrypt(b, iv, padded)
		clear(padded)
		if cmd.INS&1 == 1 {
			dos = appendDO(dos, 0x85, ct)
		} else {
			dos = appendDO(dos, 0x87, append([]byte{0x01}, ct...))
		}
	}
	switch {
	case cmd.Ne == 0:
	case cmd.Ne <= 256:
		dos = appendDO(dos, 0x97, []byte{byte(cmd.Ne)})
	default:
		dos = appendDO(dos, 0x97, []byte{byte(cmd.Ne >> 8), byte(cmd.Ne)})
	}
	in := append(append(append([]byte(nil), ssc...), padISO(header, isoBlockSize(s.Alg))...), dos...)
	cc, err := isoMAC(s.Alg, s.MAC, in)
	if err != nil {
		return nil, err
	}
	dos = appendDO(dos, 0x8E, cc)
	if len(dos) > 65535 {
		return nil, invalid("the protected command would exceed 65535 bytes of data")
	}
	out := append([]byte(nil), header...)
	if len(dos) <= 255 && cmd.Ne <= 256 {
		out = append(append(append(out, byte(len(dos))), dos...), 0x00)
	} else {
		out = append(append(append(out, 0x00, byte(len(dos)>>8), byte(len(dos))), dos...), 0x00, 0x00)
	}
	s.SSC, s.Pending = ssc, true
	return out, nil
}

// ISOResponse is a checked response: the plain data and the status the
// card authenticated in DO'99'.
type ISOResponse struct {
	Data []byte
	SW   uint16
}

// CheckResponse verifies and opens the card's protected response to the
// last protected command (ICAO 9303-11 §9.8), with SSC + 1:
//
//	[DO'87' | DO'85'] ‖ DO'99' SW1 SW2 ‖ DO'8E' MAC ‖ SW1 SW2
//	MAC = MAC(KS_mac, SSC ‖ DO'87'|DO'85' ‖ DO'99')
//
// The MAC is verified first, in constant time, before anything is
// decrypted; then the data object is decrypted (CBC, IV as for commands)
// and its padding removed, and DO'99' must equal the
// plain trailer. A response without secure-messaging objects (the card
// left secure messaging) is refused with its status. On success SSC
// advances and Pending is cleared; on error s is unchanged and the caller
// ends the session.
func (s *ISOSession) CheckResponse(rapdu []byte) (ISOResponse, error) {
	if !s.Pending {
		return ISOResponse{}, invalid("no protected command is awaiting its response")
	}
	ssc, err := s.nextSSC()
	if err != nil {
		return ISOResponse{}, err
	}
	p, err := parseSMResponse(rapdu, 8)
	if err != nil {
		return ISOResponse{}, err
	}
	want, err := isoMAC(s.Alg, s.MAC, append(append([]byte(nil), ssc...), p.macInput...))
	if err != nil {
		return ISOResponse{}, err
	}
	if !equal(want, p.mac) {
		return ISOResponse{}, ErrCryptogram
	}
	// From here on the card (holding KS_mac) sent these bytes.
	if p.status != p.sw {
		return ISOResponse{}, ErrCryptogram
	}
	r := ISOResponse{SW: uint16(p.status[0])<<8 | uint16(p.status[1])}
	if p.data != nil {
		ct := p.data.val
		if p.data.tag == 0x87 {
			if len(ct) == 0 || ct[0] != 0x01 {
				return ISOResponse{}, ErrCryptogram
			}
			ct = ct[1:]
		}
		bs := isoBlockSize(s.Alg)
		if len(ct) == 0 || len(ct)%bs != 0 {
			return ISOResponse{}, ErrCryptogram
		}
		b, err := isoBlock(s.Alg, s.Enc)
		if err != nil {
			return ISOResponse{}, err
		}
		iv, err := s.iv(ssc)
		if err != nil {
			return ISOResponse{}, err
		}
		if r.Data, err = unpadISO(cbcDecrypt(b, iv, ct)); err != nil {
			return ISOResponse{}, err
		}
	}
	s.SSC, s.Pending = ssc, false
	return r, nil
}
