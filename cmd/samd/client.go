package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// cmdClient runs "samd client": every method of samd, one command each.
func cmdClient(args []string, out io.Writer) error {
	return clientCLI.run(args, out)
}

var clientCLI = &cli{
	name: "client",
	intro: `Calls samd as a terminal, personalisation, back office, clearing house or
officer would. --json prints responses (and errors) as JSON for scripts.
Byte fields that may hold text take hex (--sysid) or text (--sysid-ascii).
`,
	commands: slices.Concat(keyCommands, valueCommands, macCommands, aptaCommands, cardCommands, pkiCommands, fileCommands, negativeListCommands),
}

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
	lists    samdv1connect.ListServiceClient
	health   *connect.Client[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse]
	timeout  time.Duration
	// roots is the CA bundle, cert the client certificate (its chain and
	// key): what a terminal verifies lists with and signs receipts with.
	roots *x509.CertPool
	cert  *tls.Certificate
	// close closes the client's idle connections.
	close func()
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
		lists:    samdv1connect.NewListServiceClient(hc, base, opts...),
		health:   connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](hc, base+"/grpc.health.v1.Health/Check", opts...),
		timeout:  o.timeout,
		roots:    pool,
		cert:     cert0(certs),
		close:    tr.CloseIdleConnections,
	}, nil
}

// cert0 is the client certificate, if there is one.
func cert0(certs []tls.Certificate) *tls.Certificate {
	if len(certs) == 0 {
		return nil
	}
	return &certs[0]
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

// cardInput is a card's AN10922 diversification input: UID ‖ AID ‖
// system identifier.
type cardInput struct {
	uid, aid string
	sysid    *bytesFlag
}

func addCardInput(fs *flag.FlagSet) *cardInput {
	in := &cardInput{}
	fs.StringVar(&in.uid, "uid", "", "the card's UID, in `HEX`")
	fs.StringVar(&in.aid, "aid", "", "the application identifier (AID), in `HEX`")
	in.sysid = addBytes(fs, "sysid", "the system identifier")
	return in
}

// input returns the input once the flags are parsed.
func (in *cardInput) input() (*samdv1.DiversificationInput, error) {
	sys, err := in.sysid.value()
	if err != nil {
		return nil, err
	}
	return &samdv1.DiversificationInput{Uid: in.uid, Aid: in.aid, SystemIdentifier: sys}, nil
}

// key returns the card key that master key ref diversifies for the card.
func (in *cardInput) key(ref string) (*samdv1.CardKey, error) {
	r, err := parseKeyRef(ref)
	if err != nil {
		return nil, err
	}
	i, err := in.input()
	if err != nil {
		return nil, err
	}
	return &samdv1.CardKey{MasterKey: r, Input: i}, nil
}

// keyFlags are the flags of a diversified key: the master key, the card's
// input and the KCV method.
type keyFlags struct {
	key, method string
	in          *cardInput
}

func addKeyFlags(fs *flag.FlagSet) *keyFlags {
	k := &keyFlags{}
	fs.StringVar(&k.key, "key", "", "the diversification master key, `NAME:vN`")
	k.in = addCardInput(fs)
	fs.StringVar(&k.method, "kcv-method", "", "the check value's `METHOD`: cmac-zero or encrypt-zero (default: the key's)")
	return k
}

// args returns the key's arguments once the flags are parsed.
func (k *keyFlags) args() (kcvArgs, error) {
	sys, err := k.in.sysid.value()
	return kcvArgs{key: k.key, uid: k.in.uid, aid: k.in.aid, sysid: sys, method: k.method}, err
}

// wrapMechanisms are --mech's values.
var wrapMechanisms = map[string]samdv1.WrapMechanism{
	"kw": samdv1.WrapMechanism_WRAP_MECHANISM_AES_KW, "kwp": samdv1.WrapMechanism_WRAP_MECHANISM_AES_KWP, "tr31": samdv1.WrapMechanism_WRAP_MECHANISM_TR31,
}

// keyCommands are the diversification service's and the health check.
var keyCommands = []command{
	{name: "kcv", help: "the check value of an AN10922-diversified key", flags: func(fs *flag.FlagSet) runFunc {
		k := addKeyFlags(fs)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			a, err := k.args()
			if err != nil {
				return nil, err
			}
			return c.kcv(ctx, a)
		}
	}},
	{name: "export", help: "a diversified key wrapped under a transport key (personalisation)",
		more: "tr31: a TR-31 key block under a key-block key.", flags: func(fs *flag.FlagSet) runFunc {
			k := addKeyFlags(fs)
			transport := fs.String("transport", "", "the transport (wrapping) key, `NAME:vN`")
			mech := fs.String("mech", "kwp", "the wrapping `MECH`: kw (RFC 3394), kwp (RFC 5649) or tr31")
			desVersion := addOptUint(fs, "des-version", 255, "2TDEA and 3TDEA keys: a DESFire key version to write into the parity bits, `N`")
			return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
				a, err := k.args()
				if err != nil {
					return nil, err
				}
				ref, err := parseKeyRef(a.key)
				if err != nil {
					return nil, err
				}
				kek, err := parseKeyRef(*transport)
				if err != nil {
					return nil, fmt.Errorf("--transport: %w", err)
				}
				m, err := wireMethod(a.method)
				if err != nil {
					return nil, err
				}
				wm, ok := wrapMechanisms[*mech]
				if !ok {
					return nil, fmt.Errorf("--mech %q: want kw, kwp or tr31", *mech)
				}
				return msg(c.div.ExportDiversifiedKey(ctx, connect.NewRequest(&samdv1.ExportDiversifiedKeyRequest{
					MasterKey: ref, TransportKey: kek, KcvMethod: m, Mechanism: wm, DesKeyVersion: desVersion.ptr(),
					Input: &samdv1.DiversificationInput{Uid: a.uid, Aid: a.aid, SystemIdentifier: a.sysid},
				})))
			}
		}},
	{name: "health", help: "grpc.health.v1 check", flags: noFlags(func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
		return msg(c.health.CallUnary(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{})))
	})},
}

