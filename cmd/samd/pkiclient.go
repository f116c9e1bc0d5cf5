package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/pki"
)

// fileTimeout bounds a file's streaming, whatever --timeout says.
const fileTimeout = 30 * time.Minute

// chunkSize is how much of a file one stream message carries.
const chunkSize = 256 << 10

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
	{name: "pki revoke", help: "revoke a certificate", more: "The scheme's officers: any serial of the CA, also one samd has no record of.", flags: func(fs *flag.FlagSet) runFunc {
		ca := fs.String("ca", "", "the CA that issued it, `CA`")
		serial := fs.String("serial", "", "the certificate's serial number, in `HEX`")
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
			return msg(c.pki.Revoke(ctx, connect.NewRequest(&samdv1.RevokeRequest{Ca: *ca, Serial: *serial, Reason: code, FromCounter: *fromCounter})))
		}
	}},
	{name: "pki crl", help: "a CA's current CRL (any identity; also over HTTP)", flags: func(fs *flag.FlagSet) runFunc {
		ca := fs.String("ca", "", "the CA, `CA`")
		delta := fs.Bool("delta", false, "the delta CRL")
		out := outFlag(fs, "the CRL (PEM)")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			res, err := c.pki.GetCRL(ctx, connect.NewRequest(&samdv1.GetCRLRequest{Ca: *ca, Delta: *delta}))
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

// fileCommands are the transaction files'.
var fileCommands = []command{
	{name: "file name", help: "the next file name XXYYYYZU.NNNNNNNNN (back office)", flags: func(fs *flag.FlagSet) runFunc {
		fileType := fs.String("type", "", "the file type, two characters, `XX`")
		zu := fs.String("zu", "", "the ZU part of the name, `ZU`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.files.NextFileName(ctx, connect.NewRequest(&samdv1.NextFileNameRequest{FileType: *fileType, Zu: *zu})))
		}
	}},
	{name: "file sign", args: "FILE", help: "a detached CMS signature of FILE (back office)", timeout: fileTimeout, flags: func(fs *flag.FlagSet) runFunc {
		signer := fs.String("signer", "", "the signer, as pki signer named it, `NAME`")
		out := fs.String("out", "", "write the signature to `FILE.p7s` (default: FILE.p7s beside FILE)")
		return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			return c.signFile(ctx, in.args[0], *signer, *out)
		}
	}},
	{name: "file verify", args: "FILE", help: "verify FILE's signature, chain, CRL and sender (clearing house)", timeout: fileTimeout, flags: func(fs *flag.FlagSet) runFunc {
		sig := fs.String("sig", "", "the detached signature, `FILE.p7s` (default: FILE.p7s beside FILE)")
		return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			if *sig == "" {
				*sig = in.args[0] + ".p7s"
			}
			return c.verifyFile(ctx, in.args[0], *sig)
		}
	}},
	{name: "file verify-dir", args: "DIR", help: "verify every XXYYYYZU.NNNNNNNNN in DIR with its .p7s, and the sequence numbers per sender and type (clearing house)", timeout: fileTimeout,
		flags: noFlags(func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			return nil, c.verifyDir(ctx, in.args[0], in.out, in.json)
		})},
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

