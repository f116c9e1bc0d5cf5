package server

import (
	"context"
	"encoding/hex"

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

// macSubjectFromServer gives the policy the profile's key and every
// object's owner.
func macSubjectFromServer(s *Server, msg any) (policies.Request, error) {
	var name string
	var objs []*samdv1.DataObject
	switch m := msg.(type) {
	case *samdv1.SealObjectsRequest:
		name, objs = m.GetProfile(), m.GetObjects()
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
	req := policies.Request{Keys: []keys.Ref{p.Key()}}
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
			out.Failed++
		} else {
			or.Mac = encodeHex(r.MAC)
		}
		out.Results = append(out.Results, or)
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
			var err error
			if macs[i], err = hex.DecodeString(o.GetMac()); err != nil || len(macs[i]) == 0 {
				parsed[i] = errkind.Errorf(errkind.InvalidInput, "objects[%d].mac: missing or not hex", i)
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
			out.Invalid++
		}
		out.Results = append(out.Results, or)
	}
	return connect.NewResponse(out), nil
}
