package vectors

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

// ICAO9303 is cardauth/testdata/icao9303_bac.json: ICAO Doc 9303 Part 11
// Appendix D (Basic Access Control worked example: key derivation, mutual
// authentication, secure messaging) and G.1, every value recomputed with
// OpenSSL; cardauth, the card simulator, the authority and test/e2e
// replay it.
type ICAO9303 struct {
	Source string `json:"source"`
	KDF    []struct {
		ID      string `json:"id"`
		Source  string `json:"source"`
		Alg     string `json:"alg"`
		Seed    string `json:"seed"`
		Counter uint32 `json:"counter"`
		Key     string `json:"key"`
	} `json:"key_derivation"`
	MA struct {
		Source       string `json:"source"`
		KEnc         string `json:"k_enc"`
		KMAC         string `json:"k_mac"`
		RndICC       string `json:"rnd_icc"`
		RndIFD       string `json:"rnd_ifd"`
		KIFD         string `json:"k_ifd"`
		CmdData      string `json:"cmd_data"`
		APDU         string `json:"apdu"`
		GetChallenge string `json:"get_challenge_apdu"`
		RespData     string `json:"resp_data"`
		KICC         string `json:"k_icc"`
		KSEnc        string `json:"ks_enc"`
		KSMAC        string `json:"ks_mac"`
		SSC          string `json:"ssc"`
	} `json:"mutual_authenticate"`
	SM []struct {
		ID               string `json:"id"`
		Source           string `json:"source"`
		SSCBefore        string `json:"ssc_before"`
		Command          string `json:"command"`
		SSCCommand       string `json:"ssc_command"`
		ProtectedCommand string `json:"protected_command"`
		Response         string `json:"response"`
		SSCResponse      string `json:"ssc_response"`
		Data             string `json:"data"`
		SW               string `json:"sw"`
	} `json:"secure_messaging"`
	MRZ struct {
		KSeed string `json:"k_seed"`
	} `json:"mrz"`
	EFCOM struct {
		FID     string `json:"fid"`
		Content string `json:"content"`
	} `json:"ef_com"`
	AES struct {
		Source  string `json:"source"`
		Command struct {
			KSEnc            string `json:"ks_enc"`
			KSMAC            string `json:"ks_mac"`
			SSCBefore        string `json:"ssc_before"`
			Command          string `json:"command"`
			ProtectedCommand string `json:"protected_command"`
			SSCAfter         string `json:"ssc_after"`
		} `json:"command"`
		Response struct {
			KSEnc     string `json:"ks_enc"`
			KSMAC     string `json:"ks_mac"`
			SSCBefore string `json:"ssc_before"`
			Response  string `json:"response"`
			Data      string `json:"data"`
			SSCAfter  string `json:"ssc_after"`
		} `json:"response"`
	} `json:"aes_interop"`
}

// Card is the appendix's card, simulated: 2TDEA, 8-byte challenges, its
// K_enc and K_mac (D.1) and EF.COM (D.4). With appendix it draws D.3's
// RND.ICC and K.ICC, so that it answers exactly as the appendix prints;
// otherwise fresh ones.
func (v ICAO9303) Card(t testing.TB, appendix bool) *cardsim.ISO7816 {
	t.Helper()
	c := &cardsim.ISO7816{Alg: keys.TDEA2, ChallengeLen: 8, KEnc: Hex(t, v.MA.KEnc), KMAC: Hex(t, v.MA.KMAC), Rand: rand.Reader,
		Files: map[uint16][]byte{0x011E: Hex(t, v.EFCOM.Content)}}
	if appendix {
		c.Rand = bytes.NewReader(Hex(t, v.MA.RndICC+v.MA.KICC))
	}
	return c
}

// ICAOCardInput is the AN10922 input M = UID ‖ AID ‖ system identifier
// for which AN10922's AES-128 example master 00112233445566778899AABBCCDDEEFF
// gives ICAO's key seed 239AB9CB282DAF66231DC5A4DF6BFBAE: the UID and AID of
// AN10922's example and "ICAO-" followed by 16 bytes solved for that
// output (CMAC inverted under the published key; `openssl mac -cipher
// AES-128-CBC -macopt hexkey:00112233445566778899AABBCCDDEEFF CMAC` over
// 01 ‖ M checks it). With it samd, which derives a card's key seed by
// AN10922, derives ICAO's K_enc and K_mac.
var ICAOCardInput = struct{ UID, AID, SysID string }{"04782E21801D80", "3042F5", "4943414F2D7939600530FB95210155791567AB66C8"}
