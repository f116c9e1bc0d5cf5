package cardauth

import (
	"crypto/aes"
	"encoding/binary"

	"github.com/samd-io/samd/secret"
)

// EV2 is the session state of a MIFARE DESFire EV2/EV3 or NTAG 424 DNA
// AES session after AuthenticateEV2First (0x71) or NonFirst (0x77).
type EV2 struct {
	TI     [4]byte // transaction identifier, from the card
	CmdCtr uint16  // command counter, 0 after AuthenticateEV2First
	Enc    secret.Bytes
	MAC    secret.Bytes
}

// Wipe clears the session keys.
func (s *EV2) Wipe() {
	s.Enc.Wipe()
	s.MAC.Wipe()
}

// EV2Response answers the card's first reply to AuthenticateEV2First or
// NonFirst. encRndB is E(Kx, RndB) (AES-CBC, zero IV); the answer is
// E(Kx, RndA ‖ RndB') with RndB' = RndB rotated left one byte.
func EV2Response(kx secret.Bytes, encRndB []byte, rndA [16]byte) (answer []byte, rndB [16]byte, err error) {
	if len(encRndB) != 16 {
		return nil, rndB, invalid("E(Kx, RndB) must be 16 bytes, not %d", len(encRndB))
	}
	b, err := aesBlock(kx)
	if err != nil {
		return nil, rndB, err
	}
	iv := make([]byte, 16)
	copy(rndB[:], cbcDecrypt(b, iv, encRndB))
	plain := append(append(make([]byte, 0, 32), rndA[:]...), rotl(rndB[:])...)
	defer clear(plain)
	return cbcEncrypt(b, iv, plain), rndB, nil
}

// ev2SV builds SV1 (label A5 5A) or SV2 (5A A5) of AN12196 §(session key
// generation), with RndA and RndB as the card sends them (index 0 = byte
// 15 in the note's numbering):
//
//	label(2) ‖ 00 01 00 80 ‖ RndA[0:2] ‖ (RndA[2:8] ⊕ RndB[0:6]) ‖ RndB[6:16] ‖ RndA[8:16]
func ev2SV(label [2]byte, rndA, rndB [16]byte) []byte {
	sv := make([]byte, 0, 32)
	sv = append(sv, label[0], label[1], 0x00, 0x01, 0x00, 0x80)
	sv = append(sv, rndA[0:2]...)
	for i := 0; i < 6; i++ {
		sv = append(sv, rndA[2+i]^rndB[i])
	}
	sv = append(sv, rndB[6:16]...)
	return append(sv, rndA[8:16]...)
}

// EV2SessionKeys derives SesAuthENCKey = CMAC(Kx, SV1) and SesAuthMACKey =
// CMAC(Kx, SV2).
func EV2SessionKeys(kx secret.Bytes, rndA, rndB [16]byte) (enc, mac secret.Bytes, err error) {
	e, err := aesCMAC(kx, ev2SV([2]byte{0xA5, 0x5A}, rndA, rndB))
	if err != nil {
		return secret.Bytes{}, secret.Bytes{}, err
	}
	m, err := aesCMAC(kx, ev2SV([2]byte{0x5A, 0xA5}, rndA, rndB))
	if err != nil {
		clear(e)
		return secret.Bytes{}, secret.Bytes{}, err
	}
	return secret.New(e), secret.New(m), nil
}

// EV2Capabilities are the capability bytes of AuthenticateEV2First.
type EV2Capabilities struct {
	PDcap2, PCDcap2 [6]byte
}

// EV2FinishFirst checks the card's final answer to AuthenticateEV2First,
// E(Kx, TI ‖ RndA' ‖ PDcap2 ‖ PCDcap2) (32 bytes), and returns the new
// session with CmdCtr 0.
func EV2FinishFirst(kx secret.Bytes, answer []byte, rndA, rndB [16]byte) (*EV2, EV2Capabilities, error) {
	var caps EV2Capabilities
	if len(answer) != 32 {
		return nil, caps, invalid("the card's answer must be 32 bytes, not %d", len(answer))
	}
	b, err := aesBlock(kx)
	if err != nil {
		return nil, caps, err
	}
	plain := cbcDecrypt(b, make([]byte, 16), answer)
	defer clear(plain)
	if !equal(plain[4:20], rotl(rndA[:])) {
		return nil, caps, ErrCryptogram
	}
	s := &EV2{}
	copy(s.TI[:], plain[0:4])
	copy(caps.PDcap2[:], plain[20:26])
	copy(caps.PCDcap2[:], plain[26:32])
	if s.Enc, s.MAC, err = EV2SessionKeys(kx, rndA, rndB); err != nil {
		return nil, caps, err
	}
	return s, caps, nil
}

// EV2FinishNonFirst checks the card's answer to AuthenticateEV2NonFirst,
// E(Kx, RndA') (16 bytes), and returns new session keys with the previous
// session's TI and command counter.
func EV2FinishNonFirst(kx secret.Bytes, answer []byte, rndA, rndB [16]byte, prev *EV2) (*EV2, error) {
	if len(answer) != 16 {
		return nil, invalid("the card's answer must be 16 bytes, not %d", len(answer))
	}
	b, err := aesBlock(kx)
	if err != nil {
		return nil, err
	}
	plain := cbcDecrypt(b, make([]byte, 16), answer)
	defer clear(plain)
	if !equal(plain, rotl(rndA[:])) {
		return nil, ErrCryptogram
	}
	s := &EV2{TI: prev.TI, CmdCtr: prev.CmdCtr}
	if s.Enc, s.MAC, err = EV2SessionKeys(kx, rndA, rndB); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *EV2) ctr(delta uint16) []byte {
	return binary.LittleEndian.AppendUint16(nil, s.CmdCtr+delta)
}

