package cardauth_test

import (
	"bytes"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/vectors"
)

// icaoSession authenticates as Appendix D.3 does and returns the session.
func icaoSession(t *testing.T, f vectors.ICAO9303) *cardauth.ISOSession {
	t.Helper()
	a, _ := icaoBegin(t, f)
	s, err := a.Finish(secret.Copy(unhex(t, f.MA.KEnc)), secret.Copy(unhex(t, f.MA.KMAC)), append(unhex(t, f.MA.RespData), 0x90, 0x00))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestISOSecureMessagingICAO runs ICAO 9303-11 Appendix D.4 on the
// session D.3 established: SELECT EF.COM and two READ BINARY, each
// protected command, SSC, response, decrypted data and status.
func TestISOSecureMessagingICAO(t *testing.T) {
	f := loadICAO(t)
	s := icaoSession(t, f)
	var file []byte
	for _, v := range f.SM {
		if v.Source == "" || !bytes.Equal(s.SSC, unhex(t, v.SSCBefore)) {
			t.Fatalf("%s: SSC %X before, want %s", v.ID, s.SSC, v.SSCBefore)
		}
		cmd, err := cardauth.ParseISOCommand(unhex(t, v.Command))
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ProtectCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, unhex(t, v.ProtectedCommand)) || !bytes.Equal(s.SSC, unhex(t, v.SSCCommand)) || !s.Pending {
			t.Fatalf("%s: protected %X (SSC %X), want %s", v.ID, got, s.SSC, v.ProtectedCommand)
		}
		r, err := s.CheckResponse(unhex(t, v.Response))
		if err != nil {
			t.Fatalf("%s: %v", v.ID, err)
		}
		if !bytes.Equal(r.Data, unhex(t, v.Data)) || r.SW != 0x9000 || v.SW != "9000" || !bytes.Equal(s.SSC, unhex(t, v.SSCResponse)) || s.Pending {
			t.Fatalf("%s: data %X SW %04X SSC %X", v.ID, r.Data, r.SW, s.SSC)
		}
		file = append(file, r.Data...)
	}
	if !bytes.Equal(file, unhex(t, f.EFCOM.Content)) {
		t.Fatalf("EF.COM %X", file)
	}
}

