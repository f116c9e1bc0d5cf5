package main

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/internal/cardsim"
)

const cardUsage = `card commands (samd client [flags] card COMMAND ...):
  begin      --protocol ev2|ev1-iso|ev1-aes|ev1-legacy|ultralight-c --key NAME:vN --uid HEX
             [--aid HEX] [--sysid HEX | --sysid-ascii TEXT] [--key-no N] --challenge HEX
             [--session TOKEN (EV2 NonFirst)] [--single-des]
  finish     --session TOKEN --response HEX
  protect    --session TOKEN --cmd HEX --header HEX [--data HEX] --mode plain|mac|full
  check      --session TOKEN [--status HEX] --data HEX --mode plain|mac|full
             [--expected-length N (EV1 enciphered responses)]
  changekey  --session TOKEN --key-no N --new-key NAME:vN [--old-key NAME:vN] --version N
             (the card's --uid/--aid/--sysid diversify both keys) [--old-version N]
  external   --key NAME:vN --uid ... --challenge HEX
  internal   --key NAME:vN --uid ... --challenge HEX --response HEX
sun commands:
  sun verify --profile NAME --picc HEX [--enc HEX] [--mac-input HEX] --sdmmac HEX
  sun batch  --file MESSAGES.json     (JSON array of {"profile","picc_data","enc_file_data","mac_input","sdmmac"})
demo:
  card-demo  run a whole DESFire EV2 card session against a simulated card, step by step
`

var protocolNames = map[string]samdv1.CardProtocol{
	"ev2": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, "ntag424": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
	"ev1-iso": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_ISO, "ev1-aes": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES,
	"ev1-legacy": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_LEGACY, "ultralight-c": samdv1.CardProtocol_CARD_PROTOCOL_ULTRALIGHT_C,
}

var modeNames = map[string]samdv1.CommMode{"plain": samdv1.CommMode_COMM_MODE_PLAIN, "mac": samdv1.CommMode_COMM_MODE_MAC, "full": samdv1.CommMode_COMM_MODE_FULL}

func hexByte(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 8)
	return uint32(v), err
}

