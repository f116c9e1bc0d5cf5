package server

import (
	"context"
	"encoding/hex"
	"fmt"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
)

// MaxBatch is the most objects one seal or verify call may carry.
const MaxBatch = 10_000

// macService adapts the MACService to the authority.
type macService struct {
	auth *authority.Authority
}

// macSubjectFromServer gives the policy the profile, its key and every
// object's owner; for a seal that creates value against an authorisation,
// the value rights it needs, and the amount of an authorisation made with
// it.
func macSubjectFromServer(s *Server, msg any) (policies.Request, error) {
	var name string
	var objs []*samdv1.DataObject
	var seal *samdv1.SealObjectsRequest
	switch m := msg.(type) {
	case *samdv1.SealObjectsRequest:
		name, objs, seal = m.GetProfile(), m.GetObjects(), m
	case *samdv1.VerifyObjectsRequest:
		name, objs = m.GetProfile(), m.GetObjects()
	}
	if len(objs) == 0 || len(objs) > MaxBatch {
		return policies.Request{}, errkind.Errorf(errkind.InvalidInput, "objects: 1 to %d per call, not %d", MaxBatch, len(objs))
	}
	p, err := s.cfg.Authority.Profile(name)
	if err != nil {
		return policies.Request{}, errkind.Wrap(errkind.InvalidInput, err, "profile")
	}
	seen := map[string]bool{}
	req := policies.Request{Profile: name}
	if p.Keyed() {
		req.Keys = []keys.Ref{p.Key()}
	}
	if seal != nil && p.CarriesValue() && (seal.GetAuthorizationSequence() != 0 || seal.GetAuthorize() != nil) {
		req.ValueSeal = true
		if a := seal.GetAuthorize(); a != nil {
			req.ProductOwner, req.Amount = a.GetProductOwner(), &policies.Amount{Minor: a.GetAmount(), Currency: a.GetCurrency()}
		}
	}
	for _, o := range objs {
		if !seen[o.GetProductOwner()] {
			seen[o.GetProductOwner()] = true
			req.ProductOwners = append(req.ProductOwners, o.GetProductOwner())
		}
	}
	return req, nil
}

// parseObject parses one wire object; errors name the object's index.
func parseObject(i int, o *samdv1.DataObject) (mac.Object, error) {
	card, err := hex.DecodeString(o.GetCardId())
	if err != nil {
		return mac.Object{}, errkind.Errorf(errkind.InvalidInput, "objects[%d].card_id: not a hex string", i)
	}
	data, err := hex.DecodeString(o.GetData())
	if err != nil {
		return mac.Object{}, errkind.Errorf(errkind.InvalidInput, "objects[%d].data: not a hex string", i)
	}
	if o.GetType() > 0xFFFF {
		return mac.Object{}, errkind.Errorf(errkind.InvalidInput, "objects[%d].type: must be 0..65535", i)
	}
	return mac.Object{Type: uint16(o.GetType()), CardID: card, Seq: o.GetSequence(), Owner: o.GetProductOwner(), Data: data}, nil
}

func keyInfo(k keys.Key) *samdv1.KeyInfo {
	return wireKeyInfo(authority.KeyInfo{Ref: k.Ref, Algorithm: k.Algorithm, KCV: k.KCV, KCVMethod: kcv.EncryptZero})
}

// noteObjects records the batch size and digest of the objects.
func noteObjects(ctx context.Context, objs []*samdv1.DataObject) {
	var all []byte
	for _, o := range objs {
		all = append(all, o.GetData()...)
		all = append(all, 0)
	}
	audit.NoteFrom(ctx).Input(audit.Digest("objects", all))
}

func failure(err error) (string, string) {
	ce, k := toConnect(err)
	return k.String(), ce.Message()
}

