package pkcs11

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// DER-encoded named-curve OIDs for CKA_EC_PARAMS.
var (
	oidP256 = []byte{0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07}
	oidP384 = []byte{0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22}
)

// usageAttrs sets every usage flag explicitly from the role, so that a
// module default can never add a usage.
func usageAttrs(u keys.Usage, private bool) []*p11.Attribute {
	a := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SIGN, u&(keys.UsageCMAC|keys.UsageSign|keys.UsageKeyBlock) != 0),
		p11.NewAttribute(p11.CKA_DECRYPT, u&keys.UsageDecrypt != 0),
		p11.NewAttribute(p11.CKA_UNWRAP, u&keys.UsageUnwrap != 0),
		p11.NewAttribute(p11.CKA_DERIVE, false),
	}
	if !private {
		a = append(a,
			p11.NewAttribute(p11.CKA_VERIFY, u&keys.UsageVerify != 0),
			p11.NewAttribute(p11.CKA_ENCRYPT, u&keys.UsageEncrypt != 0),
			p11.NewAttribute(p11.CKA_WRAP, u&keys.UsageWrap != 0),
		)
	}
	return a
}

// allowedMechanisms is the CKA_ALLOWED_MECHANISMS list of a role and
// algorithm: a second fence, enforced by the token, behind the usage flags.
func allowedMechanisms(role keys.Role, alg keys.Algorithm) []uint {
	switch role {
	case keys.RoleDiversifyMaster, keys.RoleMAC, keys.RoleKeyBlock:
		if alg.AES() {
			return []uint{p11.CKM_AES_CMAC}
		}
		return []uint{p11.CKM_DES3_CMAC}
	case keys.RoleWrap:
		return []uint{p11.CKM_AES_KEY_WRAP, p11.CKM_AES_KEY_WRAP_PAD}
	case keys.RoleSessionSeal:
		return []uint{p11.CKM_AES_GCM}
	case keys.RoleSign, keys.RoleCA, keys.RoleAudit, keys.RoleListSign:
		if alg == keys.RSA3072 {
			return []uint{p11.CKM_RSA_PKCS, p11.CKM_RSA_PKCS_PSS}
		}
		return []uint{p11.CKM_ECDSA}
	}
	return nil
}

// ulongs encodes a CK_ULONG array in the platform's layout.
func ulongs(v []uint) []byte {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.NativeEndian.AppendUint64(b, uint64(x))
	}
	return b
}

func keyTypeOf(alg keys.Algorithm) (keyType uint, genMech uint) {
	switch alg {
	case keys.AES128, keys.AES192, keys.AES256:
		return p11.CKK_AES, p11.CKM_AES_KEY_GEN
	case keys.TDEA2:
		return p11.CKK_DES2, p11.CKM_DES2_KEY_GEN
	case keys.TDEA3:
		return p11.CKK_DES3, p11.CKM_DES3_KEY_GEN
	case keys.ECP256, keys.ECP384:
		return p11.CKK_EC, p11.CKM_EC_KEY_PAIR_GEN
	case keys.RSA3072:
		return p11.CKK_RSA, p11.CKM_RSA_PKCS_KEY_PAIR_GEN
	}
	return 0, 0
}

// secretTemplate is the fixed template of a token secret key. Security
// attributes are set here, never taken from a caller. An exportable key
// (keys.Exportable roles only, made so under dual control) is
// CKA_EXTRACTABLE, so that C_WrapKey can wrap it for key.export; it stays
// CKA_SENSITIVE, so that its value is never read in clear. It is not
// CKA_WRAP_WITH_TRUSTED: only a token's SO can mark a wrapping key
// CKA_TRUSTED (SoftHSM2: "CKA_TRUSTED can only be set to true by the SO",
// and the SO cannot reach a private object), and samd holds no SO PIN
// (README "Threat model").
func secretTemplate(ref keys.Ref, role keys.Role, alg keys.Algorithm, exportable bool) []*p11.Attribute {
	kt, _ := keyTypeOf(alg)
	id := keys.MakeID(ref, role)
	t := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, kt),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, exportable),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_LABEL, ref.Label()),
		p11.NewAttribute(p11.CKA_ID, id[:]),
		p11.NewAttribute(p11.CKA_ALLOWED_MECHANISMS, ulongs(allowedMechanisms(role, alg))),
	}
	if alg.AES() {
		t = append(t, p11.NewAttribute(p11.CKA_VALUE_LEN, alg.KeyLen()))
	}
	return append(t, usageAttrs(role.Usage(), false)...)
}

