package server

import (
	"context"
	"encoding/hex"
	"math"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/value"
)

// valueService adapts the ValueService to the authority.
type valueService struct {
	auth *authority.Authority
}

var purposes = map[samdv1.Purpose]policies.Purpose{
	samdv1.Purpose_PURPOSE_LOAD:         policies.PurposeLoad,
	samdv1.Purpose_PURPOSE_SALE:         policies.PurposeSale,
	samdv1.Purpose_PURPOSE_REFUND:       policies.PurposeRefund,
	samdv1.Purpose_PURPOSE_CANCELLATION: policies.PurposeCancellation,
}

func wirePurpose(p string) samdv1.Purpose {
	for w, d := range purposes {
		if string(d) == p {
			return w
		}
	}
	return samdv1.Purpose_PURPOSE_UNSPECIFIED
}

// valueSubject gives the policy the product owner and amount.
func valueSubject(_ *Server, msg any) (policies.Request, error) {
	m, _ := msg.(*samdv1.AuthorizeValueRequest)
	if m.GetAmount() <= 0 {
		return policies.Request{}, errkind.Errorf(errkind.InvalidInput, "amount: must be positive minor units")
	}
	if len(m.GetCurrency()) != 3 {
		return policies.Request{}, errkind.Errorf(errkind.InvalidInput, "currency: want an ISO 4217 code such as NOK")
	}
	if m.GetProductOwner() == "" {
		return policies.Request{}, errkind.Errorf(errkind.InvalidInput, "product_owner: missing")
	}
	return policies.Request{ProductOwner: m.GetProductOwner(), Amount: &policies.Amount{Minor: m.GetAmount(), Currency: m.GetCurrency()}}, nil
}

// verifySubject gives the policy the key a record names.
func verifySubject(_ *Server, msg any) (policies.Request, error) {
	m, _ := msg.(*samdv1.VerifyValueAuthorizationRequest)
	ref, err := parseRef("authorization.seal_key", m.GetAuthorization().GetSealKey())
	if err != nil {
		return policies.Request{}, err
	}
	return policies.Request{Keys: []keys.Ref{ref}}, nil
}

func wireAuthorization(s authority.SealedValue) *samdv1.ValueAuthorization {
	r := s.Record
	return &samdv1.ValueAuthorization{
		Operator: r.Operator, Device: r.Device, Sequence: r.Seq, Amount: r.Amount, Currency: r.Currency,
		ProductOwner: r.Owner, Purpose: wirePurpose(r.Purpose), Time: r.Time.UTC().Format(time.RFC3339Nano),
		OriginalSequence: r.Original, Seal: encodeHex(s.Seal),
		SealKey: &samdv1.KeyRef{Name: s.SealKey.Name.String(), Version: uint32(s.SealKey.Version)},
		CardId:  encodeHex(r.CardID), Tsn: r.TSN, TransactionType: uint32(r.TxType), Version: uint32(r.Version),
	}
}

// valueRequest parses an AuthorizeValueRequest (AuthorizeValue's, or a
// seal's authorize) into the authority's form.
func valueRequest(m *samdv1.AuthorizeValueRequest) (authority.ValueRequest, error) {
	purpose, ok := purposes[m.GetPurpose()]
	if !ok || purpose == policies.PurposeCancellation {
		return authority.ValueRequest{}, errkind.Errorf(errkind.InvalidInput, "purpose: want load, sale or refund (cancellations use CancelValue)")
	}
	card, err := decodeHex("card_id", m.GetCardId())
	if err != nil {
		return authority.ValueRequest{}, err
	}
	if m.GetTransactionType() > math.MaxUint8 {
		return authority.ValueRequest{}, errkind.Errorf(errkind.InvalidInput, "transaction_type: a Part 19 transaction type (§1.3.2), not %d", m.GetTransactionType())
	}
	return authority.ValueRequest{
		Amount: policies.Amount{Minor: m.GetAmount(), Currency: m.GetCurrency()}, Owner: m.GetProductOwner(), Purpose: purpose,
		CardID: card, TSN: m.GetTsn(), TxType: value.TxType(m.GetTransactionType()),
	}, nil
}

