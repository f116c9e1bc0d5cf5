package dualcontrol

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/tr31"
)

// ExportKeys is what exportable keys and key.export need of the key store
// beyond Keys: keys made exportable (CKA_EXTRACTABLE, still sensitive),
// the token's own wrap (C_WrapKey), and, for a TR-31 key block, which no
// token makes, the key's value in memory. A store without it makes no
// exportable key and exports none.
type ExportKeys interface {
	GenerateExportable(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error)
	ImportExportable(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error)
	WrapKey(ctx context.Context, kek, key keys.Key, mech keys.WrapMechanism) ([]byte, error)
	RevealExportable(ctx context.Context, key keys.Key) (secret.Bytes, error)
}

// importKey imports a key from clear components (each checked against its
// check value; the key's against want), exportable if the ceremony's key
// spec says so.
func (o *Officers) importKey(ctx context.Context, nk newKey, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error) {
	if !nk.exportable {
		return o.keys.ImportFromComponents(ctx, nk.ref, nk.role, nk.alg, comps, kcvs, m, want)
	}
	ek, ok := o.keys.(ExportKeys)
	if !ok {
		return keys.Key{}, errkind.Errorf(errkind.Unavailable, "officers: this key store makes no exportable keys")
	}
	return ek.ImportExportable(ctx, nk.ref, nk.role, nk.alg, comps, kcvs, m, want)
}

// ExportParams is a proposal to hand a shared key to a partner operator:
// the key, wrapped under the partner's key-encryption key (format kwp,
// AES key wrap with padding, RFC 5649; a wrap key) or in a TR-31 key
// block under the partner's key-block protection key (format tr31: version
// D under an AES KBPK, B under a TDEA one; a key-block key), with the
// key's check values.
type ExportParams struct {
	Key     string `json:"key"`     // "<name>:v<n>": a diversify-master or mac key made exportable
	KEK     string `json:"kek"`     // "<name>:v<n>": the partner's KEK or KBPK, imported under dual control
	Format  string `json:"format"`  // "kwp" or "tr31"
	Partner string `json:"partner"` // the partner operator's id, for the record
}

// keyExport is a parsed ExportParams.
type keyExport struct {
	key, kek keys.Ref
	mech     keys.WrapMechanism
	partner  string
}

// parseExport checks a key.export proposal against what can be known
// before it runs: a key that may never leave (not exportable in the
// token, or its key entry does not say exportable) is refused at once,
// whatever the quorum. run checks everything again.
func (o *Officers) parseExport(p *ExportParams) (keyExport, error) {
	var r keyExport
	var err error
	if r.key, err = keys.ParseLabel("samd:" + p.Key); err != nil {
		return r, fmt.Errorf("key: %w", err)
	}
	if r.kek, err = keys.ParseLabel("samd:" + p.KEK); err != nil {
		return r, fmt.Errorf("kek: %w", err)
	}
	switch p.Format {
	case "kwp":
		r.mech = keys.WrapKWP
	case "tr31":
		r.mech = keys.WrapTR31
	default:
		return r, fmt.Errorf("format: kwp (AES key wrap with padding, RFC 5649) or tr31 (TR-31 key block)")
	}
	if _, err := identity.New(identity.RoleTerminal, p.Partner, "x"); err != nil || p.Partner == "" {
		return r, fmt.Errorf("partner: the partner operator's id")
	}
	r.partner = p.Partner
	_, err = o.exportable(r.key)
	return r, err
}

// exportable returns the key if it may leave samd: a diversification
// master or MAC key (a scheme's shared card or object keys), made
// exportable in the token, whose entry in the active policy says
// exportable. Per-card keys are never token objects, so never exported
// here (personalisation's ExportDiversifiedKey wraps those).
func (o *Officers) exportable(ref keys.Ref) (keys.Key, error) {
	k, err := o.keys.Key(ref)
	if err != nil {
		return keys.Key{}, err
	}
	switch {
	case !keys.Exportable(k.Role):
		return keys.Key{}, &errkind.Error{Kind: errkind.WrongRole, Msg: fmt.Sprintf("officers: %s is a %s key: only shared card and object keys (diversify-master, mac) are ever exported", ref, k.Role)}
	case !k.Exportable:
		return keys.Key{}, &errkind.Error{Kind: errkind.WrongRole, Msg: fmt.Sprintf("officers: %s was made non-extractable: it never leaves the HSM", ref)}
	case o.cfg.Policy == nil || !o.cfg.Policy().Exportable(ref):
		return keys.Key{}, errkind.Errorf(errkind.Denied, "officers: the key entry of %s does not say exportable: it never leaves, whatever the quorum", ref)
	}
	return k, nil
}

// importCeremonies are the operations that import a key under dual
// control.
var importCeremonies = []string{OpKeyComponents, OpKeyImportKWP, OpKeyImportTR31}

