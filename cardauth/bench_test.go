package cardauth_test

import (
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/secret"
)

func benchSession() *cardauth.EV2 {
	s := &cardauth.EV2{Enc: secret.Copy(make([]byte, 16)), MAC: secret.Copy(make([]byte, 16))}
	s.TI = [4]byte{1, 2, 3, 4}
	return s
}

func BenchmarkEV2SessionKeys(b *testing.B) {
	kx := secret.Copy(make([]byte, 16))
	var ra, rb [16]byte
	b.ReportAllocs()
	for b.Loop() {
		e, m, _ := cardauth.EV2SessionKeys(kx, ra, rb)
		e.Wipe()
		m.Wipe()
	}
}

func BenchmarkEV2ProtectMAC(b *testing.B) {
	s := benchSession()
	header := []byte{2, 0, 0, 0, 16, 0, 0}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.ProtectMAC(0xAD, header, nil)
	}
}

func BenchmarkEV2ProtectFull(b *testing.B) {
	s := benchSession()
	data := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.ProtectFull(0x8D, []byte{2, 0, 0, 0, 32, 0, 0}, data)
	}
}

func BenchmarkSUNVerify(b *testing.B) {
	k := secret.Copy(make([]byte, 16))
	uid := []byte{4, 0xDE, 0x5F, 0x1E, 0xAC, 0xC0, 0x40}
	b.ReportAllocs()
	for b.Loop() {
		_, mac, _ := cardauth.SDMSessionKeys(k, uid, 61)
		_ = cardauth.VerifySDMMAC(mac, nil, make([]byte, 8))
	}
}
