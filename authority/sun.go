package authority

import (
	"context"
	"encoding/hex"
	"strings"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

// SUNProfile says how the keys of a family of NTAG 424 DNA tags are
// derived: SDMMetaReadKey by AN10922 from MetaMaster with M = AID ‖
// SystemID (the same for every tag, since the UID is inside the encrypted
// PICC data), SDMFileReadKey from FileMaster with M = UID ‖ AID ‖
// SystemID (per tag).
type SUNProfile struct {
	MetaMaster, FileMaster keys.Ref
	AID, SystemID          []byte
}

// Keys lists the profile's master keys, for the policy.
func (s SUNProfile) Keys() []keys.Ref { return []keys.Ref{s.MetaMaster, s.FileMaster} }

// SUNMessage is one SUN message from a tapped tag's URL.
type SUNMessage struct {
	PICCData    []byte
	EncFileData []byte
	MACInput    []byte
	SDMMAC      []byte
}

// SUNResult is a verified SUN message.
type SUNResult struct {
	UID      []byte
	Counter  uint32
	FileData []byte
}

// SUNProfileByName returns a SUN profile.
func (a *Authority) SUNProfileByName(name string) (SUNProfile, error) {
	p, ok := a.sun[name]
	if !ok {
		return SUNProfile{}, keys.Errorf(keys.KindNotFound, "no SUN profile %q", name)
	}
	return p, nil
}

// VerifySUN verifies a SUN message statelessly — decrypt the PICC data,
// derive the tag's SDM session keys, check the SDMMAC over the exact
// input, decrypt the file data — and then refuses a counter that did not
// increase for that tag (a replayed tap). The counter is recorded only for
// a message whose MAC verified.
func (a *Authority) VerifySUN(ctx context.Context, _ identity.Principal, _ policies.Grant, profile string, m SUNMessage) (SUNResult, error) {
	prof, err := a.SUNProfileByName(profile)
	if err != nil {
		return SUNResult{}, err
	}
	scheme := append(append([]byte(nil), prof.AID...), prof.SystemID...)
	_, meta, err := a.cardKey(ctx, prof.MetaMaster, scheme)
	if err != nil {
		return SUNResult{}, err
	}
	picc, err := cardauth.DecryptPICCData(meta, m.PICCData)
	meta.Wipe()
	if err != nil {
		return SUNResult{}, err
	}
	if len(picc.UID) != 7 || picc.Tag&0x40 == 0 {
		return SUNResult{}, keys.Errorf(keys.KindInvalidInput, "sun: the PICC data mirrors no UID and counter")
	}
	_, fileKey, err := a.cardKey(ctx, prof.FileMaster, append(append([]byte(nil), picc.UID...), scheme...))
	if err != nil {
		return SUNResult{}, err
	}
	enc, macKey, err := cardauth.SDMSessionKeys(fileKey, picc.UID, picc.Counter)
	fileKey.Wipe()
	if err != nil {
		return SUNResult{}, err
	}
	defer enc.Wipe()
	defer macKey.Wipe()
	if err := cardauth.VerifySDMMAC(macKey, m.MACInput, m.SDMMAC); err != nil {
		return SUNResult{}, err
	}
	res := SUNResult{UID: picc.UID, Counter: picc.Counter}
	if len(m.EncFileData) > 0 {
		if res.FileData, err = cardauth.DecryptFileData(enc, picc.Counter, m.EncFileData); err != nil {
			return SUNResult{}, err
		}
	}
	tag := profile + "/" + strings.ToUpper(hex.EncodeToString(picc.UID))
	if err := a.state.AdvanceSUNCounter(ctx, tag, picc.Counter); err != nil {
		return SUNResult{}, err
	}
	return res, nil
}
