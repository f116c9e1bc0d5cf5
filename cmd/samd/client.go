package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/server"
)

const clientUsage = `usage: samd client [flags] COMMAND [command flags]

Connection flags:
  --addr HOST:PORT     samd address (default 127.0.0.1:7443)
  --admin-addr H:P     the admin listener, for allowance, policy and officers' commands
                       (default 127.0.0.1:7444; samd admin takes --addr for it)
  --dev DIR            use the CA and client certificates that "samd dev" made in DIR
  --as ROLE            with --dev: terminal (default), personalisation, officer,
                       officer-2, officer-3, scheme-officer, scheme-officer-2,
                       back-office, clearing-house
  --ca FILE --cert FILE --key FILE
                       or name the scheme CA and the client certificate and key
  --protocol P         grpc (default), json (Connect JSON over HTTP) or grpcweb
  --json               print the response (or the error) as JSON
  --timeout D          request timeout (default 10s)

Commands:
  kcv      check value of an AN10922-diversified key
           --key NAME:vN --uid HEX [--aid HEX] [--sysid HEX | --sysid-ascii TEXT]
           [--kcv-method cmac-zero|encrypt-zero]
  export   diversified key wrapped under a transport key (personalisation)
           the kcv flags, plus --transport NAME:vN [--mech kw|kwp|tr31] [--des-version N]
           (tr31: a TR-31 key block under a key-block key)
  health   grpc.health.v1 check
  value authorize   --amount MINOR --currency NOK --owner OPERATOR [--purpose load|sale|refund]
  value cancel      --seq N            cancel this device's authorisation N
  value verify      --record FILE      verify a record (the JSON "authorization" that
                                       "value authorize --json" printed; - for stdin)
  allowance get|topup|reset --device OPERATOR/DEVICE [--amount MINOR --currency NOK]
  policy reload     refused: a scheme-wide act (samd admin propose policy.activate)
  seal     --profile NAME (--file OBJECTS.json | --type N --card HEX --seq N --owner ID --data HEX)
  verify   the seal flags, with --mac HEX for one object (or "mac" in each object of the file)
           OBJECTS.json is a JSON array of {"type","card_id","sequence","product_owner","data"[,"mac"]}
  card ... / sun ...   card sessions and SUN verification: samd client card (lists them)
  card-demo            a whole DESFire EV2 session against a simulated card, step by step
` + pkiUsage

type clientOptions struct {
	addr, dev, as, ca, cert, key, protocol string
	// adminAddr is the admin listener, for the officers' methods.
	adminAddr string
	timeout   time.Duration
	// anonymous allows a connection without a client certificate.
	anonymous bool
}

type client struct {
	div      samdv1connect.DiversificationServiceClient
	val      samdv1connect.ValueServiceClient
	adm      samdv1connect.AdminServiceClient
	macs     samdv1connect.MACServiceClient
	card     samdv1connect.CardServiceClient
	pki      samdv1connect.PKIServiceClient
	files    samdv1connect.FileServiceClient
	officers samdv1connect.OfficerServiceClient
	health   *connect.Client[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse]
	timeout  time.Duration
}