// GenerateRequest asks for a new key version generated inside the token.
type GenerateRequest struct {
	Ref       keys.Ref
	Role      keys.Role
	Algorithm keys.Algorithm
	// Exportable makes a key that key.export may wrap (CKA_EXTRACTABLE):
	// a keys.Exportable role only, and only under dual control.
	Exportable bool
}

func (s *Store) checkNew(ref keys.Ref, role keys.Role, alg keys.Algorithm, exportable bool) (*conn, error) {
	if !ref.Valid() {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: invalid key reference")
	}
	if !alg.Fits(role) {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: a %s key cannot have role %s", alg, role)
	}
	if exportable && !keys.Exportable(role) {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: a key of role %s is never exportable", role)
	}
	c, err := s.live()
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, ok := c.index[ref]; ok {
		return nil, &errkind.Error{Kind: errkind.Exists, Msg: "pkcs11: key " + ref.String() + " already exists"}
	}
	for _, r := range c.refused {
		if r.Label == ref.Label() {
			return nil, &errkind.Error{Kind: errkind.Exists, Msg: "pkcs11: a refused object with label " + ref.Label() + " is in the token"}
		}
	}
	return c, nil
}

// reserve claims ref for a generation or import. It refuses a reference
// that is indexed or refused (errkind.Exists) or being created now, also
// by a call whose caller has gone (errkind.Busy). The returned function
// gives the claim up; calling it again does nothing.
func (s *Store) reserve(ref keys.Ref, role keys.Role, alg keys.Algorithm, exportable bool) (func(), error) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if _, ok := s.pending[ref]; ok {
		return nil, &errkind.Error{Kind: errkind.Busy, Msg: "pkcs11: key " + ref.String() + " is being created; retry once that has finished"}
	}
	if _, err := s.checkNew(ref, role, alg, exportable); err != nil {
		return nil, err
	}
	s.pending[ref] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.pendMu.Lock()
			delete(s.pending, ref)
			s.pendMu.Unlock()
		})
	}, nil
}

// isPending reports whether ref is being generated or imported now.
func (s *Store) isPending(ref keys.Ref) bool {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	_, ok := s.pending[ref]
	return ok
}

// made is a key the token created, with every object of it (a key pair
// has two).
type made struct {
	e       *entry
	handles []p11.ObjectHandle
}

// abandon settles a generation or import whose caller gave up before it
// returned: the key it made, if any, is destroyed — the caller was told
// the call failed, and the audit log says so, so the key must not exist —
// and the reference is given up, so that a retry creates the key afresh.
// It runs on the goroutine that received the late result.
func (s *Store) abandon(ref keys.Ref, m made, release func()) {
	defer func() {
		release()
		if h := s.cfg.hooks.settled; h != nil {
			h(ref)
		}
	}()
	if len(m.handles) == 0 {
		return // nothing was made, or the call cleaned up after itself
	}
	_, err := call(context.Background(), s, "destroy", ref, func(_ *conn, sh p11.SessionHandle) (struct{}, error) {
		var first error
		for _, h := range m.handles {
			if err := s.mod.DestroyObject(sh, h); err != nil && first == nil {
				first = err
			}
		}
		return struct{}{}, first
	}, nil)
	if err != nil {
		// The one object stays in the token; the next connect indexes it.
		s.log.Error("pkcs11: a key made after its caller gave up could not be destroyed", "key", ref.String(), "err", err)
		return
	}
	if c := s.cur.Load(); c != nil {
		c.mu.Lock()
		if e, ok := c.index[ref]; ok && slices.Contains(m.handles, e.handle) {
			delete(c.index, ref) // a reconnect indexed it meanwhile
		}
		c.mu.Unlock()
	}
	s.log.Warn("pkcs11: destroyed a key made after its caller gave up", "key", ref.String())
}

