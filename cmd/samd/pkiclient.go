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

const pkiUsage = `
Scheme PKI (officers of the registry, for their own operator, unless noted):
  pki ca create   refused: a scheme-wide act (samd admin propose pki.ca.create, the scheme's officers)
  pki ca list     (any identity)
  pki issue       --ca CA --profile terminal|back-office|clearing-house|personalisation
                  --csr FILE --operator ID --device ID [--days N] [--out CERT.pem]
                  (server and officer certificates: samd admin propose pki.certificate.issue)
  pki token       --ca CA --profile terminal|... --operator ID --device ID [--ttl 24h]    one-time enrolment token
  pki enrol       --token T (--csr FILE | --new-key KEY.pem) --out CERT.pem
                  (a device without a certificate: give --ca only, no --cert/--key)
  pki renew       (--csr FILE | --new-key KEY.pem) --out CERT.pem      (the holder, with its current certificate)
  pki revoke      --ca CA --serial HEX [--reason keyCompromise|superseded|cessationOfOperation|affiliationChanged|N]
                  [--from-counter N]   a signer: files it signed with a lower counter still verify
                  (the scheme's officers: any serial of the CA, also one samd has no record of)
  pki crl         --ca CA [--delta] [--out FILE.crl]                   (any identity; also over HTTP)
  pki signer      --ca CA --operator ID --signer NAME [--alg ecdsa-p256|rsa-3072] [--days N] [--out CERT.pem]
                  [--vault-key MOUNT/NAME]   the signer's key is a Vault Transit key
Transaction files:
  file name       --type XX [--zu ZU]                  next name XXYYYYZU.NNNNNNNNN (back office)
  file sign       --signer NAME FILE [--out FILE.p7s]  detached CMS signature (back office)
  file verify     FILE [--sig FILE.p7s]                (clearing house)
  file verify-dir DIR                                  every XXYYYYZU.NNNNNNNNN with its .p7s, and the
                                                       sequence numbers per sender and type (clearing house)
`

// fileTimeout bounds a file's streaming, whatever --timeout says.
const fileTimeout = 30 * time.Minute

// chunkSize is how much of a file one stream message carries.
const chunkSize = 256 << 10

