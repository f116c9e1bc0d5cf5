package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
)

// officerService adapts OfficerService to dualcontrol.Officers. The
// interceptor has admitted the caller (a registered officer); each
// authority call checks what the officer may do.
type officerService struct {
	o *dualcontrol.Officers
	s *Server // the console's reads (officers_console.go)
}

func (s *officerService) get(context.Context) (*dualcontrol.Officers, error) {
	if s.o == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "officers: this samd has no admin section")
	}
	return s.o, nil
}

func (s *officerService) proposal(p state.Proposal) *samdv1.Proposal {
	return &samdv1.Proposal{Id: p.ID, Operation: p.Operation, ParamsJson: redactParams(p.Params), Proposer: p.Proposer,
		Created: p.Created.UTC().Format(time.RFC3339), Expires: p.Expires.UTC().Format(time.RFC3339), Status: p.Status, Result: p.Result,
		Approvers: p.Approvers, Rejecters: p.Rejecters, Quorum: uint32(s.o.QuorumOf(p.Operation))}
}

func (s *officerService) Propose(ctx context.Context, req *connect.Request[samdv1.ProposeRequest]) (*connect.Response[samdv1.Proposal], error) {
	o, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	p, err := o.Propose(ctx, principal(ctx), req.Msg.GetOperation(), []byte(req.Msg.GetParamsJson()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.proposal(p)), nil
}

func (s *officerService) vote(ctx context.Context, id string, approve bool) (*connect.Response[samdv1.Proposal], error) {
	o, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	p, err := o.Vote(ctx, principal(ctx), id, approve)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.proposal(p)), nil
}

func (s *officerService) Approve(ctx context.Context, req *connect.Request[samdv1.VoteRequest]) (*connect.Response[samdv1.Proposal], error) {
	return s.vote(ctx, req.Msg.GetId(), true)
}

func (s *officerService) Reject(ctx context.Context, req *connect.Request[samdv1.VoteRequest]) (*connect.Response[samdv1.Proposal], error) {
	return s.vote(ctx, req.Msg.GetId(), false)
}

func (s *officerService) SubmitComponent(ctx context.Context, req *connect.Request[samdv1.ComponentRequest]) (*connect.Response[samdv1.Proposal], error) {
	o, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	value, err := hex.DecodeString(req.Msg.GetValue())
	if err != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "value: not hex")
	}
	check, err := hex.DecodeString(req.Msg.GetKcv())
	if err != nil || len(check) != 3 {
		clear(value)
		return nil, errkind.Errorf(errkind.InvalidInput, "kcv: three bytes, hex")
	}
	p, err := o.SubmitComponent(ctx, principal(ctx), req.Msg.GetId(), secret.New(value), check)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.proposal(p)), nil
}

func (s *officerService) GetProposal(ctx context.Context, req *connect.Request[samdv1.VoteRequest]) (*connect.Response[samdv1.Proposal], error) {
	o, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	p, err := o.Proposal(ctx, principal(ctx), req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.proposal(p)), nil
}

func (s *officerService) ListProposals(ctx context.Context, req *connect.Request[samdv1.ListProposalsRequest]) (*connect.Response[samdv1.ListProposalsResponse], error) {
	o, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	hours := req.Msg.GetHours()
	if hours == 0 {
		hours = 24
	}
	ps, err := o.Proposals(ctx, principal(ctx), time.Now().Add(-time.Duration(hours)*time.Hour))
	if err != nil {
		return nil, err
	}
	out := &samdv1.ListProposalsResponse{}
	for _, p := range ps {
		out.Proposals = append(out.Proposals, s.proposal(p))
	}
	return connect.NewResponse(out), nil
}

func (s *officerService) Inventory(ctx context.Context, _ *connect.Request[samdv1.InventoryRequest]) (*connect.Response[samdv1.InventoryResponse], error) {
	o, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	ks, err := o.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	out := &samdv1.InventoryResponse{}
	for _, k := range ks {
		out.Keys = append(out.Keys, &samdv1.InventoryKey{Name: k.Ref.Name.String(), Version: uint32(k.Ref.Version), Role: k.Role.String(),
			Algorithm: k.Algorithm.String(), Origin: k.Origin.String(), Kcv: strings.ToUpper(hex.EncodeToString(k.KCV)),
			CmacKcv: strings.ToUpper(hex.EncodeToString(k.CMACKCV)), Uses: k.Uses, InPolicy: k.InPolicy,
			ValidFrom: rfc3339(k.Validity.From), ValidUntil: rfc3339(k.Validity.Until), Exportable: k.Exportable, UsageLimit: k.UsageLimit, Retired: k.Retired})
	}
	return connect.NewResponse(out), nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// redactParams shows a wrapped key in a proposal (an AES-KW blob, a TR-31
// block) as its SHA-256, which officers compare with the sender's: a
// wrapped key is not returned in answers.
func redactParams(b []byte) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return string(b)
	}
	changed := false
	for _, k := range []string{"wrapped", "block"} {
		if v, ok := m[k].(string); ok {
			sum := sha256.Sum256([]byte(v))
			m[k] = "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:]))
			changed = true
		}
	}
	if !changed {
		return string(b)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(out)
}