// TestISOSecureMessagingRefusals: responses that do not verify, and
// commands secure messaging does not take.
func TestISOSecureMessagingRefusals(t *testing.T) {
	f := loadICAO(t)
	read := f.SM[1]
	// at returns the session as it stands after the READ BINARY command.
	at := func() *cardauth.ISOSession {
		s := icaoSession(t, f)
		for _, v := range f.SM[:1] {
			cmd, _ := cardauth.ParseISOCommand(unhex(t, v.Command))
			if _, err := s.ProtectCommand(cmd); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CheckResponse(unhex(t, v.Response)); err != nil {
				t.Fatal(err)
			}
		}
		cmd, _ := cardauth.ParseISOCommand(unhex(t, read.Command))
		if _, err := s.ProtectCommand(cmd); err != nil {
			t.Fatal(err)
		}
		return s
	}
	resp := unhex(t, read.Response)
	flip := func(i int) []byte {
		b := append([]byte(nil), resp...)
		b[i] ^= 1
		return b
	}
	for _, c := range []struct {
		name string
		resp []byte
		want errkind.Kind
	}{
		{"fail/MAC altered", flip(len(resp) - 3), errkind.CheckFailed},
		{"fail/DO'87' cryptogram altered", flip(4), errkind.CheckFailed},
		{"fail/DO'99' altered", flip(13), errkind.CheckFailed},
		{"fail/trailer differs from DO'99'", flip(len(resp) - 1), errkind.CheckFailed},
		{"fail/plain 6988", []byte{0x69, 0x88}, errkind.CheckFailed},
		{"fail/plain 9000", []byte{0x90, 0x00}, errkind.CheckFailed},
		{"fail/no DO'8E'", append(resp[:15:15], 0x90, 0x00), errkind.InvalidInput},
		{"fail/no DO'99'", append(append([]byte(nil), resp[:11]...), resp[15:]...), errkind.InvalidInput},
		{"fail/a 4-byte MAC", append(append(append([]byte(nil), resp[:15]...), 0x8E, 0x04, 1, 2, 3, 4), 0x90, 0x00), errkind.InvalidInput},
		{"fail/an object after DO'8E'", append(append(append([]byte(nil), resp[:len(resp)-2]...), 0x99, 0x02, 0x90, 0x00), 0x90, 0x00), errkind.InvalidInput},
		{"fail/an unknown object first", append([]byte{0x81, 0x01, 0x00}, resp...), errkind.InvalidInput},
		{"fail/no status", nil, errkind.InvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := at()
			before := append([]byte(nil), s.SSC...)
			_, err := s.CheckResponse(c.resp)
			if errkind.Of(err) != c.want || err == nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !bytes.Equal(s.SSC, before) || !s.Pending {
				t.Fatal("a refused response moved the session on")
			}
		})
	}

	cmd := func(b ...byte) cardauth.ISOCommand {
		c, err := cardauth.ParseISOCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		name string
		cmd  cardauth.ISOCommand
	}{
		{"fail/CLA already secure messaging (0C)", cmd(0x0C, 0xB0, 0, 0, 4)},
		{"fail/CLA proprietary (80)", cmd(0x80, 0xCA, 0, 0, 4)},
		{"fail/CLA further interindustry (40)", cmd(0x40, 0xB0, 0, 0, 4)},
		{"fail/CLA chaining (10)", cmd(0x10, 0xD6, 0, 0, 1, 0xAA)},
		{"fail/Ne out of range", cardauth.ISOCommand{INS: 0xB0, Ne: 65537}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := icaoSession(t, f)
			if _, err := s.ProtectCommand(c.cmd); errkind.Of(err) != errkind.InvalidInput || s.Pending {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("fail/two commands without a response", func(t *testing.T) {
		s := at()
		if _, err := s.ProtectCommand(cmd(0x00, 0xB0, 0, 0, 4)); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/a response without a command", func(t *testing.T) {
		s := icaoSession(t, f)
		if _, err := s.CheckResponse(unhex(t, f.SM[0].Response)); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/a state whose SSC is not a block", func(t *testing.T) {
		s := icaoSession(t, f)
		s.SSC = s.SSC[:4]
		if _, err := s.ProtectCommand(cmd(0x00, 0xB0, 0, 0, 4)); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("got %v", err)
		}
	})
}

// TestISOSecureMessagingAESInterop runs the AES-128 command and response
// that gmrtd recorded from a chip (see aes_interop in the vector file):
// the IV E(KS_enc, SSC), the MAC over the padded input, the 8-byte MAC.
func TestISOSecureMessagingAESInterop(t *testing.T) {
	f := loadICAO(t)
	if f.AES.Source == "" {
		t.Fatal("no source")
	}
	c := f.AES.Command
	s := &cardauth.ISOSession{Alg: keys.AES128, Enc: secret.Copy(unhex(t, c.KSEnc)), MAC: secret.Copy(unhex(t, c.KSMAC)), SSC: unhex(t, c.SSCBefore)}
	cmd, err := cardauth.ParseISOCommand(unhex(t, c.Command))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ProtectCommand(cmd)
	if err != nil || !bytes.Equal(got, unhex(t, c.ProtectedCommand)) || !bytes.Equal(s.SSC, unhex(t, c.SSCAfter)) {
		t.Fatalf("protected %X SSC %X (%v), want %s", got, s.SSC, err, c.ProtectedCommand)
	}
	r := f.AES.Response
	s = &cardauth.ISOSession{Alg: keys.AES128, Enc: secret.Copy(unhex(t, r.KSEnc)), MAC: secret.Copy(unhex(t, r.KSMAC)), SSC: unhex(t, r.SSCBefore), Pending: true}
	res, err := s.CheckResponse(unhex(t, r.Response))
	if err != nil || !bytes.Equal(res.Data, unhex(t, r.Data)) || res.SW != 0x9000 || !bytes.Equal(s.SSC, unhex(t, r.SSCAfter)) {
		t.Fatalf("response %X SW %04X SSC %X (%v)", res.Data, res.SW, s.SSC, err)
	}
}

// TestParseISOCommand covers the four cases of ISO/IEC 7816-3 §12.1 in
// short and extended form.
func TestParseISOCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		apdu string
		data string
		ne   int
		ok   bool
	}{
		{"ok/case 1", "00A4020C", "", 0, true},
		{"ok/case 2S", "00B0000004", "", 4, true},
		{"ok/case 2S Le 00 is 256", "00B0000000", "", 256, true},
		{"ok/case 3S", "00A4020C02011E", "011E", 0, true},
		{"ok/case 4S", "00A4020002011E00", "011E", 256, true},
		{"ok/case 2E", "00B00000000100", "", 256, true},
		{"ok/case 2E Le 0000 is 65536", "00B00000000000", "", 65536, true},
		{"ok/case 3E", "00D60000000002AABB", "AABB", 0, true},
		{"ok/case 4E", "00D60000000002AABB1000", "AABB", 4096, true},
		{"fail/three bytes", "00A402", "", 0, false},
		{"fail/Lc longer than the data", "00A4020C03011E", "", 0, false},
		{"fail/Lc shorter than the data", "00A4020C01011E0000", "", 0, false},
		{"fail/extended Lc 0", "00D60000000000AA", "", 0, false},
		{"fail/extended Lc too long", "00D60000000003AABB", "", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd, err := cardauth.ParseISOCommand(unhex(t, c.apdu))
			if !c.ok {
				if errkind.Of(err) != errkind.InvalidInput {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(cmd.Data, unhex(t, c.data)) || cmd.Ne != c.ne {
				t.Fatalf("%+v (%v)", cmd, err)
			}
		})
	}
}
