package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

var reasons = map[string]uint32{"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9, "aACompromise": 10}

// csrFlags are --csr and --new-key: a CSR made elsewhere, or a key made
// here with its CSR.
type csrFlags struct{ csr, newKey string }

func addCSRFlags(fs *flag.FlagSet) *csrFlags {
	f := &csrFlags{}
	fs.StringVar(&f.csr, "csr", "", "the certificate request, PEM `FILE`")
	fs.StringVar(&f.newKey, "new-key", "", "instead of --csr: make an ECDSA P-256 key, write it to `KEY.pem` (mode 0600, never overwritten) and send its CSR")
	return f
}

func (f *csrFlags) pem() (string, error) { return csrFrom(f.csr, f.newKey) }

// outFlag registers --out.
func outFlag(fs *flag.FlagSet, what string) *string {
	return fs.String("out", "", "write "+what+" to `FILE`")
}

// split splits a comma-separated list.
func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// issued unwraps a certificate response and writes the certificate and
// its chain to out, if named.
func issued(out string) func(*connect.Response[samdv1.IssuedCertificate], error) (proto.Message, error) {
	return func(r *connect.Response[samdv1.IssuedCertificate], err error) (proto.Message, error) {
		if err != nil {
			return nil, err
		}
		return r.Msg, writeIf(out, r.Msg.GetCertificatePem()+r.Msg.GetChainPem())
	}
}

const pkiMore = "Officers of the registry, for their own operator; server and officer certificates: samd admin propose pki.certificate.issue."

// pkiCommands are the scheme PKI's.
var pkiCommands = []command{
	{name: "pki ca create", help: "refused: a scheme-wide act (samd admin propose pki.ca.create, the scheme's officers)", flags: func(fs *flag.FlagSet) runFunc {
		name := fs.String("name", "", "the CA's name in samd, `NAME`")
		cn := fs.String("cn", "", "the CA certificate's common name, `TEXT`")
		alg := fs.String("alg", "", "the key's `ALG`, e.g. ecdsa-p256")
		parent := fs.String("parent", "", "the issuing CA, `CA` (none: a root)")
		days := fs.Uint("days", 0, "validity in days, `N`")
		pathLen := fs.Uint("path-len", 0, "the largest number of CAs below it, `N`")
		vaultKey := fs.String("vault-key", "", "the CA's key is a Vault Transit key, `MOUNT/NAME`")
		out := outFlag(fs, "the CA certificate")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			res, err := c.pki.CreateCA(ctx, connect.NewRequest(&samdv1.CreateCARequest{Name: *name, CommonName: *cn, Algorithm: *alg, Parent: *parent,
				ValidityDays: uint32(*days), MaxPathLen: uint32(*pathLen), VaultKey: *vaultKey}))
			if err != nil {
				return nil, err
			}
			return res.Msg, writeIf(*out, res.Msg.GetCertificatePem())
		}
	}},
	{name: "pki ca list", help: "the scheme's CAs (any identity)", flags: noFlags(func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
		return msg(c.pki.ListCAs(ctx, connect.NewRequest(&samdv1.ListCAsRequest{})))
	})},
	{name: "pki issue", help: "issue a terminal, back-office, clearing-house or personalisation certificate", more: pkiMore, flags: func(fs *flag.FlagSet) runFunc {
		ca := fs.String("ca", "", "the issuing CA, `CA`")
		profile := fs.String("profile", "", "the certificate `PROFILE`: terminal, back-office, clearing-house or personalisation")
		csr := addCSRFlags(fs)
		operator := fs.String("operator", "", "the subject's operator, `ID`")
		device := fs.String("device", "", "the subject's device, `ID`")
		dns := fs.String("dns", "", "DNS names, comma-separated (server certificates), `NAMES`")
		ips := fs.String("ip", "", "IP addresses, comma-separated (server certificates), `ADDRS`")
		days := fs.Uint("days", 0, "validity in days (default: the profile's), `N`")
		out := outFlag(fs, "the certificate and its chain")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			pem, err := csr.pem()
			if err != nil {
				return nil, err
			}
			return issued(*out)(c.pki.IssueCertificate(ctx, connect.NewRequest(&samdv1.IssueCertificateRequest{Ca: *ca, Profile: *profile, CsrPem: pem,
				Operator: *operator, Device: *device, DnsNames: split(*dns), IpAddresses: split(*ips), ValidityDays: uint32(*days)})))
		}
	}},
	{name: "pki token", help: "a one-time enrolment token for a device", more: pkiMore, flags: func(fs *flag.FlagSet) runFunc {
		ca := fs.String("ca", "", "the issuing CA, `CA`")
		profile := fs.String("profile", "", "the certificate `PROFILE`: terminal, back-office, clearing-house or personalisation")
		operator := fs.String("operator", "", "the device's operator, `ID`")
		device := fs.String("device", "", "the device, `ID`")
		ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid, `D`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.pki.CreateEnrolmentToken(ctx, connect.NewRequest(&samdv1.CreateEnrolmentTokenRequest{Ca: *ca, Profile: *profile,
				Operator: *operator, Device: *device, TtlSeconds: uint32(ttl.Seconds())})))
		}
	}},
	{name: "pki enrol", help: "a device's first certificate, with a one-time token", anonymous: true,
		more: "A device without a certificate: give --ca only among the connection flags, no --cert/--key.", flags: func(fs *flag.FlagSet) runFunc {
			token := fs.String("token", "", "the enrolment token, `TOKEN`")
			csr := addCSRFlags(fs)
			out := outFlag(fs, "the certificate and its chain")
			return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
				pem, err := csr.pem()
				if err != nil {
					return nil, err
				}
				return issued(*out)(c.pki.Enrol(ctx, connect.NewRequest(&samdv1.EnrolRequest{Token: *token, CsrPem: pem})))
			}
		}},
	{name: "pki renew", help: "a new certificate for the caller, with its current one", flags: func(fs *flag.FlagSet) runFunc {
		csr := addCSRFlags(fs)
		out := outFlag(fs, "the certificate and its chain")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			pem, err := csr.pem()
			if err != nil {
				return nil, err
			}
			return issued(*out)(c.pki.Renew(ctx, connect.NewRequest(&samdv1.RenewRequest{CsrPem: pem})))
		}
	}},
	{name: "pki revoke", help: "revoke a certificate (with its renewals), or every certificate of an identity", more: `The scheme's officers: any serial of the CA, also one samd has no record of.
Unless the reason is superseded, the certificates it renewed and those renewed from it are revoked too.
--role, --operator and --device instead of --serial: every certificate samd recorded for that identity.
Officer certificates: samd admin propose pki.officer.revoke.`, flags: func(fs *flag.FlagSet) runFunc {
		ca := fs.String("ca", "", "the CA that issued it, `CA` (with an identity: only that CA's)")
		serial := fs.String("serial", "", "the certificate's serial number, in `HEX`")
		role := fs.String("role", "", "instead of a serial, the identity's `ROLE` (terminal, back-office, clearing-house, personalisation)")
		operator := fs.String("operator", "", "the identity's `OPERATOR`")
		device := fs.String("device", "", "the identity's `DEVICE`")
		reason := fs.String("reason", "unspecified", "the RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, affiliationChanged … or its code, `REASON`")
		fromCounter := fs.Uint64("from-counter", 0, "a signer: files it signed with a lower counter still verify, `N`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			code, ok := reasons[*reason]
			if !ok {
				n, err := strconv.ParseUint(*reason, 10, 8)
				if err != nil {
					return nil, fmt.Errorf("--reason %q: a RFC 5280 reason name or code", *reason)
				}
				code = uint32(n)
			}
			return msg(c.pki.Revoke(ctx, connect.NewRequest(&samdv1.RevokeRequest{Ca: *ca, Serial: *serial, Reason: code, FromCounter: *fromCounter,
				Role: *role, Operator: *operator, Device: *device})))
		}
	}},
	{name: "pki crl", help: "a CA's current CRL (any identity; also over HTTP), or the scheme's single CRL of all PTOs (--scheme, the scheme's officers)",
		more: "--scheme issues an indirect CRL (RFC 5280 §5.2.5) signed by the root, listing every revocation of every CA under it (Håndbok 206 Part 19 §4.2).",
		flags: func(fs *flag.FlagSet) runFunc {
			ca := fs.String("ca", "", "the CA, `CA`")
			delta := fs.Bool("delta", false, "the delta CRL")
			scheme := fs.Bool("scheme", false, "the scheme's single CRL of all PTOs, signed by the root")
			root := fs.String("root", "", "with --scheme: the scheme's root CA (default: the only one), `CA`")
			out := outFlag(fs, "the CRL (PEM)")
			return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
				var res *connect.Response[samdv1.CRL]
				var err error
				if *scheme {
					res, err = c.pki.ExportSchemeCRL(ctx, connect.NewRequest(&samdv1.ExportSchemeCRLRequest{Root: *root}))
				} else {
					res, err = c.pki.GetCRL(ctx, connect.NewRequest(&samdv1.GetCRLRequest{Ca: *ca, Delta: *delta}))
				}
				if err != nil {
					return nil, err
				}
				return res.Msg, writeIf(*out, res.Msg.GetCrlPem())
			}
		}},
	{name: "pki signer", help: "a back office's transaction-file signer (or, --profile list-signer, its negative-list signer): its key made in the HSM (or Vault) and its certificate", flags: func(fs *flag.FlagSet) runFunc {
		ca := fs.String("ca", "", "the issuing CA, `CA`")
		operator := fs.String("operator", "", "the back office's operator, `ID`")
		signer := fs.String("signer", "", "the signer's name, `NAME`")
		alg := fs.String("alg", "", "the key's `ALG`: ecdsa-p256 or rsa-3072, or for a list signer ecdsa-p384 too (default ecdsa-p256)")
		days := fs.Uint("days", 0, "validity in days (default: the profile's), `N`")
		vaultKey := fs.String("vault-key", "", "the signer's key is a Vault Transit key, `MOUNT/NAME` (transaction-file signers only)")
		profile := fs.String("profile", "signer", "the certificate `PROFILE`: signer (transaction files) or list-signer (negative lists)")
		out := outFlag(fs, "the certificate and its chain")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return issued(*out)(c.pki.CreateSigner(ctx, connect.NewRequest(&samdv1.CreateSignerRequest{Ca: *ca, Operator: *operator, Signer: *signer, Algorithm: *alg,
				ValidityDays: uint32(*days), VaultKey: *vaultKey, Profile: *profile})))
		}
	}},
}

func writeIf(path, pemText string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(pemText), 0o644)
}

// csrFrom reads a CSR file, or makes an ECDSA P-256 key (written to
// keyFile, mode 0600, never overwritten) and a CSR for it.
func csrFrom(csrFile, keyFile string) (string, error) {
	switch {
	case csrFile != "" && keyFile != "":
		return "", errors.New("give --csr or --new-key, not both")
	case csrFile != "":
		b, err := os.ReadFile(csrFile)
		return string(b), err
	case keyFile == "":
		return "", errors.New("give --csr FILE or --new-key KEY.pem")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "samd enrolment"}}, key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), nil
}