// Generate creates a key inside the token with its role's template and
// returns it after reading its attributes back: a key the token did not
// make sensitive, non-extractable and local is destroyed and refused. It
// runs under [Config.KeygenTimeout]; a key made after the caller gave up
// is destroyed (see [Store.abandon]), and a generation of the same
// reference meanwhile is refused with errkind.Busy.
func (s *Store) Generate(ctx context.Context, req GenerateRequest) (keys.Key, error) {
	release, err := s.reserve(req.Ref, req.Role, req.Algorithm, req.Exportable)
	if err != nil {
		return keys.Key{}, err
	}
	kt, mech := keyTypeOf(req.Algorithm)
	m, abandoned, err := callWithin(ctx, s, s.cfg.KeygenTimeout, "generate", req.Ref, func(c *conn, sh p11.SessionHandle) (made, error) {
		var handles []p11.ObjectHandle
		if req.Algorithm.Symmetric() {
			h, err := s.mod.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, secretTemplate(req.Ref, req.Role, req.Algorithm, req.Exportable))
			if err != nil {
				return made{}, err
			}
			handles = []p11.ObjectHandle{h}
		} else {
			pub, priv := pairTemplates(req.Ref, req.Role, req.Algorithm, kt)
			hpub, hpriv, err := s.mod.GenerateKeyPair(sh, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, pub, priv)
			if err != nil {
				return made{}, err
			}
			handles = []p11.ObjectHandle{hpriv, hpub}
		}
		if h := s.cfg.hooks.created; h != nil {
			h(req.Ref)
		}
		e, err := s.load(sh, handles[0], req.Ref.Label())
		if err == nil && e.key.Origin != keys.OriginGenerated {
			err = errors.New("the token did not mark the key as generated inside it (CKA_LOCAL)")
		}
		if err == nil && len(handles) == 2 {
			e.pub, err = s.publicKey(sh, handles[1], req.Algorithm)
		}
		if err == nil {
			err = s.fillCMACKCV(sh, e)
		}
		if err != nil {
			for _, h := range handles {
				_ = s.mod.DestroyObject(sh, h)
			}
			return made{}, &errkind.Error{Kind: errkind.CheckFailed, Msg: "pkcs11: generated key refused", Err: err}
		}
		return made{e: e, handles: handles}, nil
	}, func(m made) { s.abandon(req.Ref, m, release) })
	if abandoned {
		return keys.Key{}, err // abandon settles and releases
	}
	defer release()
	if err != nil {
		return keys.Key{}, err
	}
	return s.add(m.e)
}

func pairTemplates(ref keys.Ref, role keys.Role, alg keys.Algorithm, kt uint) (pub, priv []*p11.Attribute) {
	id := keys.MakeID(ref, role)
	pub = []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, kt),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_VERIFY, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_LABEL, ref.Label()),
		p11.NewAttribute(p11.CKA_ID, id[:]),
	}
	priv = []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, kt),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_LABEL, ref.Label()),
		p11.NewAttribute(p11.CKA_ID, id[:]),
		p11.NewAttribute(p11.CKA_ALLOWED_MECHANISMS, ulongs(allowedMechanisms(role, alg))),
	}
	priv = append(priv, usageAttrs(role.Usage(), true)...)
	switch alg {
	case keys.ECP256:
		pub = append(pub, p11.NewAttribute(p11.CKA_EC_PARAMS, oidP256))
	case keys.ECP384:
		pub = append(pub, p11.NewAttribute(p11.CKA_EC_PARAMS, oidP384))
	case keys.RSA3072:
		pub = append(pub,
			p11.NewAttribute(p11.CKA_MODULUS_BITS, 3072),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
	}
	return pub, priv
}

// Component is one clear key component with its check value.
type Component struct {
	Value secret.Bytes
	// KCV is the component's check value; it must match.
	KCV []byte
}