func newClient(o clientOptions) (*client, error) {
	if o.addr == "" {
		o.addr = "127.0.0.1:7443"
	}
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	if o.adminAddr == "" {
		o.adminAddr = "127.0.0.1:7444"
	}
	if o.dev != "" {
		if o.as == "" {
			o.as = "terminal"
		}
		if _, ok := devIdentities[o.as]; !ok {
			return nil, fmt.Errorf("--as %q: not a development identity", o.as)
		}
		pki := filepath.Join(o.dev, "pki")
		o.ca, o.cert, o.key = filepath.Join(pki, "ca.crt"), filepath.Join(pki, o.as+".crt"), filepath.Join(pki, o.as+".key")
	}
	var certs []tls.Certificate
	switch {
	case o.ca == "":
		return nil, errors.New("name the certificates with --dev DIR, or --ca, --cert and --key")
	case o.cert == "" && o.key == "" && o.anonymous:
		// Enrolment: a device without a certificate yet.
	case o.cert == "" || o.key == "":
		return nil, errors.New("name the client certificate with --cert and --key")
	default:
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, err
		}
		certs = []tls.Certificate{cert}
	}
	caPEM, err := os.ReadFile(o.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no certificate", o.ca)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: certs},
		ForceAttemptHTTP2: true,
	}
	hc := &http.Client{Transport: tr}
	base, adminBase := "https://"+o.addr, "https://"+o.adminAddr
	var opts []connect.ClientOption
	switch o.protocol {
	case "", "grpc":
		opts = append(opts, connect.WithGRPC())
	case "json":
		opts = append(opts, connect.WithProtoJSON())
	case "grpcweb":
		opts = append(opts, connect.WithGRPCWeb())
	default:
		return nil, fmt.Errorf("--protocol %q: want grpc, json or grpcweb", o.protocol)
	}
	return &client{
		div:      samdv1connect.NewDiversificationServiceClient(hc, base, opts...),
		val:      samdv1connect.NewValueServiceClient(hc, base, opts...),
		adm:      samdv1connect.NewAdminServiceClient(hc, adminBase, opts...),
		macs:     samdv1connect.NewMACServiceClient(hc, base, opts...),
		card:     samdv1connect.NewCardServiceClient(hc, base, opts...),
		pki:      samdv1connect.NewPKIServiceClient(hc, base, opts...),
		files:    samdv1connect.NewFileServiceClient(hc, base, opts...),
		officers: samdv1connect.NewOfficerServiceClient(hc, adminBase, opts...),
		health:   connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](hc, base+"/grpc.health.v1.Health/Check", opts...),
		timeout:  o.timeout,
	}, nil
}

type kcvArgs struct {
	key, uid, aid, sysid, method string
}

func parseKeyRef(s string) (*samdv1.KeyRef, error) {
	name, v, ok := strings.Cut(s, ":v")
	if !ok {
		return nil, fmt.Errorf("key %q: want NAME:vN, e.g. desfire/dev/app-master-aes128:v1", s)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("key %q: bad version", s)
	}
	return &samdv1.KeyRef{Name: name, Version: uint32(n)}, nil
}

func wireMethod(s string) (samdv1.KCVMethod, error) {
	switch s {
	case "":
		return samdv1.KCVMethod_KCV_METHOD_UNSPECIFIED, nil
	case "cmac-zero":
		return samdv1.KCVMethod_KCV_METHOD_CMAC_ZERO, nil
	case "encrypt-zero":
		return samdv1.KCVMethod_KCV_METHOD_ENCRYPT_ZERO, nil
	}
	return 0, fmt.Errorf("--kcv-method %q: want cmac-zero or encrypt-zero", s)
}

