package server

import (
	"context"
	"sort"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

// This file holds OfficerService's reads for the officers' console (issue
// 21): the audit log, samd's state at a glance, the scheme PKI's
// certificates and the negative lists, which no other method answers
// (ListStatus answers for one list of the caller's own operator, on the
// terminal listener). Like the rest of
// OfficerService they are for registered officers on the admin listener;
// an operator's officer is answered about its own operator only.

// searchLimit is the default and the largest number of audit records or
// certificates one search returns.
const (
	searchLimit    = 100
	searchLimitMax = 1000
)

func limitOf(n uint32) int {
	switch {
	case n == 0:
		return searchLimit
	case n > searchLimitMax:
		return searchLimitMax
	}
	return int(n)
}

// scope is the operator an officer's search is kept to: its own, or, for
// the scheme's officers, the one asked for ("" for every operator). An
// operator's officer asking about another operator is refused.
func (s *officerService) scope(caller identity.Principal, asked string) (string, error) {
	if s.o.Scheme(caller) {
		return asked, nil
	}
	if asked != "" && asked != caller.Operator {
		return "", errkind.Errorf(errkind.Denied, "officers: an officer of %s is answered about %s only, not %s", caller.Operator, caller.Operator, asked)
	}
	return caller.Operator, nil
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errkind.Errorf(errkind.InvalidInput, "%s: an RFC 3339 time, e.g. 2026-12-01T10:00:00Z", field)
	}
	return t, nil
}

// SearchAudit answers from the verified audit records: each chain is
// verified as it is read, and no record at or after a break is returned.
func (s *officerService) SearchAudit(ctx context.Context, req *connect.Request[samdv1.SearchAuditRequest]) (*connect.Response[samdv1.SearchAuditResponse], error) {
	if _, err := s.get(ctx); err != nil {
		return nil, err
	}
	if s.s.cfg.AuditSearch == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "officers: this samd does not search its audit log")
	}
	m := req.Msg
	var f audit.Filter
	var err error
	if f.Since, err = parseTime("since", m.GetSince()); err != nil {
		return nil, err
	}
	if f.Until, err = parseTime("until", m.GetUntil()); err != nil {
		return nil, err
	}
	switch o := audit.Outcome(m.GetOutcome()); o {
	case "", audit.OutcomeOK, audit.OutcomeDenied, audit.OutcomeError:
		f.Outcome = o
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "outcome: ok, denied or error")
	}
	if f.Operator, err = s.scope(principal(ctx), m.GetOperator()); err != nil {
		return nil, err
	}
	f.Key, f.Method = m.GetKey(), m.GetMethod()
	limit := limitOf(m.GetLimit())
	chains, err := s.s.cfg.AuditSearch(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	out := &samdv1.SearchAuditResponse{}
	for _, c := range chains {
		out.Matched += uint64(c.Matched)
		out.Chains = append(out.Chains, chainStatus(c))
		for i := range c.Records {
			out.Records = append(out.Records, auditRecord(c.Name, &c.Records[i]))
		}
	}
	// Newest first across the chains (RFC 3339 at one precision sorts as
	// time), the newest limit of them.
	sort.SliceStable(out.Records, func(i, j int) bool { return out.Records[i].Time > out.Records[j].Time })
	if len(out.Records) > limit {
		out.Records = out.Records[:limit]
	}
	return connect.NewResponse(out), nil
}

func chainStatus(c audit.ChainSearch) *samdv1.AuditChainStatus {
	st := &samdv1.AuditChainStatus{Name: c.Name, Records: c.Read, Intact: c.Broken == nil}
	if c.Broken != nil {
		st.BrokenSeq, st.BrokenReason = c.Broken.Seq, c.Broken.Reason
	}
	if cov := c.Coverage; cov != nil {
		st.CheckpointKey, st.Checkpoints, st.LastCovered, st.Unsigned, st.Final = true, uint32(cov.Checkpoints), cov.LastCovers, uint64(cov.After), cov.Final
	}
	return st
}

