package vectors

// ICAOBAC is the part of cardauth/testdata/icao9303_bac.json (ICAO Doc
// 9303 Part 11, Appendix D: Basic Access Control worked example) that
// tests beyond cardauth replay through samd: the card's keys, the
// randoms of both sides, the mutual authentication and the
// secure-messaging exchanges, each as the appendix prints it.
type ICAOBAC struct {
	MRZ struct {
		KSeed string `json:"k_seed"`
	} `json:"mrz"`
	Auth struct {
		KEnc         string `json:"k_enc"`
		KMAC         string `json:"k_mac"`
		RndICC       string `json:"rnd_icc"`
		RndIFD       string `json:"rnd_ifd"`
		KIFD         string `json:"k_ifd"`
		KICC         string `json:"k_icc"`
		GetChallenge string `json:"get_challenge_apdu"`
		APDU         string `json:"apdu"`
		RespData     string `json:"resp_data"`
		KSEnc        string `json:"ks_enc"`
		KSMAC        string `json:"ks_mac"`
		SSC          string `json:"ssc"`
	} `json:"mutual_authenticate"`
	SM []struct {
		ID               string `json:"id"`
		Command          string `json:"command"`
		ProtectedCommand string `json:"protected_command"`
		Response         string `json:"response"`
		Data             string `json:"data"`
		SW               string `json:"sw"`
	} `json:"secure_messaging"`
	EFCOM struct {
		FID     string `json:"fid"`
		Content string `json:"content"`
	} `json:"ef_com"`
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