// signFile streams a file to samd and writes its detached signature.
func (c *client) signFile(ctx context.Context, path, signer, out string) (*samdv1.SignFileResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stream := c.files.SignFile(ctx)
	first := &samdv1.SignFileRequest{Name: filepath.Base(path), Signer: signer}
	if err := sendChunks(f, func(chunk []byte) error {
		if first != nil {
			first.Chunk = chunk
			err := stream.Send(first)
			first = nil
			return err
		}
		return stream.Send(&samdv1.SignFileRequest{Chunk: chunk})
	}); err != nil {
		if _, rerr := stream.CloseAndReceive(); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	if out == "" {
		out = path + ".p7s"
	}
	return res.Msg, os.WriteFile(out, res.Msg.GetSignature(), 0o644)
}

// sendChunks reads r to its end in chunks; send gets at least one call.
func sendChunks(r io.Reader, send func([]byte) error) error {
	buf := make([]byte, chunkSize)
	sent := false
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || !sent {
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
			sent = true
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// verifyFile streams a file and its signature to samd.
func (c *client) verifyFile(ctx context.Context, path, sigPath string) (*samdv1.VerifyFileResponse, error) {
	sig, err := os.ReadFile(sigPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stream := c.files.VerifyFile(ctx)
	first := &samdv1.VerifyFileRequest{Name: filepath.Base(path), Signature: sig}
	if err := sendChunks(f, func(chunk []byte) error {
		if first != nil {
			first.Chunk = chunk
			err := stream.Send(first)
			first = nil
			return err
		}
		return stream.Send(&samdv1.VerifyFileRequest{Chunk: chunk})
	}); err != nil {
		if _, rerr := stream.CloseAndReceive(); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// dirReport is what verify-dir prints.
type dirReport struct {
	Files     []json.RawMessage    `json:"files"`
	Sequences []pki.SequenceReport `json:"sequences"`
	// Unnamed lists files whose names are not XXYYYYZU.NNNNNNNNN.
	Unnamed []string `json:"unnamed"`
	OK      bool     `json:"ok"`
}

// verifyDir verifies every transaction file of a directory, in the order
// they arrived, and reports the sequence numbers per sender and file type.
func (c *client) verifyDir(ctx context.Context, dir string, out io.Writer, asJSON bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	// Files are taken in the order they arrived: modification time, then
	// name.
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".p7s") {
			info, err := e.Info()
			if err != nil {
				return err
			}
			files = append(files, file{e.Name(), info.ModTime()})
		}
	}
	sort.SliceStable(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].name < files[j].name
	})
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	rep := dirReport{OK: true, Files: []json.RawMessage{}, Unnamed: []string{}} // [] in --json, not null
	var arrived []pki.FileName
	for _, n := range names {
		fn, err := pki.ParseFileName(n)
		if err != nil {
			rep.Unnamed = append(rep.Unnamed, n)
			rep.OK = false
			continue
		}
		arrived = append(arrived, fn)
		res, err := c.verifyFile(ctx, filepath.Join(dir, n), filepath.Join(dir, n+".p7s"))
		if err != nil {
			res = &samdv1.VerifyFileResponse{Name: n, Reason: "unreadable", Detail: err.Error()}
		}
		if !res.GetOk() {
			rep.OK = false
		}
		b, _ := jsonOut.Marshal(res)
		rep.Files = append(rep.Files, b)
		if !asJSON {
			if res.GetOk() {
				fmt.Fprintf(out, "%s  ok        signer %s/%s serial %s, signed %s, %s #%d\n", n, res.GetSigner().GetOperator(), res.GetSigner().GetDevice(),
					res.GetSignerSerial(), res.GetSigningTime(), res.GetInstance(), res.GetCounter())
			} else {
				fmt.Fprintf(out, "%s  FAILED    %s: %s\n", n, res.GetReason(), res.GetDetail())
			}
		}
	}
	rep.Sequences = append([]pki.SequenceReport{}, pki.CheckSequences(arrived)...)
	for _, s := range rep.Sequences {
		if len(s.Missing) > 0 || len(s.Duplicates) > 0 || len(s.OutOfOrder) > 0 {
			rep.OK = false
		}
		if !asJSON {
			fmt.Fprintf(out, "series %s: %d files, %09d..%09d", s.Series, s.Count, s.First, s.Last)
			for _, m := range s.Missing {
				fmt.Fprintf(out, ", MISSING %09d..%09d", m.From, m.To)
			}
			for _, d := range s.Duplicates {
				fmt.Fprintf(out, ", DUPLICATE %09d", d)
			}
			for _, o := range s.OutOfOrder {
				fmt.Fprintf(out, ", OUT OF ORDER %09d", o)
			}
			fmt.Fprintln(out)
		}
	}
	if asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(b))
	}
	if !rep.OK {
		return errors.New("the directory did not verify")
	}
	return nil
}