func (c *client) kcv(ctx context.Context, a kcvArgs) (*samdv1.DiversifiedKeyCheckValueResponse, error) {
	ref, err := parseKeyRef(a.key)
	if err != nil {
		return nil, err
	}
	m, err := wireMethod(a.method)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.div.DiversifiedKeyCheckValue(ctx, connect.NewRequest(&samdv1.DiversifiedKeyCheckValueRequest{
		MasterKey: ref, Input: &samdv1.DiversificationInput{Uid: a.uid, Aid: a.aid, SystemIdentifier: a.sysid}, KcvMethod: m,
	}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func cmdClient(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, clientUsage) }
	var o clientOptions
	fs.StringVar(&o.addr, "addr", "127.0.0.1:7443", "")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "")
	fs.StringVar(&o.dev, "dev", "", "")
	fs.StringVar(&o.as, "as", "", "")
	fs.StringVar(&o.ca, "ca", "", "")
	fs.StringVar(&o.cert, "cert", "", "")
	fs.StringVar(&o.key, "key", "", "")
	fs.StringVar(&o.protocol, "protocol", "grpc", "")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "")
	asJSON := fs.Bool("json", false, "")
	admin := fs.Bool("admin", false, "") // set by "samd admin"
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *admin && o.adminAddr == "" {
		o.adminAddr = o.addr // samd admin: --addr is the admin listener
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	o.anonymous = cmd == "pki" && len(rest) > 0 && rest[0] == "enrol"
	c, err := newClient(o)
	if err != nil {
		return err
	}
	sub := flag.NewFlagSet(cmd, flag.ContinueOnError)
	sub.Usage = func() { fmt.Fprint(os.Stderr, clientUsage) }
	var a kcvArgs
	var sysASCII, transport, mech string
	desVersion := -1
	if *admin || cmd == "value" || cmd == "allowance" || cmd == "policy" || cmd == "seal" || cmd == "verify" || cmd == "card" || cmd == "sun" || cmd == "pki" || cmd == "file" {
		rest = nil // parsed by c.more
	}
	if cmd == "kcv" || cmd == "export" {
		sub.StringVar(&a.key, "key", "", "")
		sub.StringVar(&a.uid, "uid", "", "")
		sub.StringVar(&a.aid, "aid", "", "")
		sub.StringVar(&a.sysid, "sysid", "", "")
		sub.StringVar(&sysASCII, "sysid-ascii", "", "")
		sub.StringVar(&a.method, "kcv-method", "", "")
	}
	if cmd == "export" {
		sub.StringVar(&transport, "transport", "", "")
		sub.StringVar(&mech, "mech", "kwp", "")
		sub.IntVar(&desVersion, "des-version", -1, "")
	}
	if err := sub.Parse(rest); err != nil {
		return err
	}
	rest = fs.Args()[1:]
	if sysASCII != "" {
		if a.sysid != "" {
			return errors.New("give --sysid or --sysid-ascii, not both")
		}
		a.sysid = hex.EncodeToString([]byte(sysASCII))
	}
	ctx := context.Background()
	var msg proto.Message
	if *admin {
		cmd = "admin " + cmd
	}
	switch {
	case strings.HasPrefix(cmd, "admin "):
		msg, err = c.officerCmd(ctx, strings.TrimPrefix(cmd, "admin "), rest)
		if err != nil {
			return printError(out, err, *asJSON)
		}
		return printResponse(out, msg, *asJSON)
	}
	switch cmd {
	case "kcv":
		msg, err = c.kcv(ctx, a)
	case "export":
		msg, err = c.export(ctx, a, transport, mech, desVersion)
	case "health":
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		var res *connect.Response[healthpb.HealthCheckResponse]
		res, err = c.health.CallUnary(cctx, connect.NewRequest(&healthpb.HealthCheckRequest{}))
		cancel()
		if err == nil {
			msg = res.Msg
		}
	case "value", "allowance", "policy":
		msg, err = c.more(ctx, cmd, rest)
	case "seal", "verify":
		msg, err = c.sealOrVerify(ctx, cmd, rest)
	case "card", "sun":
		msg, err = c.cardCmd(ctx, cmd, rest)
	case "pki", "file":
		msg, err = c.pkiCmd(ctx, cmd, rest, out, *asJSON)
		if err == nil && msg == nil {
			return nil // printed by the command
		}
	case "card-demo":
		if err := c.cardDemo(ctx, out); err != nil {
			return printError(out, err, *asJSON)
		}
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		return printError(out, err, *asJSON)
	}
	if err := printResponse(out, msg, *asJSON); err != nil {
		return err
	}
	if v, ok := msg.(*samdv1.VerifyObjectsResponse); ok && v.GetInvalid() > 0 {
		return fmt.Errorf("%d of %d objects did not verify", v.GetInvalid(), len(v.GetResults()))
	}
	if v, ok := msg.(*samdv1.VerifyFileResponse); ok && !v.GetOk() {
		return fmt.Errorf("%s did not verify: %s", v.GetName(), v.GetReason())
	}
	return nil
}

