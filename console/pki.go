package console

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/revocation"
)

// crlSoon highlights a CRL whose nextUpdate is this close: its publisher
// should have renewed it long before (pki.renew_before).
const crlSoon = time.Hour

// caRow is a CA as the PKI page shows it.
type caRow struct {
	*samdv1.CARecord
	Subject, NotAfter string
	// CRLState is "" while the CRL is fresh, else why it is highlighted.
	CRLState string
	// RevokeLink proposes the CA's revocation (pki.ca.revoke); "" for a
	// root, which is retired, not revoked.
	RevokeLink string
}

// certQuery is the PKI page's search, as the form holds it.
type certQuery struct {
	CA, Operator, Device, Serial string
	Revoked                      bool
}

type certRow struct {
	*samdv1.CertificateEntry
	Reason string
	// Revoke is where the certificate is revoked: the revocation page, or
	// for an officer's certificate (it carries a vote) the proposal of
	// pki.officer.revoke; "" for a revoked one, and for a CA's (revoked
	// from the CA table). Propose says which.
	Revoke  string
	Propose bool
}

// revokeLink is where a certificate is revoked, as certRow says.
func revokeLink(e *samdv1.CertificateEntry) (string, bool) {
	switch {
	case e.GetRevoked() || e.GetProfile() == "ca":
		return "", false
	case e.GetProfile() == "officer":
		params, _ := json.Marshal(map[string]any{"officer": e.GetSubject().GetOperator() + "/" + e.GetSubject().GetDevice(), "ca": e.GetCa(),
			"serial": e.GetSerial(), "reason": 0})
		return Prefix + "propose?op=" + url.QueryEscape(dualcontrol.OpOfficerRevoke) + "&params=" + url.QueryEscape(string(params)), true
	}
	return Prefix + "pki/revoke?ca=" + url.QueryEscape(e.GetCa()) + "&serial=" + url.QueryEscape(e.GetSerial()), false
}

type pkiData struct {
	CAs   []caRow
	Query certQuery
	Certs []certRow
}

// pki shows the scheme's CAs with their CRLs, and the certificates the
// search selects (the newest issued, by default) with their revocations.
func (c *Console) pki(r *http.Request, v *view) error {
	q := r.URL.Query()
	d := &pkiData{Query: certQuery{CA: q.Get("ca"), Operator: q.Get("operator"), Device: q.Get("device"), Serial: q.Get("serial"), Revoked: q.Get("revoked") != ""}}
	v.Data = d
	cas, err := call(c.api.pki.ListCAs(as(r), connect.NewRequest(&samdv1.ListCAsRequest{})))
	if err != nil {
		return err
	}
	for _, ca := range cas.GetCas() {
		row := caRow{CARecord: ca}
		if blk, _ := pem.Decode([]byte(ca.GetCertificatePem())); blk != nil {
			if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
				row.Subject, row.NotAfter = cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339)
			}
		}
		next, err := time.Parse(time.RFC3339, ca.GetCrlNextUpdate())
		switch {
		case err != nil:
			row.CRLState = "no CRL yet"
		case !v.Now.Before(next):
			row.CRLState = "expired: relying parties refuse its certificates"
		case next.Sub(v.Now) < crlSoon:
			row.CRLState = "due: " + left(next.Sub(v.Now))
		}
		if ca.GetParent() != "" {
			params, _ := json.Marshal(map[string]any{"ca": ca.GetName(), "reason": 0})
			row.RevokeLink = Prefix + "propose?op=" + url.QueryEscape(dualcontrol.OpCARevoke) + "&params=" + url.QueryEscape(string(params))
		}
		d.CAs = append(d.CAs, row)
	}
	certs, err := call(c.api.officers.SearchCertificates(as(r), connect.NewRequest(&samdv1.SearchCertificatesRequest{Ca: d.Query.CA,
		Operator: d.Query.Operator, Device: d.Query.Device, Serial: d.Query.Serial, Revoked: d.Query.Revoked})))
	if err != nil {
		return err
	}
	for _, e := range certs.GetCertificates() {
		row := certRow{CertificateEntry: e}
		row.Revoke, row.Propose = revokeLink(e)
		if e.GetRevoked() {
			row.Reason = revocation.Reason(e.GetReason()).String()
		}
		d.Certs = append(d.Certs, row)
	}
	return nil
}

// reason is a revocation reason officers may give (RFC 5280 §5.3.1;
// removeFromCRL and the unused 7 are not).
type reason struct {
	Code uint32
	Name string
}

var reasons = func() []reason {
	var out []reason
	for _, code := range []uint32{0, 1, 2, 3, 4, 5, 6, 9, 10} {
		out = append(out, reason{code, revocation.Reason(code).String()})
	}
	return out
}()

type revokeData struct {
	CA, Serial string
	// Cert is the certificate as samd recorded it, nil if it has no
	// record of it (only the scheme's officers revoke those).
	Cert    *samdv1.CertificateEntry
	Reasons []reason
	Reason  uint32
	From    string
}

// revokeForm shows the certificate to revoke and asks for the reason.
func (c *Console) revokeForm(r *http.Request, v *view) error {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	d := &revokeData{CA: q.Get("ca"), Serial: q.Get("serial"), Reasons: reasons, From: q.Get("from_counter")}
	if n, err := strconv.ParseUint(q.Get("reason"), 10, 32); err == nil {
		d.Reason = uint32(n)
	}
	v.Data = d
	if d.CA == "" || d.Serial == "" {
		return nil
	}
	res, err := call(c.api.officers.SearchCertificates(as(r), connect.NewRequest(&samdv1.SearchCertificatesRequest{Ca: d.CA, Serial: d.Serial, Limit: 1})))
	if err != nil {
		return err
	}
	if cs := res.GetCertificates(); len(cs) > 0 {
		d.Cert = cs[0]
	}
	return nil
}

var errBadNumber = errors.New("reason and from_counter must be numbers")

// revoke revokes a certificate: PKIService.Revoke, refused and audited as
// `samd client pki revoke` is (a CA is revoked by proposal only).
func (c *Console) revoke(w http.ResponseWriter, r *http.Request) {
	if !c.change(w, r) {
		return
	}
	f := r.PostForm
	reason, err := strconv.ParseUint(f.Get("reason"), 10, 32)
	var from uint64
	if s := strings.TrimSpace(f.Get("from_counter")); err == nil && s != "" {
		from, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		c.show(w, r, "revoke", (*Console).revokeForm, connect.NewError(connect.CodeInvalidArgument, errBadNumber))
		return
	}
	_, err = c.api.pki.Revoke(as(r), connect.NewRequest(&samdv1.RevokeRequest{Ca: f.Get("ca"), Serial: f.Get("serial"), Reason: uint32(reason), FromCounter: from}))
	if err != nil {
		c.show(w, r, "revoke", (*Console).revokeForm, err)
		return
	}
	http.Redirect(w, r, Prefix+"pki?done=revoked&ca="+url.QueryEscape(f.Get("ca"))+"&serial="+url.QueryEscape(f.Get("serial")), http.StatusSeeOther)
}