// ImportRequest asks to import a key from two or three clear components.
type ImportRequest struct {
	Ref        keys.Ref
	Role       keys.Role
	Algorithm  keys.Algorithm
	Components []Component
	// KCVMethod is how the component and key check values are computed.
	KCVMethod kcv.Method
	// KCV, when set, is the expected check value of the combined key.
	KCV []byte
	// Exportable: as GenerateRequest's.
	Exportable bool
}

// ImportComponents combines clear key components (XOR) and creates the key
// in the token as a sensitive, non-extractable object with its role's
// usage. Each component is checked against its KCV first, and the combined
// key against the request's KCV when one is given.
//
// The combined key exists in samd's memory for this call and is wiped
// before it returns. The components are the caller's to wipe.
//
// For tokens that can combine components themselves, the officer ceremony
// avoids this path; it is what the tests and `samd dev` use to load
// published test keys. Like [Store.Generate], it runs under
// [Config.KeygenTimeout] and destroys a key made after its caller gave up.
func (s *Store) ImportComponents(ctx context.Context, req ImportRequest) (keys.Key, error) {
	if !req.Algorithm.Symmetric() {
		return keys.Key{}, errkind.Errorf(errkind.InvalidInput, "pkcs11: only secret keys are imported from components")
	}
	release, err := s.reserve(req.Ref, req.Role, req.Algorithm, req.Exportable)
	if err != nil {
		return keys.Key{}, err
	}
	settled := false // once true, abandon releases the reservation
	defer func() {
		if !settled {
			release()
		}
	}()
	if n := len(req.Components); n < 1 || n > 3 {
		return keys.Key{}, errkind.Errorf(errkind.InvalidInput, "pkcs11: a key is imported from one to three components, not %d", n)
	}
	combined := make([]byte, req.Algorithm.KeyLen())
	defer clear(combined)
	for i, comp := range req.Components {
		if comp.Value.Len() != len(combined) {
			return keys.Key{}, errkind.Errorf(errkind.InvalidInput, "pkcs11: component %d is %d bytes; %s needs %d", i+1, comp.Value.Len(), req.Algorithm, len(combined))
		}
		got, err := kcv.Compute(req.Algorithm, comp.Value, req.KCVMethod)
		if err != nil {
			return keys.Key{}, errkind.Wrap(errkind.InvalidInput, err, "pkcs11: component %d", i+1)
		}
		if !bytes.Equal(got, req.Components[i].KCV) {
			return keys.Key{}, errkind.Errorf(errkind.CheckFailed, "pkcs11: component %d does not match its check value", i+1)
		}
		for j, b := range comp.Value.Reveal() {
			combined[j] ^= b
		}
	}
	value := secret.New(combined)
	if len(req.KCV) > 0 {
		got, err := kcv.Compute(req.Algorithm, value, req.KCVMethod)
		if err != nil {
			return keys.Key{}, err
		}
		if !bytes.Equal(got, req.KCV) {
			return keys.Key{}, errkind.Errorf(errkind.CheckFailed, "pkcs11: the combined key does not match the expected check value")
		}
	}
	m, abandoned, err := callWithin(ctx, s, s.cfg.KeygenTimeout, "import", req.Ref, func(c *conn, sh p11.SessionHandle) (made, error) {
		t := append(secretTemplate(req.Ref, req.Role, req.Algorithm, req.Exportable), p11.NewAttribute(p11.CKA_VALUE, value.Reveal()))
		if req.Algorithm.AES() {
			// CKA_VALUE_LEN may not be given with CKA_VALUE on C_CreateObject.
			t = slices.DeleteFunc(t, func(a *p11.Attribute) bool { return a.Type == p11.CKA_VALUE_LEN })
		}
		h, err := s.mod.CreateObject(sh, t)
		clear(t[len(t)-1].Value) // the template's copy of the key
		if err != nil {
			return made{}, err
		}
		if hk := s.cfg.hooks.created; hk != nil {
			hk(req.Ref)
		}
		e, err := s.load(sh, h, req.Ref.Label())
		if err == nil {
			err = s.fillCMACKCV(sh, e)
		}
		if err != nil {
			_ = s.mod.DestroyObject(sh, h)
			return made{}, &errkind.Error{Kind: errkind.CheckFailed, Msg: "pkcs11: imported key refused", Err: err}
		}
		return made{e: e, handles: []p11.ObjectHandle{h}}, nil
	}, func(m made) { s.abandon(req.Ref, m, release) })
	if abandoned {
		settled = true
		return keys.Key{}, err
	}
	if err != nil {
		return keys.Key{}, err
	}
	return s.add(m.e)
}