func (c *client) export(ctx context.Context, a kcvArgs, transport, mech string, desVersion int) (*samdv1.ExportDiversifiedKeyResponse, error) {
	ref, err := parseKeyRef(a.key)
	if err != nil {
		return nil, err
	}
	kek, err := parseKeyRef(transport)
	if err != nil {
		return nil, fmt.Errorf("--transport: %w", err)
	}
	m, err := wireMethod(a.method)
	if err != nil {
		return nil, err
	}
	req := &samdv1.ExportDiversifiedKeyRequest{
		MasterKey: ref, TransportKey: kek, KcvMethod: m,
		Input: &samdv1.DiversificationInput{Uid: a.uid, Aid: a.aid, SystemIdentifier: a.sysid},
	}
	switch mech {
	case "kw":
		req.Mechanism = samdv1.WrapMechanism_WRAP_MECHANISM_AES_KW
	case "kwp":
		req.Mechanism = samdv1.WrapMechanism_WRAP_MECHANISM_AES_KWP
	case "tr31":
		req.Mechanism = samdv1.WrapMechanism_WRAP_MECHANISM_TR31
	default:
		return nil, fmt.Errorf("--mech %q: want kw, kwp or tr31", mech)
	}
	if desVersion >= 0 {
		v := uint32(desVersion)
		req.DesKeyVersion = &v
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.div.ExportDiversifiedKey(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

var jsonOut = protojson.MarshalOptions{UseProtoNames: true, Multiline: true, Indent: "  "}

func printResponse(w io.Writer, m proto.Message, asJSON bool) error {
	if asJSON {
		b, err := jsonOut.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	switch r := m.(type) {
	case *samdv1.DiversifiedKeyCheckValueResponse:
		fmt.Fprintf(w, "kcv        %s (%s, %s key)\n", r.GetKcv(), methodName(r.GetKcvMethod()), r.GetAlgorithm())
		printKeyInfo(w, "master key", r.GetMasterKey())
	case *samdv1.ExportDiversifiedKeyResponse:
		if r.GetKeyBlock() != "" {
			fmt.Fprintf(w, "key block  %s (TR-31)\n", r.GetKeyBlock())
		} else {
			fmt.Fprintf(w, "wrapped    %s (%s)\n", r.GetWrappedKey(), strings.TrimPrefix(r.GetMechanism().String(), "WRAP_MECHANISM_"))
		}
		fmt.Fprintf(w, "kcv        %s (%s, %s key)\n", r.GetKcv(), methodName(r.GetKcvMethod()), r.GetAlgorithm())
		printKeyInfo(w, "master key", r.GetMasterKey())
		printKeyInfo(w, "transport", r.GetTransportKey())
	case *healthpb.HealthCheckResponse:
		fmt.Fprintln(w, r.GetStatus().String())
	case *samdv1.SealObjectsResponse:
		for i, o := range r.GetResults() {
			if o.GetCode() != "" {
				fmt.Fprintf(w, "object %d  FAILED %s\n", i, o.GetMessage())
			} else {
				fmt.Fprintf(w, "object %d  mac %s\n", i, o.GetMac())
			}
		}
		printKeyInfo(w, "key", r.GetKey())
	case *samdv1.VerifyObjectsResponse:
		for i, o := range r.GetResults() {
			if o.GetValid() {
				fmt.Fprintf(w, "object %d  valid\n", i)
			} else {
				fmt.Fprintf(w, "object %d  INVALID (%s)\n", i, o.GetMessage())
			}
		}
	case *samdv1.IssuedCertificate:
		fmt.Fprintf(w, "serial     %s (CA %s)\nprofile    %s\nsubject    %s/%s/%s\nvalid      %s .. %s\n%s", r.GetSerial(), r.GetCa(), r.GetProfile(),
			r.GetSubject().GetRole(), r.GetSubject().GetOperator(), r.GetSubject().GetDevice(), r.GetNotBefore(), r.GetNotAfter(), r.GetCertificatePem())
	case *samdv1.SignFileResponse:
		fmt.Fprintf(w, "file       %s, %d bytes, SHA-256 %s\nsigned by  serial %s, instance %s, counter %d (%d-byte CMS signature)\n",
			r.GetName(), r.GetSize(), r.GetSha256(), r.GetSignerSerial(), r.GetInstance(), r.GetCounter(), len(r.GetSignature()))
	case *samdv1.VerifyFileResponse:
		if r.GetOk() {
			fmt.Fprintf(w, "%s  ok: sender %s, sequence %d, signer %s/%s serial %s, signed %s by %s #%d\n", r.GetName(), r.GetSender(), r.GetSequence(),
				r.GetSigner().GetOperator(), r.GetSigner().GetDevice(), r.GetSignerSerial(), r.GetSigningTime(), r.GetInstance(), r.GetCounter())
		} else {
			fmt.Fprintf(w, "%s  FAILED %s: %s\n", r.GetName(), r.GetReason(), r.GetDetail())
		}
	default:
		b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(m)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, string(b))
	}
	return nil
}

func methodName(m samdv1.KCVMethod) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(m.String(), "KCV_METHOD_")), "_", "-")
}

func printKeyInfo(w io.Writer, label string, k *samdv1.KeyInfo) {
	fmt.Fprintf(w, "%-10s %s:v%d %s KCV %s (%s)\n", label, k.GetName(), k.GetVersion(), k.GetAlgorithm(), k.GetKcv(), methodName(k.GetKcvMethod()))
}