func (v *valueService) AuthorizeValue(ctx context.Context, req *connect.Request[samdv1.AuthorizeValueRequest]) (*connect.Response[samdv1.AuthorizeValueResponse], error) {
	vr, err := valueRequest(req.Msg)
	if err != nil {
		return nil, err
	}
	res, err := v.auth.AuthorizeValue(ctx, principal(ctx), grant(ctx), vr)
	if err != nil {
		return nil, err
	}
	audit.NoteFrom(ctx).Key(res.SealKey.String())
	return connect.NewResponse(&samdv1.AuthorizeValueResponse{Authorization: wireAuthorization(res), AllowanceRemaining: res.Remaining}), nil
}

func (v *valueService) CancelValue(ctx context.Context, req *connect.Request[samdv1.CancelValueRequest]) (*connect.Response[samdv1.AuthorizeValueResponse], error) {
	if req.Msg.GetOriginalSequence() == 0 {
		return nil, errkind.Errorf(errkind.InvalidInput, "original_sequence: missing")
	}
	if req.Msg.GetOriginalSequence() > math.MaxInt64 {
		// Sequence numbers are stored as int64; no authorisation has one
		// this large.
		return nil, errkind.Errorf(errkind.InvalidInput, "original_sequence: out of range (at most %d)", int64(math.MaxInt64))
	}
	if req.Msg.GetTransactionType() > math.MaxUint8 {
		return nil, errkind.Errorf(errkind.InvalidInput, "transaction_type: a Part 19 transaction type (§1.3.2), not %d", req.Msg.GetTransactionType())
	}
	res, err := v.auth.CancelValue(ctx, principal(ctx), grant(ctx), authority.CancelRequest{Original: req.Msg.GetOriginalSequence(),
		TSN: req.Msg.GetTsn(), TxType: value.TxType(req.Msg.GetTransactionType())})
	if err != nil {
		return nil, err
	}
	audit.NoteFrom(ctx).Key(res.SealKey.String())
	return connect.NewResponse(&samdv1.AuthorizeValueResponse{Authorization: wireAuthorization(res), AllowanceRemaining: res.Remaining}), nil
}

func (v *valueService) VerifyValueAuthorization(ctx context.Context, req *connect.Request[samdv1.VerifyValueAuthorizationRequest]) (*connect.Response[samdv1.VerifyValueAuthorizationResponse], error) {
	a := req.Msg.GetAuthorization()
	ref, err := parseRef("authorization.seal_key", a.GetSealKey())
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, a.GetTime())
	if err != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "authorization.time: want RFC 3339")
	}
	seal, err := hex.DecodeString(a.GetSeal())
	if err != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "authorization.seal: not a hex string")
	}
	purpose, ok := purposes[a.GetPurpose()]
	if !ok {
		return nil, errkind.Errorf(errkind.InvalidInput, "authorization.purpose: unknown")
	}
	card, err := decodeHex("authorization.card_id", a.GetCardId())
	if err != nil {
		return nil, err
	}
	if a.GetTransactionType() > math.MaxUint8 {
		return nil, errkind.Errorf(errkind.InvalidInput, "authorization.transaction_type: out of range")
	}
	// A record without a version predates version 2: version 1.
	r := value.Record{
		Version: max(int(min(a.GetVersion(), 255)), 1), Operator: a.GetOperator(), Device: a.GetDevice(), Seq: a.GetSequence(), Amount: a.GetAmount(), Currency: a.GetCurrency(),
		Owner: a.GetProductOwner(), Purpose: string(purpose), Time: t, Original: a.GetOriginalSequence(),
		CardID: card, TSN: a.GetTsn(), TxType: value.TxType(a.GetTransactionType()),
	}
	if err := v.auth.VerifyValue(ctx, principal(ctx), grant(ctx), r, ref, seal); err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.VerifyValueAuthorizationResponse{Valid: true, Authorization: a, TransactionTypeName: r.TxType.Name()}), nil
}