// cardCmd runs the card and sun commands.
func (c *client) cardCmd(ctx context.Context, group string, args []string) (proto.Message, error) {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, cardUsage)
		return nil, fmt.Errorf("%s: which command?", group)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet(group+" "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, cardUsage) }
	protocol := fs.String("protocol", "ev2", "")
	key := fs.String("key", "", "")
	newKey := fs.String("new-key", "", "")
	oldKey := fs.String("old-key", "", "")
	uid := fs.String("uid", "", "")
	aid := fs.String("aid", "", "")
	sysid := fs.String("sysid", "", "")
	sysASCII := fs.String("sysid-ascii", "", "")
	keyNo := fs.Uint("key-no", 0, "")
	version := fs.Uint("version", 0, "")
	oldVersion := fs.Int("old-version", -1, "")
	challenge := fs.String("challenge", "", "")
	response := fs.String("response", "", "")
	session := fs.String("session", "", "")
	singleDES := fs.Bool("single-des", false, "")
	cmdHex := fs.String("cmd", "", "")
	header := fs.String("header", "", "")
	data := fs.String("data", "", "")
	mode := fs.String("mode", "", "")
	status := fs.String("status", "00", "")
	profile := fs.String("profile", "", "")
	picc := fs.String("picc", "", "")
	enc := fs.String("enc", "", "")
	macInput := fs.String("mac-input", "", "")
	sdmmac := fs.String("sdmmac", "", "")
	file := fs.String("file", "", "")
	expected := fs.Uint("expected-length", 0, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *sysASCII != "" {
		*sysid = hex.EncodeToString([]byte(*sysASCII))
	}
	input := &samdv1.DiversificationInput{Uid: *uid, Aid: *aid, SystemIdentifier: *sysid}
	cardKey := func(ref string) (*samdv1.CardKey, error) {
		r, err := parseKeyRef(ref)
		if err != nil {
			return nil, err
		}
		return &samdv1.CardKey{MasterKey: r, Input: input}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	switch group + " " + sub {
	case "card begin":
		p, ok := protocolNames[*protocol]
		if !ok {
			return nil, fmt.Errorf("--protocol %q: want ev2, ev1-iso, ev1-aes, ev1-legacy or ultralight-c", *protocol)
		}
		k, err := cardKey(*key)
		if err != nil {
			return nil, err
		}
		r, err := c.card.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: p, Key: k, KeyNo: uint32(*keyNo), CardChallenge: *challenge, Session: *session, SingleDes: *singleDES}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "card finish":
		r, err := c.card.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: *session, CardResponse: *response}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "card protect":
		cmd, err := hexByte(*cmdHex)
		if err != nil {
			return nil, errors.New("--cmd: one hex byte, e.g. AD")
		}
		r, err := c.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: *session, Command: cmd, Header: *header, Data: *data, Mode: modeNames[*mode]}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "card check":
		st, err := hexByte(*status)
		if err != nil {
			return nil, errors.New("--status: one hex byte, e.g. 00")
		}
		r, err := c.card.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: *session, Status: st, Data: *data, Mode: modeNames[*mode], ExpectedLength: uint32(*expected)}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "card changekey":
		nk, err := cardKey(*newKey)
		if err != nil {
			return nil, err
		}
		req := &samdv1.ChangeKeyRequest{Session: *session, KeyNo: uint32(*keyNo), NewKey: nk, KeyVersion: uint32(*version)}
		if *oldKey != "" {
			if req.OldKey, err = cardKey(*oldKey); err != nil {
				return nil, err
			}
		}
		if *oldVersion >= 0 {
			v := uint32(*oldVersion)
			req.OldKeyVersion = &v
		}
		r, err := c.card.ChangeKey(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "card external", "card internal":
		k, err := cardKey(*key)
		if err != nil {
			return nil, err
		}
		req := connect.NewRequest(&samdv1.ChallengeRequest{Key: k, Challenge: *challenge, Response: *response})
		var r *connect.Response[samdv1.ChallengeResponse]
		if sub == "external" {
			r, err = c.card.ExternalAuthenticate(ctx, req)
		} else {
			r, err = c.card.InternalAuthenticate(ctx, req)
		}
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "sun verify":
		r, err := c.card.VerifySUN(ctx, connect.NewRequest(&samdv1.VerifySUNRequest{Profile: *profile, PiccData: *picc, EncFileData: *enc, MacInput: *macInput, Sdmmac: *sdmmac}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	case "sun batch":
		b, err := readFileOrStdin(*file)
		if err != nil {
			return nil, err
		}
		var req samdv1.VerifySUNBatchRequest
		if err := protojson.Unmarshal(append(append([]byte(`{"messages":`), b...), '}'), &req); err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		r, err := c.card.VerifySUNBatch(ctx, connect.NewRequest(&req))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	fs.Usage()
	return nil, fmt.Errorf("unknown command %s %s", group, sub)
}

func readFileOrStdin(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// cardDemo personalises a simulated DESFire EV2 card with the AN10922
// example key (the key samd derives from an10922/test/example-aes128 for
// the card's UID) and runs a terminal's session through samd, printing
// each step and the samd client command that does it by hand.
func (c *client) cardDemo(ctx context.Context, w io.Writer) error {
	uid, aid, sys := "04782E21801D80", "3042F5", []byte("NXP Abu")
	m := append(append(mustHex(uid), mustHex(aid)...), sys...)
	b, _ := aes.NewCipher(mustHex("00112233445566778899AABBCCDDEEFF"))
	in, _ := derive.RawInput(m)
	kx, err := derive.Diversify(ctx, softCMACer{b}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
	if err != nil {
		return err
	}
	card := &cardsim.EV2{Keys: [][]byte{append([]byte(nil), kx.Reveal()...)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{2: {Data: []byte("7-day ticket, zones 1-2, 2026-12"), Mode: 3}}}
	kx.Wipe()
	base := "samd client card"
	step := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	st, ch := card.Transceive(0x71, []byte{0, 0})
	step("1. terminal -> card   90 71 00 00 02 00 00 00       AuthenticateEV2First, key 0")
	step("   card -> terminal   %X 91 %02X             E(Kx, RndB)", ch, st)
	br, err := c.card.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
		Key:           &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: &samdv1.DiversificationInput{Uid: uid, Aid: aid, SystemIdentifier: hex.EncodeToString(sys)}},
		CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		return err
	}
	step("2. samd               %s begin --protocol ev2 --key an10922/test/example-aes128:v1 \\\n                         --uid %s --aid %s --sysid-ascii %q --challenge %X", base, uid, aid, sys, ch)
	step("   samd -> terminal   pcd_response %s, session <%d-byte sealed token>", br.Msg.GetPcdResponse(), len(br.Msg.GetSession()))
	st, ans := card.Transceive(0xAF, mustHex(br.Msg.GetPcdResponse()))
	step("3. terminal -> card   90 AF 00 00 20 %s 00", br.Msg.GetPcdResponse())
	step("   card -> terminal   %X 91 %02X", ans, st)
	fr, err := c.card.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: br.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		return err
	}
	step("4. samd               %s finish --session $S --response %X", base, ans)
	step("   samd -> terminal   authenticated: TI %s; the session keys stay inside the sealed token", fr.Msg.GetTi())
	pr, err := c.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: fr.Msg.GetSession(), Command: 0xAD, Header: "02000000200000", Mode: samdv1.CommMode_COMM_MODE_MAC}))
	if err != nil {
		return err
	}
	step("5. samd               %s protect --session $S --cmd AD --header 02000000200000 --mode mac", base)
	step("   samd -> terminal   %s                 ReadData file 2 with its MAC", pr.Msg.GetData())
	st, resp := card.Transceive(0xAD, mustHex(pr.Msg.GetData()))
	step("6. terminal -> card   90 AD 00 00 0F %s 00", pr.Msg.GetData())
	step("   card -> terminal   %X 91 %02X   (encrypted file data and MAC)", resp, st)
	cr, err := c.card.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: pr.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	if err != nil {
		return err
	}
	step("7. samd               %s check --session $S --status %02X --data %X --mode full", base, st, resp)
	step("   samd -> terminal   MAC verified, decrypted: %q", mustHex(cr.Msg.GetData()))
	return nil
}