var reasons = map[string]uint32{"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9, "aACompromise": 10}

// pkiCmd runs the pki and file commands. It returns the message to print,
// or handles printing itself (verify-dir) and returns nil.
func (c *client) pkiCmd(ctx context.Context, cmd string, args []string, out io.Writer, asJSON bool) (proto.Message, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: which subcommand?", cmd)
	}
	sub, args := args[0], args[1:]
	if cmd == "pki" && sub == "ca" {
		if len(args) == 0 {
			return nil, errors.New("pki ca: create or list?")
		}
		sub, args = "ca "+args[0], args[1:]
	}
	fs := flag.NewFlagSet(cmd+" "+sub, flag.ContinueOnError)
	name := fs.String("name", "", "")
	cn := fs.String("cn", "", "")
	alg := fs.String("alg", "", "")
	parent := fs.String("parent", "", "")
	days := fs.Uint("days", 0, "")
	pathLen := fs.Uint("path-len", 0, "")
	ca := fs.String("ca", "", "")
	profile := fs.String("profile", "", "")
	csrFile := fs.String("csr", "", "")
	newKey := fs.String("new-key", "", "")
	operator := fs.String("operator", "", "")
	device := fs.String("device", "", "")
	dns := fs.String("dns", "", "")
	ips := fs.String("ip", "", "")
	outFile := fs.String("out", "", "")
	ttl := fs.Duration("ttl", 24*time.Hour, "")
	token := fs.String("token", "", "")
	serial := fs.String("serial", "", "")
	reason := fs.String("reason", "unspecified", "")
	delta := fs.Bool("delta", false, "")
	signer := fs.String("signer", "", "")
	fileType := fs.String("type", "", "")
	zu := fs.String("zu", "", "")
	sig := fs.String("sig", "", "")
	fromCounter := fs.Uint64("from-counter", 0, "")
	vaultKey := fs.String("vault-key", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	timeout := c.timeout
	if cmd == "file" {
		timeout = max(timeout, fileTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	switch cmd + " " + sub {
	case "pki ca create":
		res, err := c.pki.CreateCA(ctx, connect.NewRequest(&samdv1.CreateCARequest{Name: *name, CommonName: *cn, Algorithm: *alg, Parent: *parent,
			ValidityDays: uint32(*days), MaxPathLen: uint32(*pathLen), VaultKey: *vaultKey}))
		if err != nil {
			return nil, err
		}
		return res.Msg, writeIf(*outFile, res.Msg.GetCertificatePem())
	case "pki ca list":
		res, err := c.pki.ListCAs(ctx, connect.NewRequest(&samdv1.ListCAsRequest{}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "pki issue":
		csr, err := csrFrom(*csrFile, *newKey)
		if err != nil {
			return nil, err
		}
		res, err := c.pki.IssueCertificate(ctx, connect.NewRequest(&samdv1.IssueCertificateRequest{Ca: *ca, Profile: *profile, CsrPem: csr,
			Operator: *operator, Device: *device, DnsNames: split(*dns), IpAddresses: split(*ips), ValidityDays: uint32(*days)}))
		if err != nil {
			return nil, err
		}
		return res.Msg, writeIf(*outFile, res.Msg.GetCertificatePem()+res.Msg.GetChainPem())
	case "pki token":
		res, err := c.pki.CreateEnrolmentToken(ctx, connect.NewRequest(&samdv1.CreateEnrolmentTokenRequest{Ca: *ca, Profile: *profile,
			Operator: *operator, Device: *device, TtlSeconds: uint32(ttl.Seconds())}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "pki enrol", "pki renew":
		csr, err := csrFrom(*csrFile, *newKey)
		if err != nil {
			return nil, err
		}
		var res *connect.Response[samdv1.IssuedCertificate]
		if sub == "enrol" {
			res, err = c.pki.Enrol(ctx, connect.NewRequest(&samdv1.EnrolRequest{Token: *token, CsrPem: csr}))
		} else {
			res, err = c.pki.Renew(ctx, connect.NewRequest(&samdv1.RenewRequest{CsrPem: csr}))
		}
		if err != nil {
			return nil, err
		}
		return res.Msg, writeIf(*outFile, res.Msg.GetCertificatePem()+res.Msg.GetChainPem())
	case "pki revoke":
		code, ok := reasons[*reason]
		if !ok {
			n, err := strconv.ParseUint(*reason, 10, 8)
			if err != nil {
				return nil, fmt.Errorf("--reason %q: a RFC 5280 reason name or code", *reason)
			}
			code = uint32(n)
		}
		res, err := c.pki.Revoke(ctx, connect.NewRequest(&samdv1.RevokeRequest{Ca: *ca, Serial: *serial, Reason: code, FromCounter: *fromCounter}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "pki crl":
		res, err := c.pki.GetCRL(ctx, connect.NewRequest(&samdv1.GetCRLRequest{Ca: *ca, Delta: *delta}))
		if err != nil {
			return nil, err
		}
		return res.Msg, writeIf(*outFile, res.Msg.GetCrlPem())
	case "pki signer":
		res, err := c.pki.CreateSigner(ctx, connect.NewRequest(&samdv1.CreateSignerRequest{Ca: *ca, Operator: *operator, Signer: *signer, Algorithm: *alg,
			ValidityDays: uint32(*days), VaultKey: *vaultKey}))
		if err != nil {
			return nil, err
		}
		return res.Msg, writeIf(*outFile, res.Msg.GetCertificatePem()+res.Msg.GetChainPem())
	case "file name":
		res, err := c.files.NextFileName(ctx, connect.NewRequest(&samdv1.NextFileNameRequest{FileType: *fileType, Zu: *zu}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "file sign":
		if fs.NArg() != 1 {
			return nil, errors.New("file sign: name one file")
		}
		return c.signFile(ctx, fs.Arg(0), *signer, *outFile)
	case "file verify":
		if fs.NArg() != 1 {
			return nil, errors.New("file verify: name one file")
		}
		if *sig == "" {
			*sig = fs.Arg(0) + ".p7s"
		}
		return c.verifyFile(ctx, fs.Arg(0), *sig)
	case "file verify-dir":
		if fs.NArg() != 1 {
			return nil, errors.New("file verify-dir: name one directory")
		}
		return nil, c.verifyDir(ctx, fs.Arg(0), out, asJSON)
	}
	return nil, fmt.Errorf("unknown command %q", cmd+" "+sub)
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
	Unnamed []string `json:"unnamed,omitempty"`
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
	rep := dirReport{OK: true}
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
	rep.Sequences = pki.CheckSequences(arrived)
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
