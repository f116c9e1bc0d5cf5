package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/value"
)

// valueSealFlags are seal's flags for a value-bearing profile.
type valueSealFlags struct {
	authorization     uint64
	authorize         bool
	amount            *int64
	currency, purpose *string
	tsn, txtype       *uint
}

// addValueSealFlags registers them; authorize is --authorize's default.
func addValueSealFlags(fs *flag.FlagSet, authorize bool) *valueSealFlags {
	v := &valueSealFlags{}
	fs.Uint64Var(&v.authorization, "authorization", 0, "value-bearing profiles: the unspent authorisation `N` of this device that pays for the value")
	fs.BoolVar(&v.authorize, "authorize", authorize, "value-bearing profiles: authorise the value with the seal (--amount, --currency, --purpose, --tsn, --txtype)")
	v.amount, v.currency = amountFlags(fs)
	v.purpose = fs.String("purpose", "load", "with --authorize: the `PURPOSE`, load, sale or refund")
	_, v.tsn, v.txtype = cardTxFlags(fs, false)
	return v
}

// apply puts the value authorisation the flags name into req: an
// existing one (--authorization), or one made with the seal (--authorize).
func (v *valueSealFlags) apply(req *samdv1.SealObjectsRequest, owner string) error {
	req.AuthorizationSequence = v.authorization
	if !v.authorize || v.authorization != 0 {
		return nil
	}
	p, ok := purposes[*v.purpose]
	if !ok {
		return fmt.Errorf("--purpose %q: want load, sale or refund", *v.purpose)
	}
	req.Authorize = &samdv1.AuthorizeValueRequest{Amount: *v.amount, Currency: *v.currency, ProductOwner: owner, Purpose: p,
		Tsn: uint32(*v.tsn), TransactionType: uint32(*v.txtype)}
	return nil
}

// describeAuthorization is one line for a value record.
func describeAuthorization(a *samdv1.ValueAuthorization) string {
	purpose := strings.ToLower(strings.TrimPrefix(a.GetPurpose().String(), "PURPOSE_"))
	s := fmt.Sprintf("#%d of %s/%s: %s %d %s for %s at %s", a.GetSequence(), a.GetOperator(), a.GetDevice(), purpose, a.GetAmount(), a.GetCurrency(),
		a.GetProductOwner(), a.GetTime())
	if a.GetOriginalSequence() != 0 {
		s += fmt.Sprintf(", cancelling #%d", a.GetOriginalSequence())
	}
	if a.GetVersion() < 2 {
		return s + " (record version 1: no card)"
	}
	t := value.TxType(min(a.GetTransactionType(), 255))
	return s + fmt.Sprintf(", card %s TSN %d, Part 19 type %d (%s)", a.GetCardId(), a.GetTsn(), t, t.Name())
}

// aptaCurrencies are RtsCurrencyCode's values (Part II Table 17), as ISO
// 4217 codes.
var aptaCurrencies = [8]string{1: "USD", 2: "CAD", 3: "MXN", 4: "GBP", 5: "JPY", 6: "EUR"}

