// Package pki is the scheme PKI's signing core: CA certificates and
// end-entity certificates by profile, refused before signing when a
// request falls outside its profile (cert.go, RFC 5280); certificate
// revocation lists, complete, delta and indirect (crl.go, RFC 5280 §5).
// It signs with a crypto.Signer whose key stays in the HSM (or in
// Vault).
//
// Transaction files' detached CMS signatures are package pki/cms, the
// Part 19 file format — names and their sequences, XDR files and their
// end file — is package pki/part19, and the CAs themselves —
// their records, issuance, enrolment, revocation and CRL schedule — are
// the scheme CA's, package authority/ca.
//
// The package holds no state: the caller keeps the certificate and
// revocation records and the CRL numbers, and passes the time and the
// randomness.
package pki
