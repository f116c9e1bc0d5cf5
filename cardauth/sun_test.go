package cardauth_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
)

type sunVector struct {
	ID             string `json:"id"`
	MetaReadKey    string `json:"sdm_meta_read_key"`
	FileReadKey    string `json:"sdm_file_read_key"`
	PICCEncData    string `json:"picc_enc_data"`
	Tag            string `json:"picc_data_tag"`
	UID            string `json:"uid"`
	CtrValue       uint32 `json:"sdm_read_ctr_value"`
	SesEncKey      string `json:"ses_sdm_file_read_enc_key"`
	SesMACKey      string `json:"ses_sdm_file_read_mac_key"`
	MACInput       string `json:"mac_input"`
	SDMMAC         string `json:"sdmmac"`
	NegativeSDMMAC string `json:"negative_sdmmac"`
	EncFileData    string `json:"sdm_enc_file_data"`
	FileDataPlain  string `json:"file_data_plain"`
}

// TestSUN runs AN12196's SUN/SDM examples (and the two sdm-backend ones,
// for custom keys and plain mirroring): PICC data decryption, SDM session
// keys, SDMMAC over the exact input, and SDMENCFileData decryption.
func TestSUN(t *testing.T) {
	var f struct {
		Vectors []sunVector `json:"vectors"`
	}
	load(t, "testdata/an12196_sun.json", &f)
	if len(f.Vectors) < 5 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			uid, ctr := unhex(t, v.UID), v.CtrValue
			if v.PICCEncData != "" {
				d, err := cardauth.DecryptPICCData(secret.Copy(unhex(t, v.MetaReadKey)), unhex(t, v.PICCEncData))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(d.UID, uid) || d.Counter != ctr || strconv.FormatUint(uint64(d.Tag), 16) != "c7" {
					t.Fatalf("PICC data %X %d %X", d.UID, d.Counter, d.Tag)
				}
				// Under another meta key it does not decrypt to a PICC data tag.
				if _, err := cardauth.DecryptPICCData(secret.Copy(make([]byte, 15)), unhex(t, v.PICCEncData)); err == nil {
					t.Error("15-byte key accepted")
				}
			}
			enc, mac, err := cardauth.SDMSessionKeys(secret.Copy(unhex(t, v.FileReadKey)), uid, ctr)
			if err != nil {
				t.Fatal(err)
			}
			if v.SesEncKey != "" && !bytes.Equal(enc.Reveal(), unhex(t, v.SesEncKey)) {
				t.Fatalf("ENC key %X", enc.Reveal())
			}
			if v.SesMACKey != "" && !bytes.Equal(mac.Reveal(), unhex(t, v.SesMACKey)) {
				t.Fatalf("MAC key %X", mac.Reveal())
			}
			if v.SDMMAC != "" {
				if err := cardauth.VerifySDMMAC(mac, unhex(t, v.MACInput), unhex(t, v.SDMMAC)); err != nil {
					t.Fatalf("SDMMAC: %v", err)
				}
				bad := unhex(t, v.SDMMAC)
				bad[3] ^= 0x01
				if err := cardauth.VerifySDMMAC(mac, unhex(t, v.MACInput), bad); errkind.Of(err) != errkind.CheckFailed {
					t.Fatalf("tampered SDMMAC: %v", err)
				}
			}
			if v.NegativeSDMMAC != "" {
				if err := cardauth.VerifySDMMAC(mac, unhex(t, v.MACInput), unhex(t, v.NegativeSDMMAC)); err == nil {
					t.Fatal("the negative SDMMAC verified")
				}
			}
			if v.EncFileData != "" {
				plain, err := cardauth.DecryptFileData(enc, ctr, unhex(t, v.EncFileData))
				if err != nil || !bytes.Equal(plain, unhex(t, v.FileDataPlain)) {
					t.Fatalf("file data %X (%v)", plain, err)
				}
			}
		})
	}
}
