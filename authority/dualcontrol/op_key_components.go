package dualcontrol

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
)

// ComponentsParams is a component ceremony's proposal: the key to import,
// how many components (each from a different officer), and the combined
// key's check value.
type ComponentsParams struct {
	KeySpec
	Components int `json:"components"`
	CheckSpec      // of the combined key
}

// componentImport is a parsed ComponentsParams.
type componentImport struct {
	key        newKey
	components int
	check      checkValue
}

func parseComponents(p *ComponentsParams) (componentImport, error) {
	key, err := p.KeySpec.parse(true)
	if err != nil {
		return componentImport{}, err
	}
	if p.Components < 2 || p.Components > 3 {
		return componentImport{}, fmt.Errorf("components: 2 or 3, each from a different officer")
	}
	check, err := p.CheckSpec.parse()
	if err != nil {
		return componentImport{}, err
	}
	return componentImport{key: key, components: p.Components, check: check}, nil
}

func componentAAD(id, officer string) []byte {
	return []byte("samd-key-component|" + id + "|" + officer)
}

// SubmitComponent takes one officer's component of a component ceremony:
// its check value is verified (a wrong one is refused and nothing is
// kept), it is sealed in the HSM under SealKey, and it counts as the
// officer's approval. When the last component arrives and the quorum is
// met, the components are opened, combined (XOR; SoftHSM2 and most
// tokens have no XOR derivation, so this happens in samd's memory for
// the moment of the import only) and imported, and the combined key's
// check value is verified against the proposal's.
func (o *Officers) SubmitComponent(ctx context.Context, p identity.Principal, id string, value secret.Bytes, check []byte) (state.Proposal, error) {
	defer value.Wipe()
	if err := o.Admit(ctx, p); err != nil {
		return state.Proposal{}, err
	}
	prop, err := o.proposalIn(ctx, p, id)
	if err != nil {
		return prop, err
	}
	if prop.Operation != OpKeyComponents {
		return prop, errkind.Errorf(errkind.InvalidInput, "officers: proposal %s is not a component ceremony", id)
	}
	if prop.Status != state.ProposalOpen {
		return prop, errkind.Errorf(errkind.Denied, "officers: proposal %s is %s", id, prop.Status)
	}
	_, ceremony, err := parsed(prop.Params, parseComponents)
	if err != nil {
		return prop, err
	}
	got, err := kcv.Compute(ceremony.key.alg, value, ceremony.check.method)
	if err != nil {
		return prop, errkind.Wrap(errkind.InvalidInput, err, "component")
	}
	if subtle.ConstantTimeCompare(got, check) != 1 {
		return prop, errkind.Errorf(errkind.CheckFailed, "officers: the component does not match its check value; nothing was kept")
	}
	sk, err := o.sealKey()
	if err != nil {
		return prop, err
	}
	me := officerID(p)
	plain := append(append([]byte(nil), check...), value.Reveal()...)
	sealed, err := o.keys.SealData(ctx, sk, plain, componentAAD(id, me))
	clear(plain)
	if err != nil {
		return prop, err
	}
	// The component and its officer's approval are one step: a refused
	// one (a second component, an officer who voted, an expired
	// proposal) leaves nothing behind.
	if prop, err = o.cfg.State.AddComponent(ctx, id, me, sealed, o.cfg.Now()); err != nil {
		return prop, err
	}
	audit.NoteFrom(ctx).Input(audit.Input{Name: "component for proposal " + prop.Operation, Size: value.Len(), SHA256: id})
	comps, err := o.cfg.State.Components(ctx, id)
	if err != nil {
		return prop, err
	}
	if len(comps) < ceremony.components {
		return o.proposal(ctx, id)
	}
	return o.maybeRun(ctx, id, o.quorum[OpKeyComponents])
}

func (o *Officers) sealKey() (keys.Key, error) {
	if !o.cfg.SealKey.Valid() {
		return keys.Key{}, errkind.Errorf(errkind.Unavailable, "officers: no seal key configured (card_sessions.seal_key) for component ceremonies")
	}
	return o.keys.Key(o.cfg.SealKey)
}

// importComponents opens the components of proposal id, and combines and
// imports them.
func (o *Officers) importComponents(ctx context.Context, id string, p componentImport) (string, error) {
	comps, err := o.cfg.State.Components(ctx, id)
	if err != nil {
		return "", err
	}
	if len(comps) != p.components {
		return "", fmt.Errorf("%d of %d components arrived", len(comps), p.components)
	}
	sk, err := o.sealKey()
	if err != nil {
		return "", err
	}
	var values []secret.Bytes
	var checks [][]byte
	defer func() {
		for _, v := range values {
			v.Wipe()
		}
	}()
	for _, c := range comps {
		plain, err := o.keys.OpenData(ctx, sk, c.Sealed, componentAAD(id, c.Officer))
		if err != nil {
			return "", fmt.Errorf("the component of %s does not open: %w", c.Officer, err)
		}
		checks = append(checks, plain[:3])
		values = append(values, secret.New(plain[3:]))
	}
	ref, role, alg := p.key.ref, p.key.role, p.key.alg
	want, m := p.check.want, p.check.method
	k, err := o.importKey(ctx, p.key, values, checks, m, want)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ref.String())
	out := fmt.Sprintf("imported %s (%s, %s) from %d components; KCV %X (%s) as proposed", ref, role, alg, len(comps), want, m)
	if k.Exportable {
		out += "; exportable (key.export may wrap it)"
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}