// add puts a loaded entry into the index of the current connection.
func (s *Store) add(e *entry) (keys.Key, error) {
	c, err := s.live()
	if err != nil {
		return keys.Key{}, err
	}
	c.mu.Lock()
	c.index[e.key.Ref] = e
	c.mu.Unlock()
	return e.key, nil
}

// fillCMACKCV computes, once, the CMAC check value of a key that may
// compute CMACs, so that responses can echo it without a further HSM call.
func (s *Store) fillCMACKCV(sh p11.SessionHandle, e *entry) error {
	if !e.key.Role.Allows(keys.UsageCMAC) {
		return nil
	}
	mac, err := s.cmacOn(sh, e, make([]byte, e.key.Algorithm.BlockSize()))
	if err != nil {
		return err
	}
	e.key.CMACKCV = mac[:keys.KCVLen]
	return nil
}

// index scans the token once and loads every samd key in it.
func (s *Store) index(c *conn) error {
	sh := c.login
	if err := s.mod.FindObjectsInit(sh, nil); err != nil {
		return wrapErr("C_FindObjectsInit", keys.Ref{}, err)
	}
	var all []p11.ObjectHandle
	for {
		hs, _, err := s.mod.FindObjects(sh, 256)
		if err != nil {
			_ = s.mod.FindObjectsFinal(sh)
			return wrapErr("C_FindObjects", keys.Ref{}, err)
		}
		all = append(all, hs...)
		if len(hs) == 0 {
			break
		}
	}
	if err := s.mod.FindObjectsFinal(sh); err != nil {
		return wrapErr("C_FindObjectsFinal", keys.Ref{}, err)
	}
	c.index = make(map[keys.Ref]*entry)
	c.missed = make(map[keys.Ref]time.Time)
	pubs := make(map[string]p11.ObjectHandle)
	type labelled struct {
		h     p11.ObjectHandle
		label string
	}
	var keyHandles []labelled
	for _, h := range all {
		attrs, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, nil), p11.NewAttribute(p11.CKA_LABEL, nil), p11.NewAttribute(p11.CKA_ID, nil),
		})
		if err != nil {
			if classify(err) == classBroken && !vanished(err) {
				return wrapErr("C_GetAttributeValue", keys.Ref{}, err)
			}
			continue
		}
		if !strings.HasPrefix(string(attrs[1].Value), "samd:") {
			continue
		}
		switch ulong(attrs[0].Value) {
		case p11.CKO_PUBLIC_KEY:
			pubs[string(attrs[2].Value)] = h
		case p11.CKO_SECRET_KEY, p11.CKO_PRIVATE_KEY:
			keyHandles = append(keyHandles, labelled{h, string(attrs[1].Value)})
		}
	}
	if hk := s.cfg.hooks.scanned; hk != nil {
		hk()
	}
	for _, kh := range keyHandles {
		h, label := kh.h, kh.label
		e, err := s.load(sh, h, label)
		if err == nil && !e.key.Algorithm.Symmetric() {
			id := keys.MakeID(e.key.Ref, e.key.Role)
			ph, ok := pubs[string(id[:])]
			if !ok {
				err = errors.New("no public key object with the same CKA_ID")
			} else {
				e.pub, err = s.publicKey(sh, ph, e.key.Algorithm)
			}
		}
		if err != nil {
			if vanished(err) {
				// Destroyed since the scan (by another user of the token):
				// not a key, not a broken connection.
				s.log.Info("pkcs11: a key vanished while the token was indexed", "label", label)
				continue
			}
			if classify(err) == classBroken {
				return wrapErr("load", keys.Ref{}, err)
			}
			c.refused = append(c.refused, Refusal{Label: label, Reason: err.Error()})
			s.log.Warn("pkcs11: refusing key", "label", label, "reason", err.Error())
			continue
		}
		if _, dup := c.index[e.key.Ref]; dup {
			c.refused = append(c.refused, Refusal{Label: label, Reason: "two objects with the same label"})
			delete(c.index, e.key.Ref)
			continue
		}
		c.index[e.key.Ref] = e
	}
	for _, e := range c.index {
		if err := s.fillCMACKCV(sh, e); err != nil {
			return wrapErr("CMAC check value", e.key.Ref, err)
		}
	}
	return nil
}