func auditRecord(chain string, r *audit.Record) *samdv1.AuditRecord {
	out := &samdv1.AuditRecord{Chain: chain, Seq: r.Seq, Time: r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), RequestId: r.RequestID,
		Method: r.Method, Policy: r.Policy, Keys: r.Keys, Outcome: string(r.Outcome), Code: r.Code, Reason: r.Reason, DurationUs: r.DurationUS,
		Via: r.Via, Checkpoint: r.Checkpoint != nil, Hash: r.Hash}
	if c := r.Caller; c != nil {
		out.Caller, out.CallerSerial = &samdv1.Principal{Role: c.Role, Operator: c.Operator, Device: c.Device}, c.Serial
	}
	return out
}

// Status is samd's state at a glance: readiness, the HSM session pool,
// the policy in force, and this process's requests per minute over the
// last hour.
func (s *officerService) Status(ctx context.Context, _ *connect.Request[samdv1.StatusRequest]) (*connect.Response[samdv1.StatusResponse], error) {
	if _, err := s.get(ctx); err != nil {
		return nil, err
	}
	srv := s.s
	out := &samdv1.StatusResponse{Ready: true, Started: rfc3339(srv.started), Now: rfc3339(srv.cfg.Now())}
	if err := srv.cfg.Ready(); err != nil {
		out.Ready, out.NotReady = false, err.Error()
	}
	if srv.cfg.HSMPool != nil {
		inUse, size := srv.cfg.HSMPool()
		out.HsmSessionsInUse, out.HsmSessions = uint32(inUse), uint32(size)
	}
	if e := srv.cfg.Authority.Policy(); e != nil {
		out.PolicyVersion = e.Version()
	}
	for _, m := range srv.recent.minutes() {
		out.Minutes = append(out.Minutes, &samdv1.MinuteCount{Start: rfc3339(time.Unix(m.minute*60, 0)), Calls: m.calls, Errors: m.errors, Denied: m.denied})
	}
	return connect.NewResponse(out), nil
}

// SearchCertificates lists the scheme PKI's certificates with their
// revocations.
func (s *officerService) SearchCertificates(ctx context.Context, req *connect.Request[samdv1.SearchCertificatesRequest]) (*connect.Response[samdv1.SearchCertificatesResponse], error) {
	if _, err := s.get(ctx); err != nil {
		return nil, err
	}
	p := s.s.cfg.PKI
	if p == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "pki: this samd runs without the scheme PKI (config pki)")
	}
	m := req.Msg
	operator, err := s.scope(principal(ctx), m.GetOperator())
	if err != nil {
		return nil, err
	}
	cs, err := p.Certificates(ctx, ca.CertificateQuery{CA: m.GetCa(), Operator: operator, Device: m.GetDevice(), Serial: m.GetSerial(),
		RevokedOnly: m.GetRevoked(), Limit: limitOf(m.GetLimit())})
	if err != nil {
		return nil, err
	}
	out := &samdv1.SearchCertificatesResponse{}
	for _, c := range cs {
		e := &samdv1.CertificateEntry{Ca: c.CA, Serial: c.Serial, Recorded: c.Recorded}
		if c.Recorded {
			e.Profile, e.Subject = c.Profile, &samdv1.Principal{Role: c.Role, Operator: c.Operator, Device: c.Device}
			e.NotBefore, e.NotAfter, e.Issued, e.Renews = rfc3339(c.NotBefore), rfc3339(c.NotAfter), rfc3339(c.Issued), c.Renews
		}
		if r := c.Revocation; r != nil {
			e.Revoked, e.RevokedAt, e.Reason, e.FromCounter = true, rfc3339(r.Time), uint32(r.Reason), r.FromCounter
		}
		out.Certificates = append(out.Certificates, e)
	}
	return connect.NewResponse(out), nil
}

// NegativeLists reports the negative lists the officer may see, each as
// ListStatus answers for it: its operator's, or for the scheme's
// officers every owner's (or the one asked for).
func (s *officerService) NegativeLists(ctx context.Context, req *connect.Request[samdv1.NegativeListsRequest]) (*connect.Response[samdv1.NegativeListsResponse], error) {
	if _, err := s.get(ctx); err != nil {
		return nil, err
	}
	l := s.s.cfg.Lists
	if l == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "lists: this samd runs without negative lists (config lists)")
	}
	owner, err := s.scope(principal(ctx), req.Msg.GetOwner())
	if err != nil {
		return nil, err
	}
	all, err := l.Lists(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := &samdv1.NegativeListsResponse{}
	for _, st := range all {
		out.Lists = append(out.Lists, listStatus(st))
	}
	return connect.NewResponse(out), nil
}