// aptaCommands keep a simulated APTA card: a JSON array of its objects,
// in the form seal and verify --file take.
var aptaCommands = []command{
	{name: "apta-card new", help: "a simulated APTA card (a file of its objects) with an empty T-purse", flags: func(fs *flag.FlagSet) runFunc {
		file := fs.String("file", "", "the card's `FILE` (written)")
		uid := fs.String("uid", "", "the card's UID, in `HEX`")
		owner := fs.String("owner", "", "the T-purse's product owner, `ID`")
		currency := fs.String("currency", "USD", "the purse's currency: USD, CAD, MXN, GBP, JPY or EUR (Part II Table 17)")
		return func(_ context.Context, _ *client, inv *invocation) (proto.Message, error) {
			if _, err := hex.DecodeString(*uid); err != nil || *uid == "" || *file == "" {
				return nil, errors.New("--file and --uid (hex) are required")
			}
			code := uint64(slices.Index(aptaCurrencies[:], *currency))
			if *currency == "" || code > 6 {
				return nil, fmt.Errorf("--currency %q: not an APTA currency", *currency)
			}
			purse := make([]byte, apta.Size)
			_ = apta.PutUint(purse, 75, 3, code) // RtsCurrencyCode
			card := []*samdv1.DataObject{{Type: 17, CardId: strings.ToUpper(*uid), ProductOwner: *owner, Data: strings.ToUpper(hex.EncodeToString(purse))}}
			return nil, writeCard(*file, card, inv.out)
		}
	}},
	{name: "apta-card load", help: "load value onto the simulated card's T-purse through samd: the new SV&TPPO and its A&DVO, sealed", flags: func(fs *flag.FlagSet) runFunc {
		file := fs.String("file", "", "the card's `FILE` (read, and written back after the seal)")
		profile := fs.String("profile", "apta-tpurse", "the value-bearing seal profile, `NAME`")
		v := addValueSealFlags(fs, true)
		return func(ctx context.Context, c *client, inv *invocation) (proto.Message, error) {
			card, err := readCard(*file)
			if err != nil {
				return nil, err
			}
			req, err := loadRequest(card, *profile, *v.amount)
			if err != nil {
				return nil, err
			}
			if *v.tsn == 0 {
				seq, _ := objectUint(req.Objects[0].GetData(), 82, 7) // RtsSVTransSeqNumber, after the load
				*v.tsn = uint(seq)
			}
			if *v.txtype == 0 {
				*v.txtype = 11 // CSC tPurse Product Reload
			}
			given := false
			fs.Visit(func(f *flag.Flag) { given = given || f.Name == "currency" })
			if !given { // the purse's own currency (RtsCurrencyCode)
				code, _ := objectUint(card[0].GetData(), 75, 3)
				*v.currency = aptaCurrencies[code]
			}
			if err := v.apply(req, card[0].GetProductOwner()); err != nil {
				return nil, err
			}
			res, err := c.macs.SealObjects(ctx, connect.NewRequest(req))
			if err != nil {
				return nil, err
			}
			for i, r := range res.Msg.GetResults() {
				req.Objects[i].Data = r.GetSealed()
				req.Objects[i].Previous = nil
			}
			if err := writeCard(*file, mergeCard(card, req.Objects), io.Discard); err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
	}},
	{name: "apta-card show", help: "the simulated card's objects: types, amounts and check values (read locally)", flags: func(fs *flag.FlagSet) runFunc {
		file := fs.String("file", "", "the card's `FILE`")
		return func(_ context.Context, _ *client, inv *invocation) (proto.Message, error) {
			card, err := readCard(*file)
			if err != nil {
				return nil, err
			}
			for _, o := range card {
				fmt.Fprintln(inv.out, describeObject(o))
			}
			return nil, nil
		}
	}},
}

// loadRequest builds the seal of a T-purse load of amount on the card:
// the SV&TPPO with its balance raised and RtsSVTransSeqNumber advanced
// (the card's purse as its previous object, the baseline samd verifies),
// and an A&DVO recording the amount added.
func loadRequest(card []*samdv1.DataObject, profile string, amount int64) (*samdv1.SealObjectsRequest, error) {
	if amount <= 0 {
		return nil, errors.New("--amount: a positive number of the purse's units")
	}
	purse := card[0]
	old, err := hex.DecodeString(purse.GetData())
	if err != nil || len(old) != apta.Size {
		return nil, errors.New("the card's first object is not a 16-byte SV&TPPO")
	}
	sv, _ := apta.TypeByID(17)
	bal, _ := sv.Value()
	cur, err := bal.Amount(old)
	if err != nil {
		return nil, err
	}
	next := append([]byte(nil), old...)
	if err := bal.PutAmount(next, cur+amount); err != nil {
		return nil, err
	}
	seq, _ := apta.Uint(old, 82, 7)
	_ = apta.PutUint(next, 82, 7, seq%127+1)
	newPurse := &samdv1.DataObject{Type: 17, CardId: purse.GetCardId(), ProductOwner: purse.GetProductOwner(), Data: strings.ToUpper(hex.EncodeToString(next))}
	if cur != 0 || seq != 0 {
		newPurse.Previous = purse
	}
	adv := make([]byte, apta.Size)
	advType, _ := apta.TypeByID(8)
	field, _ := advType.Value()
	if err := field.PutAmount(adv, amount); err != nil {
		return nil, err
	}
	_ = apta.PutUint(adv, 2, 4, 1) // RtsLoadType 1
	advo := &samdv1.DataObject{Type: 8, CardId: purse.GetCardId(), ProductOwner: purse.GetProductOwner(), Data: strings.ToUpper(hex.EncodeToString(adv))}
	return &samdv1.SealObjectsRequest{Profile: profile, Objects: []*samdv1.DataObject{newPurse, advo}}, nil
}

// mergeCard replaces the card's objects of each type written.
func mergeCard(card, written []*samdv1.DataObject) []*samdv1.DataObject {
	out := append([]*samdv1.DataObject(nil), card...)
	for _, w := range written {
		found := false
		for i, o := range out {
			if o.GetType() == w.GetType() {
				out[i], found = w, true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// describeObject is one line for an APTA object on the card.
func describeObject(o *samdv1.DataObject) string {
	b, _ := hex.DecodeString(o.GetData())
	t, err := apta.TypeByID(uint8(min(o.GetType(), 255)))
	if err != nil || len(b) < apta.Size {
		return fmt.Sprintf("type %d  %s", o.GetType(), o.GetData())
	}
	s := fmt.Sprintf("%-8s %s", t.Name(), o.GetData())
	if f, ok := t.Value(); ok {
		if v, err := f.Amount(b); err == nil {
			s += fmt.Sprintf("  %s %d", f.Name(), v)
		}
	}
	if t.ID() == 17 {
		seq, _ := apta.Uint(b, 82, 7)
		s += fmt.Sprintf(", RtsSVTransSeqNumber %d", seq)
	}
	check, _ := apta.Uint(b, apta.CheckOffset, apta.CheckWidth)
	return s + fmt.Sprintf("  bits 112-127 %04X", check)
}

func objectUint(h string, offset, width int) (uint64, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return 0, err
	}
	return apta.Uint(b, offset, width)
}

func readCard(file string) ([]*samdv1.DataObject, error) {
	if file == "" {
		return nil, errors.New("--file: the card's file is required")
	}
	var req samdv1.SealObjectsRequest
	if err := readArray(file, "objects", &req); err != nil {
		return nil, err
	}
	if len(req.GetObjects()) == 0 || req.GetObjects()[0].GetType() != 17 {
		return nil, fmt.Errorf("%s: not a simulated APTA card (its first object is its SV&TPPO)", file)
	}
	return req.GetObjects(), nil
}

// writeCard writes the card's objects as a JSON array, in the form
// seal and verify --file read.
func writeCard(file string, card []*samdv1.DataObject, out io.Writer) error {
	var b strings.Builder
	b.WriteString("[\n")
	for i, o := range card {
		j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(o)
		if err != nil {
			return err
		}
		b.WriteString("  ")
		b.Write(j)
		if i < len(card)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s\n", file)
	return nil
}