var purposes = map[string]samdv1.Purpose{"load": samdv1.Purpose_PURPOSE_LOAD, "sale": samdv1.Purpose_PURPOSE_SALE, "refund": samdv1.Purpose_PURPOSE_REFUND}

// amountFlags registers --amount and --currency.
func amountFlags(fs *flag.FlagSet) (*int64, *string) {
	return fs.Int64("amount", 0, "the amount in the currency's minor units (øre, cents), `MINOR`"),
		fs.String("currency", "NOK", "the ISO 4217 currency, `CODE`")
}

// cardTxFlags registers --card, --tsn and --txtype: the card a value
// authorisation is for, its TSN and the Part 19 transaction type.
func cardTxFlags(fs *flag.FlagSet, withCard bool) (card *string, tsn, txtype *uint) {
	if withCard {
		card = fs.String("card", "", "the card's media serial number (UID), in `HEX`")
	}
	return card, fs.Uint("tsn", 0, "the card's application transaction sequence number at the write, `N`"),
		fs.Uint("txtype", 0, "the Håndbok 206 Part 19 transaction type (§1.3.2: 11 tPurse reload, 3 product sale, …), `N`")
}

// deviceFlag registers --device.
func deviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "", "the device whose allowance it is, `OPERATOR/DEVICE`")
}

