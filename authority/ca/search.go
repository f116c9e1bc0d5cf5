package ca

import (
	"context"
	"sort"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// CertificateQuery selects certificates of the scheme PKI for officers:
// each field that is set must match.
type CertificateQuery struct {
	CA, Operator, Device string
	// Serial is hex, as an officer gives it (see ParseSerial).
	Serial string
	// RevokedOnly lists revocations only: those of recorded
	// certificates that match and, when neither Operator nor Device is
	// set, of serials samd has no record of.
	RevokedOnly bool
	// Limit is the most returned (0: 100).
	Limit int
}

// CertificateStatus is a certificate and its revocation, if any.
type CertificateStatus struct {
	// Certificate is samd's record of it; only CA and Serial are set when
	// Recorded is false (a serial the CA's key signed outside samd, known
	// only by its revocation).
	state.Certificate
	Recorded   bool
	Revocation *state.Revocation
}

// Certificates lists the certificates that match q, newest first (newest
// issued, or with RevokedOnly newest revoked), each with its revocation
// as the listeners enforce it (in memory, every revocation recorded by
// any replica up to the last look at the store).
func (s *Service) Certificates(ctx context.Context, q CertificateQuery) ([]CertificateStatus, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Serial != "" {
		var err error
		if q.Serial, err = ParseSerial(q.Serial); err != nil {
			return nil, err
		}
	}
	if q.CA != "" {
		if _, err := s.ca(q.CA); err != nil {
			return nil, err
		}
	}
	if q.RevokedOnly {
		return s.revokedCertificates(ctx, q)
	}
	recs, err := s.cfg.State.Certificates(ctx, state.CertificateQuery{CA: q.CA, Operator: q.Operator, Device: q.Device, Serial: q.Serial, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]CertificateStatus, 0, len(recs))
	for _, c := range recs {
		out = append(out, CertificateStatus{Certificate: c, Recorded: true, Revocation: s.revocation(c.CA, c.Serial)})
	}
	return out, nil
}

// revocation is a serial's revocation by a CA, nil if none.
func (s *Service) revocation(ca, serial string) *state.Revocation {
	m, ok := s.live(ca)
	if !ok {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r, ok := m.revoked[serial]; ok {
		return &r
	}
	return nil
}

// revokedCertificates lists the revocations that match q, newest first,
// with the record of each revoked certificate samd has.
func (s *Service) revokedCertificates(ctx context.Context, q CertificateQuery) ([]CertificateStatus, error) {
	var revs []state.Revocation
	s.mu.RLock()
	for name, m := range s.cas {
		if q.CA != "" && name != q.CA {
			continue
		}
		m.mu.RLock()
		for serial, r := range m.revoked {
			if q.Serial == "" || serial == q.Serial {
				revs = append(revs, r)
			}
		}
		m.mu.RUnlock()
	}
	s.mu.RUnlock()
	sort.Slice(revs, func(i, j int) bool {
		if !revs[i].Time.Equal(revs[j].Time) {
			return revs[i].Time.After(revs[j].Time)
		}
		return revs[i].CA < revs[j].CA || revs[i].CA == revs[j].CA && revs[i].Seq > revs[j].Seq
	})
	var out []CertificateStatus
	for _, r := range revs {
		if len(out) == q.Limit {
			break
		}
		c, err := s.cfg.State.Certificate(ctx, r.CA, r.Serial)
		recorded := err == nil
		switch {
		case err != nil && errkind.Of(err) != errkind.NotFound:
			return nil, err
		case !recorded && (q.Operator != "" || q.Device != ""):
			continue // nobody's but the scheme's
		case recorded && (q.Operator != "" && c.Operator != q.Operator || q.Device != "" && c.Device != q.Device):
			continue
		}
		if !recorded {
			c = state.Certificate{CA: r.CA, Serial: r.Serial}
		}
		out = append(out, CertificateStatus{Certificate: c, Recorded: recorded, Revocation: &r})
	}
	return out, nil
}
