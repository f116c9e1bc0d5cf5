package authority

import (
	"context"
	"encoding/hex"
	"strings"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
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

// serves checks that both master keys' entries name protocol sun.
func (s SUNProfile) serves(g policies.Grant) error {
	for _, k := range s.Keys() {
		if _, err := g.ServeProtocol(k, policies.ProtocolSUN); err != nil {
			return err
		}
	}
	return nil
}

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
		return SUNProfile{}, errkind.Errorf(errkind.NotFound, "no SUN profile %q", name)
	}
	return p, nil
}

// VerifySUN verifies a SUN message statelessly — decrypt the PICC data,
// derive the tag's SDM session keys, check the SDMMAC over the exact
// input, decrypt the file data — and then refuses a counter that did not
// increase for that tag (a replayed tap). The counter is recorded only for
// a message whose MAC verified.
func (a *Authority) VerifySUN(ctx context.Context, p identity.Principal, g policies.Grant, profile string, m SUNMessage) (SUNResult, error) {
	out, err := a.VerifySUNBatch(ctx, p, g, []SUNItem{{Profile: profile, Message: m}})
	if err != nil {
		return SUNResult{}, err
	}
	return out[0].Result, out[0].Err
}

// SUNItem is one message of a batch.
type SUNItem struct {
	Profile string
	Message SUNMessage
}

// SUNOutcome is one message's result: Err is nil, or says why this
// message failed (a forged MAC, a replay, malformed input).
type SUNOutcome struct {
	Result SUNResult
	Err    error
}

// VerifySUNBatch verifies many SUN messages. Each profile's
// SDMMetaReadKey is derived once for the call, and the counters of the
// messages that verified are advanced in one state transaction, in order,
// so a replay inside the batch is caught too. An HSM or store failure
// fails the batch. Each message whose PICC data does not decrypt to a
// UID and counter, or whose SDMMAC does not verify, counts as a failed
// verification in the request's audit note; both are answered alike.
//
// A profile's keys must be entries of protocol sun
// (policies.Grant.ServeProtocol); a message of a profile whose keys are not
// fails alone.
func (a *Authority) VerifySUNBatch(ctx context.Context, _ identity.Principal, g policies.Grant, items []SUNItem) ([]SUNOutcome, error) {
	metas := map[string]secret.Bytes{}
	defer func() {
		for _, k := range metas {
			k.Wipe()
		}
	}()
	out := make([]SUNOutcome, len(items))
	// Each SDMMAC that does not verify is a failed verification, which
	// the server makes the caller wait for (limits.busy_after_failure).
	failed := 0
	defer func() { audit.NoteFrom(ctx).Failed(failed) }()
	var pending []state.SUNCounter
	var where []int
	for i, it := range items {
		prof, err := a.SUNProfileByName(it.Profile)
		if err == nil {
			err = prof.serves(g)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		scheme := append(append([]byte(nil), prof.AID...), prof.SystemID...)
		meta, ok := metas[it.Profile]
		if !ok {
			if _, meta, err = a.cardKey(ctx, prof.MetaMaster, scheme); err != nil {
				return nil, err
			}
			metas[it.Profile] = meta
		}
		res, err := a.verifySUN(ctx, prof, scheme, meta, it.Message)
		if err != nil {
			if !objectFailure(err) {
				return nil, err
			}
			if errkind.Of(err) == errkind.CheckFailed {
				failed++
			}
			out[i].Err = err
			continue
		}
		out[i].Result = res
		pending = append(pending, state.SUNCounter{Tag: it.Profile + "/" + strings.ToUpper(hex.EncodeToString(res.UID)), Counter: res.Counter})
		where = append(where, i)
	}
	if len(pending) == 0 {
		return out, nil
	}
	errs, err := a.state.AdvanceSUNCounters(ctx, pending)
	if err != nil {
		return nil, err
	}
	for j, i := range where {
		if errs[j] != nil {
			out[i] = SUNOutcome{Err: errs[j]}
		}
	}
	return out, nil
}

// verifySUN checks one message; it touches no state.
func (a *Authority) verifySUN(ctx context.Context, prof SUNProfile, scheme []byte, meta secret.Bytes, m SUNMessage) (SUNResult, error) {
	picc, err := cardauth.DecryptPICCData(meta, m.PICCData)
	if err != nil {
		return SUNResult{}, err
	}
	if len(picc.UID) != 7 || picc.Tag&0x40 == 0 {
		// What the PICC data decrypted to is a bit of a decryption under
		// the meta key: answered as a MAC that does not verify, and
		// counted as a failed verification like one.
		return SUNResult{}, cardauth.ErrCryptogram
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
	return res, nil
}
