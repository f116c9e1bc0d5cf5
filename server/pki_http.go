package server

import (
	"net/http"
	"strings"

	"github.com/samd-io/samd/authority/ca"
)

// PKIHandler serves the scheme PKI's CRLs and CA certificates over plain
// HTTP, as CRL distribution points are (RFC 5280 §4.2.1.13; a CRL is
// signed, so it needs no TLS): /crl/<ca>.crl and /crl/<ca>-delta.crl
// (DER, application/pkix-crl), /ca/<ca>.crt (DER, application/pkix-cert).
func PKIHandler(p *ca.Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crl/{file}", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(r.PathValue("file"), ".crl")
		if !ok {
			http.NotFound(w, r)
			return
		}
		base, delta := strings.CutSuffix(name, "-delta")
		der, err := p.CRL(base, delta)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(der)
	})
	mux.HandleFunc("GET /ca/{file}", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(r.PathValue("file"), ".crt")
		der, err := p.CACertificate(name)
		if !ok || err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(der)
	})
	return mux
}