// printError prints a samd error with its stable code and request id, and
// returns an error so the command exits non-zero.
func printError(w io.Writer, err error, asJSON bool) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	code := ce.Meta().Get(server.ErrorCodeHeader)
	rid := ce.Meta().Get(server.RequestIDHeader)
	if asJSON {
		fmt.Fprintf(w, "{\n  \"error\": {\n    \"code\": %q,\n    \"status\": %q,\n    \"message\": %q,\n    \"request_id\": %q\n  }\n}\n", code, ce.Code().String(), ce.Message(), rid)
	}
	return fmt.Errorf("%s (status %s, request %s)", ce.Message(), ce.Code(), rid)
}

// more runs the value, allowance and policy commands.
func (c *client) more(ctx context.Context, cmd string, args []string) (proto.Message, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: which subcommand?", cmd)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd+" "+sub, flag.ContinueOnError)
	amount := fs.Int64("amount", 0, "")
	currency := fs.String("currency", "NOK", "")
	owner := fs.String("owner", "", "")
	purpose := fs.String("purpose", "load", "")
	seq := fs.Uint64("seq", 0, "")
	record := fs.String("record", "", "")
	device := fs.String("device", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	switch cmd + " " + sub {
	case "value authorize":
		p, ok := map[string]samdv1.Purpose{"load": samdv1.Purpose_PURPOSE_LOAD, "sale": samdv1.Purpose_PURPOSE_SALE, "refund": samdv1.Purpose_PURPOSE_REFUND}[*purpose]
		if !ok {
			return nil, fmt.Errorf("--purpose %q: want load, sale or refund", *purpose)
		}
		res, err := c.val.AuthorizeValue(ctx, connect.NewRequest(&samdv1.AuthorizeValueRequest{Amount: *amount, Currency: *currency, ProductOwner: *owner, Purpose: p}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "value cancel":
		res, err := c.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: *seq}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "value verify":
		var b []byte
		var err error
		if *record == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*record)
		}
		if err != nil {
			return nil, err
		}
		var wrapped samdv1.AuthorizeValueResponse
		var rec samdv1.ValueAuthorization
		if err := protojson.Unmarshal(b, &wrapped); err == nil && wrapped.GetAuthorization() != nil {
			rec = *wrapped.GetAuthorization()
		} else if err := protojson.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("--record: %w", err)
		}
		res, err := c.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: &rec}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "allowance get":
		res, err := c.adm.GetAllowance(ctx, connect.NewRequest(&samdv1.GetAllowanceRequest{Device: *device}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "allowance topup":
		res, err := c.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: *device, Amount: *amount, Currency: *currency}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "allowance reset":
		res, err := c.adm.ResetAllowance(ctx, connect.NewRequest(&samdv1.ResetAllowanceRequest{Device: *device}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	case "policy reload":
		res, err := c.adm.ReloadPolicies(ctx, connect.NewRequest(&samdv1.ReloadPoliciesRequest{}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	return nil, fmt.Errorf("unknown command %s %s", cmd, sub)
}

// sealOrVerify runs the seal and verify commands.
func (c *client) sealOrVerify(ctx context.Context, cmd string, args []string) (proto.Message, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	profile := fs.String("profile", "", "")
	file := fs.String("file", "", "")
	typ := fs.Uint("type", 0, "")
	card := fs.String("card", "", "")
	seq := fs.Uint("seq", 0, "")
	owner := fs.String("owner", "", "")
	data := fs.String("data", "", "")
	macHex := fs.String("mac", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var objs []*samdv1.DataObject
	if *file != "" {
		var b []byte
		var err error
		if *file == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*file)
		}
		if err != nil {
			return nil, err
		}
		// The file is a JSON array of DataObject in protobuf JSON form.
		wrapped := append(append([]byte(`{"objects":`), b...), '}')
		var req samdv1.SealObjectsRequest
		if err := protojson.Unmarshal(wrapped, &req); err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		objs = req.GetObjects()
	} else {
		objs = []*samdv1.DataObject{{Type: uint32(*typ), CardId: *card, Sequence: uint32(*seq), ProductOwner: *owner, Data: *data, Mac: *macHex}}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if cmd == "seal" {
		res, err := c.macs.SealObjects(ctx, connect.NewRequest(&samdv1.SealObjectsRequest{Profile: *profile, Objects: objs}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	res, err := c.macs.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: *profile, Objects: objs}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}
