package server

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/listing"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/policies"
)

// listService adapts ListService to listing.Service.
type listService struct {
	lists *listing.Service
}

func (s *listService) get() (*listing.Service, error) {
	if s.lists == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "lists: this samd runs without negative lists (config lists)")
	}
	return s.lists, nil
}

// parseChanges reads a change request's kind and entries: puts, or
// removes (only the card and target count).
func parseChanges(m *samdv1.ChangeListRequest, remove bool) (lists.Kind, []lists.Change, error) {
	kind, err := lists.ParseKind(m.GetKind())
	if err != nil {
		return 0, nil, errkind.Wrap(errkind.InvalidInput, err, "kind")
	}
	if n := len(m.GetEntries()); n == 0 || n > listing.MaxChanges {
		return 0, nil, errkind.Errorf(errkind.InvalidInput, "entries: 1 to %d per call, not %d", listing.MaxChanges, n)
	}
	out := make([]lists.Change, len(m.GetEntries()))
	for i, e := range m.GetEntries() {
		bad := func(field string, err error) error {
			return errkind.Wrap(errkind.InvalidInput, err, "entries[%d].%s", i, field)
		}
		var c lists.Change
		if c.Entry.Card, err = hex.DecodeString(e.GetCard()); err != nil {
			return 0, nil, bad("card", err)
		}
		if c.Entry.Target, err = hex.DecodeString(e.GetTarget()); err != nil {
			return 0, nil, bad("target", err)
		}
		if remove {
			c.Op = lists.OpRemove
			out[i] = c
			continue
		}
		c.Op = lists.OpPut
		if c.Entry.Action, err = lists.ParseAction(e.GetAction()); err != nil {
			return 0, nil, bad("action", err)
		}
		if e.GetReason() > 0xFFFF {
			return 0, nil, bad("reason", errkind.Errorf(errkind.InvalidInput, "%d is above 65535", e.GetReason()))
		}
		c.Entry.Reason = lists.ReasonCode(e.GetReason())
		if e.GetEffective() != "" {
			if c.Entry.Effective, err = time.Parse(time.RFC3339, e.GetEffective()); err != nil {
				return 0, nil, bad("effective", err)
			}
		}
		if c.Entry.Data, err = hex.DecodeString(e.GetData()); err != nil {
			return 0, nil, bad("data", err)
		}
		out[i] = c
	}
	return kind, out, nil
}

// listWriteSubject returns the subject of AddEntries (remove false) or
// RemoveEntries: the list and each entry's key, and whether the entry
// sets APTA's permanent block.
func listWriteSubject(remove bool) func(*Server, any) (policies.Request, error) {
	return func(_ *Server, msg any) (policies.Request, error) {
		m := msg.(*samdv1.ChangeListRequest)
		kind, changes, err := parseChanges(m, remove)
		if err != nil {
			return policies.Request{}, err
		}
		return policies.Request{List: listing.PolicyRequest(m.GetOwner(), kind, changes)}, nil
	}
}

// listStatusSubject: the status of the caller's operator's own lists.
func listStatusSubject(_ *Server, msg any) (policies.Request, error) {
	m := msg.(*samdv1.ListStatusRequest)
	return policies.Request{List: &policies.ListRequest{Owner: m.GetOwner(), Kind: m.GetKind()}}, nil
}

func (s *listService) change(ctx context.Context, m *samdv1.ChangeListRequest, remove bool) (*connect.Response[samdv1.ChangeListResponse], error) {
	l, err := s.get()
	if err != nil {
		return nil, err
	}
	kind, changes, err := parseChanges(m, remove)
	if err != nil {
		return nil, err
	}
	c, err := l.Change(ctx, principal(ctx), m.GetOwner(), kind, changes)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.ChangeListResponse{Owner: c.Key.Owner, Kind: c.Key.Kind, Pending: c.Pending, PublishedVersion: c.Published}), nil
}

func (s *listService) AddEntries(ctx context.Context, req *connect.Request[samdv1.ChangeListRequest]) (*connect.Response[samdv1.ChangeListResponse], error) {
	return s.change(ctx, req.Msg, false)
}