// importedUnderDualControl reports whether a key came into the token by an
// import ceremony that ran: an executed key.import-* proposal names it.
// (A generated key is no partner's; a key samd dev or a test imported
// directly is nobody's.)
func (o *Officers) importedUnderDualControl(ctx context.Context, ref keys.Ref) (bool, error) {
	ps, err := o.cfg.State.Proposals(ctx, time.Time{})
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p.Status != state.ProposalExecuted || !slices.Contains(importCeremonies, p.Operation) {
			continue
		}
		var named struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
		}
		if json.Unmarshal(p.Params, &named) == nil && named.Name == ref.Name.String() && named.Version == int(ref.Version) {
			return true, nil
		}
	}
	return false, nil
}

// keyExport wraps the key for the partner. kwp: the token wraps it under
// the KEK (C_WrapKey), and the key never enters samd's memory. tr31: no
// token makes a TR-31 block, so the key's value is in samd's memory while
// the block's payload is enciphered (under keys the token derives from
// the KBPK), and is wiped at once. The result, the block, the partner and
// the check values go to the audit record; the result carries the block
// for the officers to send (samd admin approve --out FILE writes it).
func (o *Officers) keyExport(ctx context.Context, _ string, p keyExport) (string, error) {
	ek, ok := o.keys.(ExportKeys)
	if !ok {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this key store exports no keys")
	}
	k, err := o.exportable(p.key)
	if err != nil {
		return "", err
	}
	kek, err := o.keys.Key(p.kek)
	if err != nil {
		return "", err
	}
	usage := keys.UsageWrap
	if p.mech == keys.WrapTR31 {
		usage = keys.UsageKeyBlock
	}
	if err := kek.Check(usage); err != nil {
		return "", err
	}
	imported, err := o.importedUnderDualControl(ctx, p.kek)
	if err != nil {
		return "", err
	}
	if kek.Origin != keys.OriginImported || !imported {
		return "", errkind.Errorf(errkind.Denied, "officers: %s is no partner's key: a key leaves only under a key-encryption key imported under dual control (key.import-components, key.import-kwp, key.import-tr31)", p.kek)
	}
	// No key travels under a weaker key: refused here, and again by the
	// token's wrap and the TR-31 encoder.
	if err := keys.CheckProtection(kek.Algorithm, k.Algorithm); err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(p.key.String())
	audit.NoteFrom(ctx).Key(p.kek.String())
	var block, format string
	if p.mech == keys.WrapTR31 {
		v, err := ek.RevealExportable(ctx, k)
		if err != nil {
			return "", err
		}
		defer v.Wipe()
		h := exportHeader(kek.Algorithm, k)
		if block, err = tr31.Encode(rand.Reader, h, v, kek.Algorithm.KeyLen(), func(b []byte) ([]byte, error) {
			return o.keys.KeyBlockCMAC(ctx, kek, b)
		}); err != nil {
			return "", err
		}
		format = fmt.Sprintf("a TR-31 version %c key block (usage %s, mode of use %c, not exportable further)", h.Version, h.Usage, h.ModeOfUse)
	} else {
		w, err := ek.WrapKey(ctx, kek, k, keys.WrapKWP)
		if err != nil {
			return "", err
		}
		block, format = strings.ToUpper(hex.EncodeToString(w)), "AES key wrap with padding (RFC 5649), wrapped in the HSM"
	}
	audit.NoteFrom(ctx).Input(audit.Digest("exported-block", []byte(block)))
	out := fmt.Sprintf("exported %s (%s, %s) to partner %s under %s as %s", p.key, k.Role, k.Algorithm, p.partner, p.kek, format)
	if len(k.KCV) > 0 {
		out += fmt.Sprintf("; KCV %X (encrypt-zero)", k.KCV)
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	out += "\nblock: " + block
	audit.NoteFrom(ctx).Verdict(out)
	return out, nil
}

// exportHeader is the TR-31 header of an exported key: version D under an
// AES KBPK, B under a TDEA one; usage by the key's role — a card key
// master (diversify-master) E6 with mode X (it derives the cards' keys),
// a MAC key M6 (CMAC) with mode C (generate and verify); not exportable
// further.
func exportHeader(kbpk keys.Algorithm, k keys.Key) tr31.Header {
	h := tr31.Header{Version: 'D', Usage: "E6", Algorithm: 'A', ModeOfUse: 'X', KeyVersion: "00", Exportability: 'N'}
	if kbpk.TDEA() {
		h.Version = 'B'
	}
	if k.Algorithm.TDEA() {
		h.Algorithm = 'T'
	}
	if k.Role == keys.RoleMAC {
		h.Usage, h.ModeOfUse = "M6", 'C'
	}
	return h
}