func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}

func boolean(b []byte) bool { return len(b) == 1 && b[0] != 0 }

// load reads a private or secret key's attributes and checks them against
// the rules for its role. It returns the entry or the reason for refusal.
func (s *Store) load(sh p11.SessionHandle, h p11.ObjectHandle, label string) (*entry, error) {
	ref, err := keys.ParseLabel(label)
	if err != nil {
		return nil, err
	}
	base, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, nil),
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
		p11.NewAttribute(p11.CKA_ID, nil),
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_LOCAL, nil),
		p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_SIGN, nil),
		p11.NewAttribute(p11.CKA_DECRYPT, nil),
		p11.NewAttribute(p11.CKA_UNWRAP, nil),
		p11.NewAttribute(p11.CKA_DERIVE, nil),
	})
	if err != nil {
		return nil, err
	}
	class, kt, id := ulong(base[0].Value), ulong(base[1].Value), base[2].Value
	if len(id) != keys.IDLen {
		return nil, errors.New("CKA_ID is not a samd key id")
	}
	role := keys.Role(id[1])
	if want := keys.MakeID(ref, role); !bytes.Equal(id, want[:]) {
		return nil, errors.New("CKA_ID does not match the label and role")
	}
	// An extractable key is refused, except an exportable one of a role
	// that may be exported (keys.Exportable): still sensitive, it leaves
	// only wrapped, by key.export.
	exportable := boolean(base[4].Value)
	if !boolean(base[3].Value) || exportable && (class != p11.CKO_SECRET_KEY || !keys.Exportable(role)) {
		return nil, errors.New("key is not sensitive and non-extractable")
	}
	origin := keys.OriginImported
	if boolean(base[5].Value) {
		origin = keys.OriginGenerated
		if !boolean(base[6].Value) || !exportable && !boolean(base[7].Value) {
			return nil, errors.New("generated key was not always sensitive and never extractable")
		}
	}
	var u keys.Usage
	if boolean(base[8].Value) {
		if class == p11.CKO_SECRET_KEY {
			u |= keys.UsageCMAC
		} else {
			u |= keys.UsageSign
		}
	}
	if boolean(base[9].Value) {
		u |= keys.UsageDecrypt
	}
	if boolean(base[10].Value) {
		u |= keys.UsageUnwrap
	}
	if boolean(base[11].Value) {
		return nil, errors.New("key may derive other keys")
	}
	var alg keys.Algorithm
	var checkValue []byte
	switch class {
	case p11.CKO_SECRET_KEY:
		more, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_VERIFY, nil),
			p11.NewAttribute(p11.CKA_ENCRYPT, nil),
			p11.NewAttribute(p11.CKA_WRAP, nil),
			p11.NewAttribute(p11.CKA_CHECK_VALUE, nil),
		})
		if err != nil {
			return nil, err
		}
		var n uint
		if kt == p11.CKK_AES {
			vl, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE_LEN, nil)})
			if err != nil {
				return nil, err
			}
			n = ulong(vl[0].Value)
		}
		if boolean(more[0].Value) {
			u |= keys.UsageVerify
		}
		if boolean(more[1].Value) {
			u |= keys.UsageEncrypt
		}
		if boolean(more[2].Value) {
			u |= keys.UsageWrap
		}
		switch {
		case kt == p11.CKK_AES && n == 16:
			alg = keys.AES128
		case kt == p11.CKK_AES && n == 24:
			alg = keys.AES192
		case kt == p11.CKK_AES && n == 32:
			alg = keys.AES256
		case kt == p11.CKK_DES2:
			alg = keys.TDEA2
		case kt == p11.CKK_DES3:
			alg = keys.TDEA3
		}
		if len(more[3].Value) >= keys.KCVLen {
			checkValue = more[3].Value[:keys.KCVLen]
		}
	case p11.CKO_PRIVATE_KEY:
		switch kt {
		case p11.CKK_EC:
			// The curve is read from the public key; assume P-256 or P-384
			// here and confirm there.
			alg = keys.ECP256
			if role == keys.RoleUnknown {
				break
			}
			params, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_PARAMS, nil)})
			if err == nil && bytes.Equal(params[0].Value, oidP384) {
				alg = keys.ECP384
			}
		case p11.CKK_RSA:
			mod, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_MODULUS, nil)})
			if err != nil {
				return nil, err
			}
			if new(big.Int).SetBytes(mod[0].Value).BitLen() == 3072 {
				alg = keys.RSA3072
			}
		}
	default:
		return nil, errors.New("not a secret or private key")
	}
	if alg == keys.AlgUnknown {
		return nil, errors.New("unsupported key type or size")
	}
	if !alg.Fits(role) {
		return nil, fmt.Errorf("a %s key cannot have role %s", alg, role)
	}
	if role == keys.RoleKeyBlock && u == keys.UsageCMAC {
		u = keys.UsageKeyBlock // CKA_SIGN on a KBPK is its key block derivation
	}
	if u != role.Usage() {
		return nil, fmt.Errorf("usage flags do not match role %s exactly", role)
	}
	return &entry{
		key:    keys.Key{Ref: ref, Role: role, Algorithm: alg, Origin: origin, KCV: checkValue, Exportable: exportable},
		handle: h,
	}, nil
}