func (s *listService) RemoveEntries(ctx context.Context, req *connect.Request[samdv1.ChangeListRequest]) (*connect.Response[samdv1.ChangeListResponse], error) {
	return s.change(ctx, req.Msg, true)
}

// listChunk is how much of a document one FetchListResponse carries.
const listChunk = 256 << 10

// FetchList streams the newest version of a list, whole or as the delta
// from the version the caller holds: a first message with the document's
// description and signature, then its bytes in chunks.
func (s *listService) FetchList(ctx context.Context, req *connect.Request[samdv1.FetchListRequest], stream *connect.ServerStream[samdv1.FetchListResponse]) error {
	l, err := s.get()
	if err != nil {
		return err
	}
	kind, err := lists.ParseKind(req.Msg.GetKind())
	if err != nil {
		return errkind.Wrap(errkind.InvalidInput, err, "kind")
	}
	caller := principal(ctx)
	d, err := l.Fetch(ctx, &caller, req.Msg.GetOwner(), kind, req.Msg.GetHeldVersion())
	if err != nil {
		return err
	}
	d.Note(ctx)
	h := d.Header
	first := &samdv1.FetchListResponse{Version: h.Version, BaseVersion: h.Base, UpToDate: d.UpToDate, Records: d.Records, Size: uint64(d.Size),
		Sha256: strings.ToUpper(d.SHA256), ListDigest: d.ListDigest, Issued: rfc3339(h.Issued), ValidFrom: rfc3339(h.ValidFrom),
		ValidUntil: rfc3339(h.ValidUntil), Signature: d.Signature}
	if d.UpToDate {
		first.Records, first.Size, first.Sha256, first.Signature = 0, 0, "", nil
	}
	if err := stream.Send(first); err != nil {
		return err
	}
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&samdv1.FetchListResponse{Chunk: b}) }, buf: make([]byte, 0, listChunk)}
	if err := d.Write(ctx, w); err != nil {
		return err
	}
	return w.flush()
}

// chunkWriter sends what is written to it in messages of up to its
// buffer's capacity.
type chunkWriter struct {
	send func([]byte) error
	buf  []byte
}

func (w *chunkWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, b[:k]...)
		b = b[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (s *listService) AckList(ctx context.Context, req *connect.Request[samdv1.AckListRequest]) (*connect.Response[samdv1.AckListResponse], error) {
	l, err := s.get()
	if err != nil {
		return nil, err
	}
	r, err := l.Ack(ctx, principal(ctx), req.Msg.GetReceipt(), req.Msg.GetSignature())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.AckListResponse{Owner: r.Owner, Kind: r.Kind, Version: r.Version, Receiver: r.Receiver, Time: rfc3339(r.Time)}), nil
}

func (s *listService) ListStatus(ctx context.Context, req *connect.Request[samdv1.ListStatusRequest]) (*connect.Response[samdv1.ListStatusResponse], error) {
	l, err := s.get()
	if err != nil {
		return nil, err
	}
	kind, err := lists.ParseKind(req.Msg.GetKind())
	if err != nil {
		return nil, errkind.Wrap(errkind.InvalidInput, err, "kind")
	}
	key, err := listing.Key(principal(ctx), req.Msg.GetOwner(), kind)
	if err != nil {
		return nil, err
	}
	st, err := l.Status(ctx, key)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(listStatus(st)), nil
}

// listStatus is a list's status as ListStatus (and the officers'
// NegativeLists) answer it.
func listStatus(st listing.Status) *samdv1.ListStatusResponse {
	out := &samdv1.ListStatusResponse{Owner: st.Key.Owner, Kind: st.Key.Kind, Version: st.Version, Issued: rfc3339(st.Issued), ValidUntil: rfc3339(st.ValidUntil),
		Entries: st.Entries, Pending: st.Pending, DeltaBases: st.DeltaBases}
	for _, r := range st.Receivers {
		out.Receivers = append(out.Receivers, &samdv1.ListReceiverStatus{Receiver: r.Receiver, AcknowledgedVersion: r.Acknowledged,
			AcknowledgedAt: rfc3339(r.AcknowledgedAt), Behind: r.Behind, BehindSince: rfc3339(r.Since)})
		if r.Behind {
			out.Behind++
		}
	}
	return out
}