// valueCommands are the value service's, the allowances and policies.
var valueCommands = []command{
	{name: "value authorize", help: "authorise value (a load, sale or refund) from this device's allowance", flags: func(fs *flag.FlagSet) runFunc {
		amount, currency := amountFlags(fs)
		owner := fs.String("owner", "", "the product owner the value is for, `OPERATOR`")
		purpose := fs.String("purpose", "load", "the `PURPOSE`: load, sale or refund")
		card, tsn, txtype := cardTxFlags(fs, true)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			p, ok := purposes[*purpose]
			if !ok {
				return nil, fmt.Errorf("--purpose %q: want load, sale or refund", *purpose)
			}
			return msg(c.val.AuthorizeValue(ctx, connect.NewRequest(&samdv1.AuthorizeValueRequest{Amount: *amount, Currency: *currency, ProductOwner: *owner, Purpose: p,
				CardId: *card, Tsn: uint32(*tsn), TransactionType: uint32(*txtype)})))
		}
	}},
	{name: "value cancel", help: "cancel this device's authorisation N (restores its allowance, once; Part 19 §5: the card's current TSN, the same type)", flags: func(fs *flag.FlagSet) runFunc {
		seq := fs.Uint64("seq", 0, "the sequence number of the authorisation, `N`")
		_, tsn, txtype := cardTxFlags(fs, false)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.val.CancelValue(ctx, connect.NewRequest(&samdv1.CancelValueRequest{OriginalSequence: *seq, Tsn: uint32(*tsn), TransactionType: uint32(*txtype)})))
		}
	}},
	{name: "value verify", help: "verify an authorisation record", flags: func(fs *flag.FlagSet) runFunc {
		record := fs.String("record", "", "the record: the JSON \"value authorize --json\" (or a seal's, apta-card load's) printed, or its \"authorization\"; - for stdin (`FILE`)")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			b, err := readFileOrStdin(*record)
			if err != nil {
				return nil, err
			}
			var wrapped samdv1.AuthorizeValueResponse
			var rec samdv1.ValueAuthorization
			// AuthorizeValue's response, or a seal's: both carry the record
			// as "authorization".
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &wrapped); err == nil && wrapped.GetAuthorization() != nil {
				rec = *wrapped.GetAuthorization()
			} else if err := protojson.Unmarshal(b, &rec); err != nil {
				return nil, fmt.Errorf("--record: %w", err)
			}
			return msg(c.val.VerifyValueAuthorization(ctx, connect.NewRequest(&samdv1.VerifyValueAuthorizationRequest{Authorization: &rec})))
		}
	}},
	{name: "allowance get", help: "a device's allowance (admin listener)", flags: func(fs *flag.FlagSet) runFunc {
		device := deviceFlag(fs)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.adm.GetAllowance(ctx, connect.NewRequest(&samdv1.GetAllowanceRequest{Device: *device})))
		}
	}},
	{name: "allowance topup", help: "add to a device's allowance (admin listener; large top-ups: samd admin propose allowance.topup)", flags: func(fs *flag.FlagSet) runFunc {
		device := deviceFlag(fs)
		amount, currency := amountFlags(fs)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: *device, Amount: *amount, Currency: *currency})))
		}
	}},
	{name: "allowance reset", help: "set a device's allowance to zero (admin listener)", flags: func(fs *flag.FlagSet) runFunc {
		device := deviceFlag(fs)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.adm.ResetAllowance(ctx, connect.NewRequest(&samdv1.ResetAllowanceRequest{Device: *device})))
		}
	}},
	{name: "policy reload", help: "refused where officers exist: a scheme-wide act (samd admin propose policy.activate)",
		flags: noFlags(func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.adm.ReloadPolicies(ctx, connect.NewRequest(&samdv1.ReloadPoliciesRequest{})))
		})},
}

// objectFlags are seal's and verify's: one object, or a file of them.
type objectFlags struct {
	profile, file, card, owner, mac string
	typ, seq                        uint
	data, prev                      *bytesFlag
	prevMAC                         string
	prevSeq                         uint
}

func addObjectFlags(fs *flag.FlagSet, withMAC bool) *objectFlags {
	o := &objectFlags{}
	fs.StringVar(&o.profile, "profile", "", "the seal profile, `NAME`")
	fs.StringVar(&o.file, "file", "", "the objects, a JSON array (below; - for stdin), instead of one object's flags (`OBJECTS.json`)")
	fs.UintVar(&o.typ, "type", 0, "the object type, `N`")
	fs.StringVar(&o.card, "card", "", "the card id (UID) the object is written to, in `HEX`")
	fs.UintVar(&o.seq, "seq", 0, "the card's transaction sequence number at the write, `N`")
	fs.StringVar(&o.owner, "owner", "", "the product owner, `ID`")
	o.data = addBytes(fs, "data", "the object")
	if withMAC {
		fs.StringVar(&o.mac, "mac", "", "the object's MAC, in `HEX` (in a file: each object's \"mac\"; APTA profiles check the object's own bits 112-127)")
	} else {
		o.prev = addBytes(fs, "previous", "value-bearing profiles: the object this one replaces, as the card holds it (a balance's baseline)")
		fs.StringVar(&o.prevMAC, "previous-mac", "", "the previous object's MAC under a MAC profile, in `HEX`")
		fs.UintVar(&o.prevSeq, "previous-seq", 0, "the card's transaction sequence number when the previous object was written, `N`")
	}
	return o
}

// objects returns the objects the flags name.
func (o *objectFlags) objects() ([]*samdv1.DataObject, error) {
	if o.file == "" {
		data, err := o.data.value()
		if err != nil {
			return nil, err
		}
		obj := &samdv1.DataObject{Type: uint32(o.typ), CardId: o.card, Sequence: uint32(o.seq), ProductOwner: o.owner, Data: data, Mac: o.mac}
		if o.prev != nil {
			prev, err := o.prev.value()
			if err != nil {
				return nil, err
			}
			if prev != "" {
				obj.Previous = &samdv1.DataObject{Type: obj.Type, CardId: o.card, Sequence: uint32(o.prevSeq), ProductOwner: o.owner, Data: prev, Mac: o.prevMAC}
			}
		}
		return []*samdv1.DataObject{obj}, nil
	}
	var req samdv1.SealObjectsRequest
	if err := readArray(o.file, "objects", &req); err != nil {
		return nil, err
	}
	return req.GetObjects(), nil
}