// publicKey reads the public half of a key pair.
func (s *Store) publicKey(sh p11.SessionHandle, h p11.ObjectHandle, alg keys.Algorithm) (any, error) {
	switch alg {
	case keys.ECP256, keys.ECP384:
		a, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_EC_PARAMS, nil), p11.NewAttribute(p11.CKA_EC_POINT, nil),
		})
		if err != nil {
			return nil, err
		}
		curve := elliptic.P256()
		if bytes.Equal(a[0].Value, oidP384) {
			curve = elliptic.P384()
		} else if !bytes.Equal(a[0].Value, oidP256) {
			return nil, errors.New("unsupported curve")
		}
		if (curve == elliptic.P384()) != (alg == keys.ECP384) {
			return nil, errors.New("public and private key curves differ")
		}
		var point []byte
		if _, err := asn1.Unmarshal(a[1].Value, &point); err != nil {
			point = a[1].Value // some modules return the raw point
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, err
		}
		return pub, nil
	case keys.RSA3072:
		a, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_MODULUS, nil), p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, err
		}
		e := new(big.Int).SetBytes(a[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return nil, errors.New("public exponent out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}, nil
	}
	return nil, errors.New("not a key pair algorithm")
}

// Key returns the key with the given reference.
func (s *Store) Key(ref keys.Ref) (keys.Key, error) {
	e, _, err := s.entry(ref)
	if err != nil {
		return keys.Key{}, err
	}
	return e.key, nil
}

// Keys lists every key the store may use, sorted by name and version.
func (s *Store) Keys() ([]keys.Key, error) {
	c, err := s.live()
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]keys.Key, 0, len(c.index))
	for _, e := range c.index {
		out = append(out, e.key)
	}
	slices.SortFunc(out, func(a, b keys.Key) int {
		if n := strings.Compare(a.Ref.Name.String(), b.Ref.Name.String()); n != 0 {
			return n
		}
		return int(a.Ref.Version) - int(b.Ref.Version)
	})
	return out, nil
}

// Refused lists the samd-labelled objects the store found and refused.
func (s *Store) Refused() []Refusal {
	c := s.cur.Load()
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.refused)
}

