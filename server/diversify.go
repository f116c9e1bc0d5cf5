package server

import (
	"context"
	"encoding/hex"
	"strings"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

// diversification adapts the DiversificationService to the authority. It
// parses and validates wire input, calls the domain, and formats the
// result; nothing else.
type diversification struct {
	auth *authority.Authority
}

// decodeHex parses a hex field, naming it in the error.
func decodeHex(field, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "%s: not a hex string", field)
	}
	return b, nil
}

func encodeHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func parseRef(field string, r *samdv1.KeyRef) (keys.Ref, error) {
	if r == nil {
		return keys.Ref{}, errkind.Errorf(errkind.InvalidInput, "%s: missing", field)
	}
	ref, err := keys.NewRef(r.GetName(), int(r.GetVersion()))
	if err != nil {
		return keys.Ref{}, errkind.Wrap(errkind.InvalidInput, err, "%s", field)
	}
	return ref, nil
}

func parseInput(in *samdv1.DiversificationInput) (derive.Input, error) {
	if in == nil {
		return derive.Input{}, errkind.Errorf(errkind.InvalidInput, "input: missing")
	}
	uid, err := decodeHex("input.uid", in.GetUid())
	if err != nil {
		return derive.Input{}, err
	}
	aid, err := decodeHex("input.aid", in.GetAid())
	if err != nil {
		return derive.Input{}, err
	}
	sys, err := decodeHex("input.system_identifier", in.GetSystemIdentifier())
	if err != nil {
		return derive.Input{}, err
	}
	return derive.NewInput(uid, aid, sys)
}

func parseKCVMethod(m samdv1.KCVMethod) (kcv.Method, error) {
	switch m {
	case samdv1.KCVMethod_KCV_METHOD_UNSPECIFIED:
		return kcv.MethodUnknown, nil
	case samdv1.KCVMethod_KCV_METHOD_ENCRYPT_ZERO:
		return kcv.EncryptZero, nil
	case samdv1.KCVMethod_KCV_METHOD_CMAC_ZERO:
		return kcv.CMACZero, nil
	}
	return kcv.MethodUnknown, errkind.Errorf(errkind.InvalidInput, "kcv_method: unknown value %d", m)
}

func wireKCVMethod(m kcv.Method) samdv1.KCVMethod {
	switch m {
	case kcv.EncryptZero:
		return samdv1.KCVMethod_KCV_METHOD_ENCRYPT_ZERO
	case kcv.CMACZero:
		return samdv1.KCVMethod_KCV_METHOD_CMAC_ZERO
	}
	return samdv1.KCVMethod_KCV_METHOD_UNSPECIFIED
}

func wireKeyInfo(k authority.KeyInfo) *samdv1.KeyInfo {
	return &samdv1.KeyInfo{
		Name: k.Ref.Name.String(), Version: uint32(k.Ref.Version), Algorithm: k.Algorithm.String(),
		Kcv: encodeHex(k.KCV), KcvMethod: wireKCVMethod(k.KCVMethod),
	}
}

// parseDiversify parses the fields both diversification methods share and
// notes the input for the audit record (the interceptor notes the keys).
func parseDiversify(ctx context.Context, master *samdv1.KeyRef, input *samdv1.DiversificationInput, m samdv1.KCVMethod) (keys.Ref, derive.Input, kcv.Method, error) {
	ref, err := parseRef("master_key", master)
	if err != nil {
		return keys.Ref{}, derive.Input{}, 0, err
	}
	in, err := parseInput(input)
	if err != nil {
		return keys.Ref{}, derive.Input{}, 0, err
	}
	audit.NoteFrom(ctx).Input(audit.Digest("input", in.Bytes()))
	method, err := parseKCVMethod(m)
	return ref, in, method, err
}

func (d *diversification) DiversifiedKeyCheckValue(ctx context.Context, req *connect.Request[samdv1.DiversifiedKeyCheckValueRequest]) (*connect.Response[samdv1.DiversifiedKeyCheckValueResponse], error) {
	m := req.Msg
	ref, in, method, err := parseDiversify(ctx, m.GetMasterKey(), m.GetInput(), m.GetKcvMethod())
	if err != nil {
		return nil, err
	}
	res, err := d.auth.DiversifiedKCV(ctx, principal(ctx), grant(ctx), authority.DiversifyRequest{Master: ref, Input: in, KCVMethod: method})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.DiversifiedKeyCheckValueResponse{
		Kcv: encodeHex(res.KCV), KcvMethod: wireKCVMethod(res.KCVMethod), Algorithm: res.Algorithm.String(),
		MasterKey: wireKeyInfo(res.Master),
	}), nil
}