// readArray reads --file, a JSON array of messages in protobuf JSON form
// (- for stdin), into the repeated field of req.
func readArray(file, field string, req proto.Message) error {
	b, err := readFileOrStdin(file)
	if err != nil {
		return err
	}
	if err := protojson.Unmarshal(append(append([]byte(`{"`+field+`":`), b...), '}'), req); err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	return nil
}

const objectsFile = `OBJECTS.json is a JSON array of {"type","card_id","sequence","product_owner","data"[,"mac"][,"previous":{…}]}.
A value-bearing profile seals value only against --authorization N (an
unspent authorisation of this device) or --authorize (one made with the
seal, from --amount, --currency, --purpose, --tsn and --txtype; its card is
the objects').`

// macCommands are the MAC service's.
var macCommands = []command{
	{name: "seal", help: "seal card data objects: their MACs (APTA: DACs or CRCs) under a seal profile", more: objectsFile, flags: func(fs *flag.FlagSet) runFunc {
		o := addObjectFlags(fs, false)
		v := addValueSealFlags(fs, false)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			objs, err := o.objects()
			if err != nil {
				return nil, err
			}
			req := &samdv1.SealObjectsRequest{Profile: o.profile, Objects: objs}
			if err := v.apply(req, o.owner); err != nil {
				return nil, err
			}
			return msg(c.macs.SealObjects(ctx, connect.NewRequest(req)))
		}
	}},
	{name: "verify", help: "verify card data objects' MACs (exits 1 if one is invalid)", more: objectsFile, flags: func(fs *flag.FlagSet) runFunc {
		o := addObjectFlags(fs, true)
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			objs, err := o.objects()
			if err != nil {
				return nil, err
			}
			return msg(c.macs.VerifyObjects(ctx, connect.NewRequest(&samdv1.VerifyObjectsRequest{Profile: o.profile, Objects: objs})))
		}
	}},
}

// readFileOrStdin reads a file, or standard input for "-".
func readFileOrStdin(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// jsonOut prints responses as JSON with every field, zero values
// included: a balance of 0 is "0", not left out.
var jsonOut = protojson.MarshalOptions{UseProtoNames: true, Multiline: true, Indent: "  ", EmitUnpopulated: true}

// printResponse prints a response for a person, or as JSON.
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
			switch {
			case o.GetCode() != "":
				fmt.Fprintf(w, "object %d  FAILED %s\n", i, o.GetMessage())
			case o.GetSealed() != "":
				fmt.Fprintf(w, "object %d  sealed %s (check value %s in bits 112-127)\n", i, o.GetSealed(), o.GetMac())
			default:
				fmt.Fprintf(w, "object %d  mac %s\n", i, o.GetMac())
			}
		}
		if a := r.GetAuthorization(); a != nil {
			fmt.Fprintf(w, "authorised %s, allowance remaining %d\n", describeAuthorization(a), r.GetAllowanceRemaining())
		}
		if r.GetKey().GetName() != "" {
			printKeyInfo(w, "key", r.GetKey())
		}
	case *samdv1.VerifyValueAuthorizationResponse:
		fmt.Fprintf(w, "valid      %s\n", describeAuthorization(r.GetAuthorization()))
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
	case *samdv1.NextFileNameResponse:
		fmt.Fprintln(w, r.GetName()) // alone, for a shell variable
	case *samdv1.SignFileResponse:
		printSigned(w, r)
	case *samdv1.VerifyFileResponse:
		printVerdict(w, r)
	default:
		b, err := jsonOut.Marshal(m)
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
	reason := ce.Meta().Get(server.ErrorReasonHeader)
	if asJSON {
		fmt.Fprintf(w, "{\n  \"error\": {\n    \"code\": %q,\n    \"reason\": %q,\n    \"status\": %q,\n    \"message\": %q,\n    \"request_id\": %q\n  }\n}\n",
			code, reason, ce.Code().String(), ce.Message(), rid)
	}
	if reason != "" {
		return fmt.Errorf("%s (reason %s, status %s, request %s)", ce.Message(), reason, ce.Code(), rid)
	}
	return fmt.Errorf("%s (status %s, request %s)", ce.Message(), ce.Code(), rid)
}