func (s *Store) entry(ref keys.Ref) (*entry, *conn, error) {
	c, err := s.live()
	if err != nil {
		return nil, nil, err
	}
	c.mu.RLock()
	e, ok := c.index[ref]
	c.mu.RUnlock()
	if ok {
		return e, c, nil
	}
	if e, err := s.find(c, ref); err != nil || e != nil {
		return e, c, err
	}
	return nil, nil, &errkind.Error{Kind: errkind.NotFound, Msg: "pkcs11: no key " + ref.String()}
}

// missRetry is how long a key found missing is not searched for again.
const missRetry = time.Second

// find searches the token for a key that is not in the index: one that
// another samd sharing the token (a replica on the same network HSM)
// created after this one connected. A miss is remembered for missRetry,
// so requests naming a key that does not exist cost one search a second,
// not one each. It returns nil, nil when the token has no such key.
func (s *Store) find(c *conn, ref keys.Ref) (*entry, error) {
	if s.isPending(ref) {
		return nil, nil // being created: it is indexed when that succeeds
	}
	c.mu.Lock()
	if until, ok := c.missed[ref]; ok && time.Now().Before(until) {
		c.mu.Unlock()
		return nil, nil
	}
	if len(c.missed) > 4096 {
		clear(c.missed) // bounded: names come from requests
	}
	c.missed[ref] = time.Now().Add(missRetry)
	c.mu.Unlock()
	e, err := call(context.Background(), s, "find", ref, func(c *conn, sh p11.SessionHandle) (*entry, error) {
		hs, err := s.findLabel(sh, ref.Label())
		if err != nil || len(hs) == 0 {
			return nil, err
		}
		var keyH, pubH []p11.ObjectHandle
		pubID := map[p11.ObjectHandle]string{}
		for _, h := range hs {
			a, err := s.mod.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, nil), p11.NewAttribute(p11.CKA_ID, nil)})
			if err != nil {
				return nil, err
			}
			if ulong(a[0].Value) == p11.CKO_PUBLIC_KEY {
				pubH = append(pubH, h)
				pubID[h] = string(a[1].Value)
			} else {
				keyH = append(keyH, h)
			}
		}
		if len(keyH) != 1 || len(pubH) > 1 {
			return nil, &errkind.Error{Kind: errkind.CheckFailed, Msg: "pkcs11: the token holds an unexpected set of objects labelled " + ref.Label()}
		}
		e, err := s.load(sh, keyH[0], ref.Label())
		if err != nil {
			return nil, &errkind.Error{Kind: errkind.CheckFailed, Msg: "pkcs11: key refused", Err: err}
		}
		if !e.key.Algorithm.Symmetric() {
			if id := keys.MakeID(e.key.Ref, e.key.Role); len(pubH) != 1 || pubID[pubH[0]] != string(id[:]) {
				return nil, &errkind.Error{Kind: errkind.CheckFailed, Msg: "pkcs11: key pair " + ref.String() + " has no public key object with its CKA_ID"}
			}
			if e.pub, err = s.publicKey(sh, pubH[0], e.key.Algorithm); err != nil {
				return nil, err
			}
		}
		return e, s.fillCMACKCV(sh, e)
	}, nil)
	if err != nil || e == nil {
		return nil, err
	}
	c.mu.Lock()
	delete(c.missed, ref)
	if cur, ok := c.index[ref]; ok {
		e = cur
	} else {
		c.index[ref] = e
	}
	c.mu.Unlock()
	s.log.Info("pkcs11: key found in the token after connecting", "key", ref.String())
	return e, nil
}

// findLabel returns the handles of the objects with a label.
func (s *Store) findLabel(sh p11.SessionHandle, label string) ([]p11.ObjectHandle, error) {
	if err := s.mod.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		return nil, err
	}
	var all []p11.ObjectHandle
	for {
		hs, _, err := s.mod.FindObjects(sh, 16)
		if err != nil {
			_ = s.mod.FindObjectsFinal(sh)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	return all, s.mod.FindObjectsFinal(sh)
}