func (s *macService) SealObjects(ctx context.Context, req *connect.Request[samdv1.SealObjectsRequest]) (*connect.Response[samdv1.SealObjectsResponse], error) {
	m := req.Msg
	noteObjects(ctx, m.GetObjects())
	if p, err := s.auth.Profile(m.GetProfile()); err == nil && p.CarriesValue() {
		return s.sealValue(ctx, m)
	}
	if m.GetAuthorizationSequence() != 0 || m.GetAuthorize() != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "profile %s carries no value: it takes no authorisation", m.GetProfile())
	}
	objs := make([]mac.Object, len(m.GetObjects()))
	parsed := make([]error, len(objs))
	for i, o := range m.GetObjects() {
		objs[i], parsed[i] = parseObject(i, o)
	}
	res, k, err := s.auth.SealObjects(ctx, principal(ctx), grant(ctx), m.GetProfile(), objs)
	if err != nil {
		return nil, err
	}
	out := &samdv1.SealObjectsResponse{Key: keyInfo(k)}
	for i, r := range res {
		if parsed[i] != nil {
			r.Err, r.MAC = parsed[i], nil
		}
		or := &samdv1.ObjectResult{}
		if r.Err != nil {
			or.Code, or.Message = failure(r.Err)
			or.Reason = authority.ReasonOf(r.Err)
			out.Failed++
		} else {
			or.Mac, or.Sealed = encodeHex(r.MAC), encodeHex(r.Sealed)
		}
		out.Results = append(out.Results, or)
	}
	return connect.NewResponse(out), nil
}

// sealValue seals the objects of a value-bearing profile, all or none:
// any refusal is the request's error.
func (s *macService) sealValue(ctx context.Context, m *samdv1.SealObjectsRequest) (*connect.Response[samdv1.SealObjectsResponse], error) {
	vs := authority.ValueSeal{Profile: m.GetProfile(), Authorization: m.GetAuthorizationSequence()}
	for i, o := range m.GetObjects() {
		obj, err := parseObject(i, o)
		if err != nil {
			return nil, err
		}
		vs.Objects = append(vs.Objects, obj)
		var prev *authority.PreviousObject
		if po := o.GetPrevious(); po != nil {
			pobj, err := parseObject(i, po)
			if err != nil {
				return nil, errkind.Wrap(errkind.InvalidInput, err, "objects[%d].previous", i)
			}
			pm, err := decodeHex(fmt.Sprintf("objects[%d].previous.mac", i), po.GetMac())
			if err != nil {
				return nil, err
			}
			prev = &authority.PreviousObject{Object: pobj, MAC: pm}
		}
		vs.Previous = append(vs.Previous, prev)
	}
	if a := m.GetAuthorize(); a != nil {
		vr, err := valueRequest(a)
		if err != nil {
			return nil, errkind.Wrap(errkind.InvalidInput, err, "authorize")
		}
		vs.Authorize = &vr
	}
	res, err := s.auth.SealValueObjects(ctx, principal(ctx), grant(ctx), vs)
	if err != nil {
		return nil, err
	}
	out := &samdv1.SealObjectsResponse{Key: keyInfo(res.Key)}
	for _, r := range res.Results {
		out.Results = append(out.Results, &samdv1.ObjectResult{Mac: encodeHex(r.MAC), Sealed: encodeHex(r.Sealed)})
	}
	if a := res.Authorization; a != nil {
		audit.NoteFrom(ctx).Key(a.SealKey.String())
		out.Authorization, out.AllowanceRemaining = wireAuthorization(*a), a.Remaining
	}
	return connect.NewResponse(out), nil
}

func (s *macService) VerifyObjects(ctx context.Context, req *connect.Request[samdv1.VerifyObjectsRequest]) (*connect.Response[samdv1.VerifyObjectsResponse], error) {
	m := req.Msg
	noteObjects(ctx, m.GetObjects())
	objs := make([]mac.Object, len(m.GetObjects()))
	macs := make([][]byte, len(objs))
	parsed := make([]error, len(objs))
	for i, o := range m.GetObjects() {
		objs[i], parsed[i] = parseObject(i, o)
		if parsed[i] == nil {
			// A MAC profile's objects need one (the authority says so);
			// an APTA profile's carry their check value in their data.
			var err error
			if macs[i], err = hex.DecodeString(o.GetMac()); err != nil {
				parsed[i] = errkind.Errorf(errkind.InvalidInput, "objects[%d].mac: not hex", i)
			}
		}
	}
	res, k, err := s.auth.VerifyObjects(ctx, principal(ctx), grant(ctx), m.GetProfile(), objs, macs)
	if err != nil {
		return nil, err
	}
	out := &samdv1.VerifyObjectsResponse{Key: keyInfo(k)}
	for i, r := range res {
		if parsed[i] != nil {
			r.Err = parsed[i]
		}
		or := &samdv1.ObjectResult{Valid: r.Err == nil}
		if r.Err != nil {
			or.Code, or.Message = failure(r.Err)
			or.Reason = authority.ReasonOf(r.Err)
			out.Invalid++
		}
		out.Results = append(out.Results, or)
	}
	return connect.NewResponse(out), nil
}