// commandMAC is MACt(CMAC(SesAuthMACKey, Cmd ‖ CmdCtr ‖ TI ‖ header ‖ data)).
func (s *EV2) commandMAC(cmd byte, header, data []byte) ([]byte, error) {
	in := append([]byte{cmd}, s.ctr(0)...)
	in = append(append(append(in, s.TI[:]...), header...), data...)
	full, err := aesCMAC(s.MAC, in)
	if err != nil {
		return nil, err
	}
	return macT(full), nil
}

// iv is E(SesAuthENCKey, label ‖ TI ‖ CmdCtr(+delta) ‖ 00×8): label A5 5A
// for commands (IVc), 5A A5 for responses (IVr).
func (s *EV2) iv(label [2]byte, delta uint16) ([]byte, error) {
	b, err := aesBlock(s.Enc)
	if err != nil {
		return nil, err
	}
	in := make([]byte, 16)
	in[0], in[1] = label[0], label[1]
	copy(in[2:6], s.TI[:])
	copy(in[6:8], s.ctr(delta))
	out := make([]byte, 16)
	b.Encrypt(out, in)
	return out, nil
}

// ProtectMAC returns the MACt to append to a command in CommMode.MAC.
func (s *EV2) ProtectMAC(cmd byte, header, data []byte) ([]byte, error) {
	return s.commandMAC(cmd, header, data)
}

// ProtectFull encrypts a command's data in CommMode.FULL (80 00 padding,
// always) and returns ciphertext ‖ MACt, to follow the plain header.
func (s *EV2) ProtectFull(cmd byte, header, data []byte) ([]byte, error) {
	iv, err := s.iv([2]byte{0xA5, 0x5A}, 0)
	if err != nil {
		return nil, err
	}
	b, _ := aesBlock(s.Enc)
	padded := padISO(data, aes.BlockSize)
	defer clear(padded)
	ct := cbcEncrypt(b, iv, padded)
	m, err := s.commandMAC(cmd, header, ct)
	if err != nil {
		return nil, err
	}
	return append(ct, m...), nil
}

// CheckResponse verifies a response's MACt over RC ‖ CmdCtr+1 ‖ TI ‖ data
// and, on success, advances the command counter.
func (s *EV2) CheckResponse(rc byte, data, mact []byte) error {
	in := append([]byte{rc}, s.ctr(1)...)
	in = append(append(in, s.TI[:]...), data...)
	full, err := aesCMAC(s.MAC, in)
	if err != nil {
		return err
	}
	if !equal(macT(full), mact) {
		return ErrCryptogram
	}
	s.CmdCtr++
	return nil
}

// OpenFull verifies and decrypts a CommMode.FULL response (ciphertext ‖
// MACt), advancing the command counter.
func (s *EV2) OpenFull(rc byte, body []byte) ([]byte, error) {
	if len(body) < 8 || (len(body)-8)%16 != 0 {
		return nil, invalid("a FULL response is n×16 bytes of data and an 8-byte MAC")
	}
	ct, mact := body[:len(body)-8], body[len(body)-8:]
	iv, err := s.iv([2]byte{0x5A, 0xA5}, 1)
	if err != nil {
		return nil, err
	}
	if err := s.CheckResponse(rc, ct, mact); err != nil {
		return nil, err
	}
	if len(ct) == 0 {
		return nil, nil
	}
	b, _ := aesBlock(s.Enc)
	return unpadISO(cbcDecrypt(b, iv, ct))
}

// ChangeKey builds the data of a ChangeKey (0xC4) command in CommMode.FULL
// for key number keyNo (with any key-set bits) while authenticated with
// authKeyNo: KeyNo ‖ E(...) ‖ MACt. Changing another key sends
// (NewKey ⊕ OldKey) ‖ KeyVer ‖ CRC32(NewKey); changing the authenticated key
// sends NewKey ‖ KeyVer, after which the card ends the session.
func (s *EV2) ChangeKey(keyNo, authKeyNo byte, newKey, oldKey secret.Bytes, keyVer byte) ([]byte, error) {
	if newKey.Len() != 16 {
		return nil, invalid("new key must be AES-128")
	}
	var plain []byte
	if keyNo&0x3F == authKeyNo&0x3F {
		plain = append(append(plain, newKey.Reveal()...), keyVer)
	} else {
		if oldKey.Len() != 16 {
			return nil, invalid("old key must be AES-128")
		}
		x := make([]byte, 16)
		for i := range x {
			x[i] = newKey.Reveal()[i] ^ oldKey.Reveal()[i]
		}
		plain = append(append(x, keyVer), CRC32(newKey.Reveal())...)
	}
	defer clear(plain)
	body, err := s.ProtectFull(0xC4, []byte{keyNo}, plain)
	if err != nil {
		return nil, err
	}
	return append([]byte{keyNo}, body...), nil
}