func (d *diversification) ExportDiversifiedKey(ctx context.Context, req *connect.Request[samdv1.ExportDiversifiedKeyRequest]) (*connect.Response[samdv1.ExportDiversifiedKeyResponse], error) {
	m := req.Msg
	ref, in, method, err := parseDiversify(ctx, m.GetMasterKey(), m.GetInput(), m.GetKcvMethod())
	if err != nil {
		return nil, err
	}
	kek, err := parseRef("transport_key", m.GetTransportKey())
	if err != nil {
		return nil, err
	}
	var mech keys.WrapMechanism
	switch m.GetMechanism() {
	case samdv1.WrapMechanism_WRAP_MECHANISM_UNSPECIFIED:
	case samdv1.WrapMechanism_WRAP_MECHANISM_AES_KW:
		mech = keys.WrapKW
	case samdv1.WrapMechanism_WRAP_MECHANISM_AES_KWP:
		mech = keys.WrapKWP
	case samdv1.WrapMechanism_WRAP_MECHANISM_TR31:
		mech = keys.WrapTR31
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "mechanism: unknown value %d", m.GetMechanism())
	}
	var ver *uint8
	if m.DesKeyVersion != nil {
		if m.GetDesKeyVersion() > 255 {
			return nil, errkind.Errorf(errkind.InvalidInput, "des_key_version: must be 0..255")
		}
		v := uint8(m.GetDesKeyVersion())
		ver = &v
	}
	res, err := d.auth.ExportDiversifiedKey(ctx, principal(ctx), grant(ctx), authority.ExportRequest{
		Master: ref, Input: in, Transport: kek, Mechanism: mech, DESKeyVersion: ver, KCVMethod: method,
	})
	if err != nil {
		return nil, err
	}
	out := &samdv1.ExportDiversifiedKeyResponse{Mechanism: samdv1.WrapMechanism_WRAP_MECHANISM_AES_KWP, WrappedKey: encodeHex(res.Wrapped)}
	switch res.Mechanism {
	case keys.WrapKW:
		out.Mechanism = samdv1.WrapMechanism_WRAP_MECHANISM_AES_KW
	case keys.WrapTR31:
		out.Mechanism, out.WrappedKey, out.KeyBlock = samdv1.WrapMechanism_WRAP_MECHANISM_TR31, "", string(res.Wrapped)
	}
	out.Kcv, out.KcvMethod = encodeHex(res.KCV), wireKCVMethod(res.KCVMethod)
	out.Algorithm, out.MasterKey, out.TransportKey = res.Algorithm.String(), wireKeyInfo(res.Master), wireKeyInfo(res.Transport)
	return connect.NewResponse(out), nil
}

// diversifySubject gives the policy the keys a diversification names.
func diversifySubject(_ *Server, msg any) (policies.Request, error) {
	var refs []*samdv1.KeyRef
	switch m := msg.(type) {
	case *samdv1.DiversifiedKeyCheckValuesRequest:
		if n := len(m.GetInputs()); n == 0 || n > MaxBatch {
			return policies.Request{}, errkind.Errorf(errkind.InvalidInput, "inputs: 1 to %d per call, not %d", MaxBatch, n)
		}
		refs = []*samdv1.KeyRef{m.GetMasterKey()}
	case *samdv1.DiversifiedKeyCheckValueRequest:
		refs = []*samdv1.KeyRef{m.GetMasterKey()}
	case *samdv1.ExportDiversifiedKeyRequest:
		refs = []*samdv1.KeyRef{m.GetMasterKey(), m.GetTransportKey()}
	}
	var req policies.Request
	for i, r := range refs {
		field := "master_key"
		if i == 1 {
			field = "transport_key"
		}
		ref, err := parseRef(field, r)
		if err != nil {
			return req, err
		}
		req.Keys = append(req.Keys, ref)
	}
	return req, nil
}

func (d *diversification) DiversifiedKeyCheckValues(ctx context.Context, req *connect.Request[samdv1.DiversifiedKeyCheckValuesRequest]) (*connect.Response[samdv1.DiversifiedKeyCheckValuesResponse], error) {
	m := req.Msg
	ref, err := parseRef("master_key", m.GetMasterKey())
	if err != nil {
		return nil, err
	}
	method, err := parseKCVMethod(m.GetKcvMethod())
	if err != nil {
		return nil, err
	}
	inputs := make([]derive.Input, len(m.GetInputs()))
	parsed := make([]error, len(inputs))
	var all []byte
	for i, in := range m.GetInputs() {
		// An input that does not parse stays the zero Input: the
		// authority fails it alone, before the key is used or counted,
		// and its result below carries the parse error.
		inputs[i], parsed[i] = parseInput(in)
		all = append(all, inputs[i].Bytes()...)
	}
	audit.NoteFrom(ctx).Input(audit.Digest("inputs", all))
	res, info, err := d.auth.DiversifiedKCVs(ctx, principal(ctx), grant(ctx), ref, inputs, method)
	if err != nil {
		return nil, err
	}
	out := &samdv1.DiversifiedKeyCheckValuesResponse{KcvMethod: wireKCVMethod(info.KCVMethod), Algorithm: info.Algorithm.String(), MasterKey: wireKeyInfo(info.Master)}
	for i, r := range res {
		if parsed[i] != nil {
			r = authority.ObjectResult{Err: parsed[i]}
		}
		kr := &samdv1.KeyCheckValueResult{}
		if r.Err != nil {
			kr.Code, kr.Message = failure(r.Err)
			out.Failed++
		} else {
			kr.Kcv = encodeHex(r.MAC)
		}
		out.Results = append(out.Results, kr)
	}
	return connect.NewResponse(out), nil
}
