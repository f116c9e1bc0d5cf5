package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

var protocolNames = map[string]samdv1.CardProtocol{
	"ev2": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, "ntag424": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
	"ev1-iso": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_ISO, "ev1-aes": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_AES,
	"ev1-legacy": samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV1_LEGACY, "ultralight-c": samdv1.CardProtocol_CARD_PROTOCOL_ULTRALIGHT_C,
	"iso7816": samdv1.CardProtocol_CARD_PROTOCOL_ISO7816,
}

var modeNames = map[string]samdv1.CommMode{"plain": samdv1.CommMode_COMM_MODE_PLAIN, "mac": samdv1.CommMode_COMM_MODE_MAC, "full": samdv1.CommMode_COMM_MODE_FULL}

func hexByte(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 8)
	return uint32(v), err
}

// sessionFlag registers --session.
func sessionFlag(fs *flag.FlagSet) *string {
	return fs.String("session", "", "the session token the previous step printed, `TOKEN`")
}

// modeFlag registers --mode.
func modeFlag(fs *flag.FlagSet) *string {
	return fs.String("mode", "", "the communication `MODE`: plain, mac or full")
}

// cardCommands are the card service's: card sessions, SUN, and the demo.
var cardCommands = []command{
	{name: "card begin", help: "begin a card authentication: samd's answer to the card's challenge", flags: func(fs *flag.FlagSet) runFunc {
		protocol := fs.String("protocol", "ev2", "the card's `PROTOCOL`: ev2 (also ntag424), ev1-iso, ev1-aes, ev1-legacy, ultralight-c or iso7816")
		key := fs.String("key", "", "the master key of the card key, `NAME:vN`")
		in := addCardInput(fs)
		keyNo := fs.Uint("key-no", 0, "the card key's number, `N`")
		challenge := fs.String("challenge", "", "the card's challenge (iso7816: its GET CHALLENGE answer), in `HEX`")
		session := fs.String("session", "", "an authenticated session, for EV2 AuthenticateEV2NonFirst, `TOKEN`")
		singleDES := fs.Bool("single-des", false, "EV1 ISO: the key is single DES (a 2TDEA key with equal halves)")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			p, ok := protocolNames[*protocol]
			if !ok {
				return nil, fmt.Errorf("--protocol %q: want ev2, ev1-iso, ev1-aes, ev1-legacy, ultralight-c or iso7816", *protocol)
			}
			k, err := in.key(*key)
			if err != nil {
				return nil, err
			}
			return msg(c.card.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: p, Key: k, KeyNo: uint32(*keyNo), CardChallenge: *challenge, Session: *session, SingleDes: *singleDES})))
		}
	}},
	{name: "card finish", help: "finish a card authentication: check the card's answer", flags: func(fs *flag.FlagSet) runFunc {
		session := sessionFlag(fs)
		response := fs.String("response", "", "the card's response (iso7816: the whole response APDU), in `HEX`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.card.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: *session, CardResponse: *response})))
		}
	}},
	{name: "card protect", help: "protect a card command (MAC or encipher it) in a session", flags: func(fs *flag.FlagSet) runFunc {
		session := sessionFlag(fs)
		cmdHex := fs.String("cmd", "", "the command code, one byte in `HEX`, e.g. AD")
		header := fs.String("header", "", "the command header, in `HEX`")
		data := addBytes(fs, "data", "the command data")
		mode := modeFlag(fs)
		valueAuth := fs.Uint64("value-authorization", 0, "Credit (0C) and LimitedCredit (1C): the unspent value authorisation `N` that pays for the command's value")
		apdu := fs.String("apdu", "", "iso7816 sessions, in place of the others: the plain command APDU, in `HEX`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			if *apdu != "" {
				return msg(c.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: *session, Apdu: *apdu})))
			}
			cmd, err := hexByte(*cmdHex)
			if err != nil {
				return nil, errors.New("--cmd: one hex byte, e.g. AD")
			}
			d, err := data.value()
			if err != nil {
				return nil, err
			}
			return msg(c.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: *session, Command: cmd, Header: *header, Data: d, Mode: modeNames[*mode],
				ValueAuthorization: *valueAuth})))
		}
	}},
	{name: "card check", help: "check (and decipher) a card's response in a session", flags: func(fs *flag.FlagSet) runFunc {
		session := sessionFlag(fs)
		status := fs.String("status", "00", "the card's status byte, in `HEX`")
		data := fs.String("data", "", "the response data, in `HEX`")
		mode := modeFlag(fs)
		expected := fs.Uint("expected-length", 0, "EV1 FULL mode: how many data bytes the enciphered response carries, `N`")
		apdu := fs.String("apdu", "", "iso7816 sessions, in place of the others: the card's whole response APDU, in `HEX`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			if *apdu != "" {
				return msg(c.card.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: *session, Apdu: *apdu})))
			}
			st, err := hexByte(*status)
			if err != nil {
				return nil, errors.New("--status: one hex byte, e.g. 00")
			}
			return msg(c.card.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: *session, Status: st, Data: *data, Mode: modeNames[*mode], ExpectedLength: uint32(*expected)})))
		}
	}},
	{name: "card changekey", help: "the ChangeKey cryptogram: samd diversifies both keys (personalisation)",
		more: "The card's --uid, --aid and --sysid diversify both the new and the old key.", flags: func(fs *flag.FlagSet) runFunc {
			session := sessionFlag(fs)
			keyNo := fs.Uint("key-no", 0, "the number of the key to change, `N`")
			newKey := fs.String("new-key", "", "the master key of the new card key, `NAME:vN`")
			oldKey := fs.String("old-key", "", "the master key of the old card key, when it is not the session's key, `NAME:vN`")
			version := fs.Uint("version", 0, "the new key's version, `N`")
			oldVersion := addOptUint(fs, "old-version", 255, "EV1 DES keys: the old key's version (its parity bits), `N`")
			in := addCardInput(fs)
			return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
				nk, err := in.key(*newKey)
				if err != nil {
					return nil, err
				}
				req := &samdv1.ChangeKeyRequest{Session: *session, KeyNo: uint32(*keyNo), NewKey: nk, KeyVersion: uint32(*version), OldKeyVersion: oldVersion.ptr()}
				if *oldKey != "" {
					if req.OldKey, err = in.key(*oldKey); err != nil {
						return nil, err
					}
				}
				return msg(c.card.ChangeKey(ctx, connect.NewRequest(req)))
			}
		}},
	{name: "sun verify", help: "verify an NTAG 424 DNA SUN message", flags: func(fs *flag.FlagSet) runFunc {
		profile := fs.String("profile", "", "the SUN profile, `NAME`")
		picc := fs.String("picc", "", "the encrypted PICC data, in `HEX`")
		enc := fs.String("enc", "", "the encrypted file data (SDMENCFileData), in `HEX`")
		macInput := addBytes(fs, "mac-input", "the exact bytes the SDMMAC covers")
		sdmmac := fs.String("sdmmac", "", "the SDMMAC, in `HEX`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			in, err := macInput.value()
			if err != nil {
				return nil, err
			}
			return msg(c.card.VerifySUN(ctx, connect.NewRequest(&samdv1.VerifySUNRequest{Profile: *profile, PiccData: *picc, EncFileData: *enc, MacInput: in, Sdmmac: *sdmmac})))
		}
	}},
	{name: "sun batch", help: "verify SUN messages in one call",
		more: `MESSAGES.json is a JSON array of {"profile","picc_data","enc_file_data","mac_input","sdmmac"}.`, flags: func(fs *flag.FlagSet) runFunc {
			file := fs.String("file", "", "the messages, a JSON array (below); - for stdin (`MESSAGES.json`)")
			return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
				var req samdv1.VerifySUNBatchRequest
				if err := readArray(*file, "messages", &req); err != nil {
					return nil, err
				}
				return msg(c.card.VerifySUNBatch(ctx, connect.NewRequest(&req)))
			}
		}},
	{name: "card-demo", help: "a whole card session against a simulated card, step by step", flags: func(fs *flag.FlagSet) runFunc {
		card := fs.String("card", "ev2", "the simulated `CARD`: ev2 (DESFire EV2) or iso7816 (ICAO 9303-11 Appendix D's card)")
		unary := fs.Bool("unary", false, "one call per step with a sealed session token (card begin, finish, protect, check), instead of one stream for the tap")
		return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			switch {
			case *card == "ev2" && *unary:
				return nil, c.cardDemo(ctx, in.out)
			case *card == "ev2":
				return nil, c.cardDemoStream(ctx, in.out)
			case *card == "iso7816" && *unary:
				return nil, c.isoDemo(ctx, in.out)
			case *card == "iso7816":
				return nil, c.isoDemoStream(ctx, in.out)
			}
			return nil, fmt.Errorf("--card %q: want ev2 or iso7816", *card)
		}
	}},
}

// cardDemo personalises a simulated DESFire EV2 card with the AN10922
// example key (the key samd derives from an10922/test/example-aes128 for
// the card's UID) and runs a terminal's session through samd's unary
// calls, printing each step and the samd client command that does it by
// hand.
func (c *client) cardDemo(ctx context.Context, w io.Writer) error {
	uid, aid, sys := "04782E21801D80", "3042F5", []byte("NXP Abu")
	card, err := demoEV2Card(ctx, uid, aid, sys)
	if err != nil {
		return err
	}
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
