package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
)

const listMore = `KIND is card-hotlist, application-blacklist, product-blacklist or action-list.
ACTION is block-permanent (APTA status 1: the card's issuer, with list.block-permanent),
block (APTA 2), unblock (APTA 0, action lists) or scheme-128 .. scheme-255 (action lists).
ENTRIES.json is a JSON array of {"card","target","action","reason","effective","data"}.`

// listFlags are the list a command names.
type listFlags struct{ kind, owner string }

func addListFlags(fs *flag.FlagSet) *listFlags {
	l := &listFlags{}
	fs.StringVar(&l.kind, "kind", "card-hotlist", "the list's `KIND`")
	fs.StringVar(&l.owner, "owner", "", "the list's owner, an operator `ID` (default: your certificate's operator)")
	return l
}

// resolve returns the kind and the owner, the client certificate's
// operator when none is named.
func (l *listFlags) resolve(c *client) (lists.Kind, string, error) {
	kind, err := lists.ParseKind(l.kind)
	if err != nil {
		return 0, "", fmt.Errorf("--kind: %w", err)
	}
	if l.owner != "" {
		return kind, l.owner, nil
	}
	p, err := c.principal()
	if err != nil {
		return 0, "", fmt.Errorf("--owner: %w", err)
	}
	return kind, p.Operator, nil
}

// principal is the identity the client certificate names.
func (c *client) principal() (identity.Principal, error) {
	chain, _, err := c.chain()
	if err != nil {
		return identity.Principal{}, err
	}
	return identity.FromCertificate(chain[0])
}

// chain is the client certificate with the certificates after it in its
// file, and its key.
func (c *client) chain() ([]*x509.Certificate, crypto.Signer, error) {
	if c.cert == nil || len(c.cert.Certificate) == 0 {
		return nil, nil, errors.New("no client certificate (--cert, --key or --dev)")
	}
	var out []*x509.Certificate
	for _, der := range c.cert.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, cert)
	}
	key, ok := c.cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the client key cannot sign")
	}
	return out, key, nil
}

// entryFlags are one entry's flags, or a file of entries.
type entryFlags struct {
	card, target, action, reason, effective, data, file string
}

func addEntryFlags(fs *flag.FlagSet, put bool) *entryFlags {
	e := &entryFlags{}
	fs.StringVar(&e.card, "card", "", "the card id (UID, media serial number), in `HEX`")
	fs.StringVar(&e.target, "target", "", "the application or product id, in `HEX` (blacklists; action lists optionally)")
	fs.StringVar(&e.file, "file", "", "the entries, a JSON array (below; - for stdin), instead of one entry's flags (`ENTRIES.json`)")
	if put {
		fs.StringVar(&e.action, "action", "block", "the `ACTION`")
		fs.StringVar(&e.reason, "reason", "unspecified", "the `REASON`: unspecified, lost, stolen, corrupted, payment-abuse or a number to 65535")
		fs.StringVar(&e.effective, "effective", "", "when the entry applies from, RFC 3339 `TIME` (default: the list's validity)")
		fs.StringVar(&e.data, "data", "", "a scheme-defined action's parameters, in `HEX`")
	}
	return e
}

var reasonCodes = map[string]lists.ReasonCode{"unspecified": lists.ReasonUnspecified, "lost": lists.ReasonLost, "stolen": lists.ReasonStolen,
	"corrupted": lists.ReasonCorrupted, "payment-abuse": lists.ReasonPaymentAbuse}

// entries returns the entries the flags name.
func (e *entryFlags) entries() ([]*samdv1.ListEntry, error) {
	if e.file != "" {
		var req samdv1.ChangeListRequest
		if err := readArray(e.file, "entries", &req); err != nil {
			return nil, err
		}
		return req.GetEntries(), nil
	}
	out := &samdv1.ListEntry{Card: e.card, Target: e.target, Action: e.action, Effective: e.effective, Data: e.data}
	if e.reason != "" {
		r, ok := reasonCodes[e.reason]
		if !ok {
			n, err := strconv.ParseUint(e.reason, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("--reason %q: a name or a number to 65535", e.reason)
			}
			r = lists.ReasonCode(n)
		}
		out.Reason = uint32(r)
	}
	return []*samdv1.ListEntry{out}, nil
}

// negativeListCommands are the negative lists' (README "Negative lists").
var negativeListCommands = []command{
	{name: "list add", help: "put entries on a list of your operator's (back office, officer); samd builds the next version in the background", more: listMore,
		flags: func(fs *flag.FlagSet) runFunc {
			l, e := addListFlags(fs), addEntryFlags(fs, true)
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				es, err := e.entries()
				if err != nil {
					return nil, err
				}
				return changed(in)(c.lists.AddEntries(ctx, connect.NewRequest(&samdv1.ChangeListRequest{Owner: l.owner, Kind: l.kind, Entries: es})))
			}
		}},
	{name: "list remove", help: "take entries off a list of your operator's (back office, officer)", more: listMore,
		flags: func(fs *flag.FlagSet) runFunc {
			l, e := addListFlags(fs), addEntryFlags(fs, false)
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				es, err := e.entries()
				if err != nil {
					return nil, err
				}
				return changed(in)(c.lists.RemoveEntries(ctx, connect.NewRequest(&samdv1.ChangeListRequest{Owner: l.owner, Kind: l.kind, Entries: es})))
			}
		}},
	{name: "list fetch", help: "the newest version of a list, whole or as the delta from the one you hold: writes DIR/<kind>-<owner>-[<held>-]<version>.bin and .p7s",
		more: listMore, timeout: fileTimeout, flags: func(fs *flag.FlagSet) runFunc {
			l := addListFlags(fs)
			held := fs.Uint64("held", 0, "the version you hold, `N` (0: none: the whole list)")
			dir := fs.String("dir", ".", "where to write the document and its signature, `DIR`")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				return c.fetchList(ctx, l, *held, *dir, in)
			}
		}},
	{name: "list verify", args: "FILE.bin", help: "verify a list or delta offline with the CA bundle, as a terminal does (exits 1 with the reason if refused)",
		more: "--apply HELD.bin merges a verified delta into the full list you hold and writes the new full list (--out).",
		flags: func(fs *flag.FlagSet) runFunc {
			l := addListFlags(fs)
			sig := fs.String("sig", "", "the detached signature, `FILE.p7s` (default: FILE.p7s beside FILE.bin)")
			held := fs.Uint64("held", 0, "the version you hold, `N`: a full list must be newer, a delta must start there")
			latest := fs.Uint64("latest", 0, "the newest version you know exists, `N`: an older one is refused as stale")
			apply := fs.String("apply", "", "the full list you hold, `HELD.bin`, to apply a delta to (sets --held)")
			out := fs.String("out", "", "with --apply, write the new full list to `FILE` (default: its name beside FILE.bin)")
			var crls stringsFlag
			fs.Var(&crls, "crl", "CRLs to check the signer's chain against, `FILE` (PEM or DER; repeat or comma-separate): a revoked signer is refused (revoked)")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				return nil, c.verifyList(l, in.args[0], *sig, *held, *latest, *apply, *out, crls, in)
			}
		}},
	{name: "list show", args: "FILE.bin", help: "print a list or delta document: its header, its entries or changes, its digests",
		flags: noFlags(func(_ context.Context, _ *client, in *invocation) (proto.Message, error) {
			return nil, showList(in.args[0], in.out, in.json)
		})},
	{name: "list ack", args: "FILE.bin", help: "acknowledge the version FILE.bin gives, with a receipt your certificate signs (terminal, back office, clearing house)",
		flags: func(fs *flag.FlagSet) runFunc {
			out := fs.String("out", "", "also write the receipt to `FILE` and its signature to FILE.p7s")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				return c.ackList(ctx, in.args[0], *out)
			}
		}},
	{name: "list status", help: "where your operator's list stands: its newest version, and who has not acknowledged it since when (back office, officer)",
		more: listMore, flags: func(fs *flag.FlagSet) runFunc {
			l := addListFlags(fs)
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				return printed(in, printListStatus)(c.lists.ListStatus(ctx, connect.NewRequest(&samdv1.ListStatusRequest{Owner: l.owner, Kind: l.kind})))
			}
		}},
}

// changed prints a change's answer: the changes waiting for the next
// version, which samd builds in the background.
func changed(in *invocation) func(*connect.Response[samdv1.ChangeListResponse], error) (proto.Message, error) {
	return func(r *connect.Response[samdv1.ChangeListResponse], err error) (proto.Message, error) {
		if err != nil || in.json {
			return msg(r, err)
		}
		m := r.Msg
		published := "none yet"
		if m.GetPublishedVersion() > 0 {
			published = strconv.FormatUint(m.GetPublishedVersion(), 10)
		}
		fmt.Fprintf(in.out, "%s/%s  changes waiting for the next version (built in the background): %d; newest version published: %s\n",
			m.GetKind(), m.GetOwner(), m.GetPending(), published)
		return nil, nil
	}
}

// docName is a document's file name: <kind>-<owner>-[<base>-]<version>,
// ':' in the owner id as '_'.
func docName(h lists.Header) string {
	return strings.NewReplacer("/", "-", ":", "_").Replace(h.Name())
}

// fetchList streams a list's document to a file in dir (written aside,
// then renamed) and its signature beside it.
func (c *client) fetchList(ctx context.Context, l *listFlags, held uint64, dir string, in *invocation) (proto.Message, error) {
	kind, owner, err := l.resolve(c)
	if err != nil {
		return nil, err
	}
	stream, err := c.lists.FetchList(ctx, connect.NewRequest(&samdv1.FetchListRequest{Owner: owner, Kind: kind.String(), HeldVersion: held}))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("samd sent nothing")
	}
	first := proto.Clone(stream.Msg()).(*samdv1.FetchListResponse)
	h := lists.Header{Kind: kind, Owner: owner, Version: first.GetVersion(), Base: first.GetBaseVersion()}
	if first.GetUpToDate() {
		if !in.json {
			fmt.Fprintf(in.out, "%s  up to date: version %d is the newest\n", h.Name(), h.Version)
			return nil, nil
		}
		return first, nil
	}
	path := filepath.Join(dir, docName(h)+".bin")
	f, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	sum := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(f, sum))
	var n int64
	for chunk := first.GetChunk(); ; chunk = stream.Msg().GetChunk() {
		k, _ := w.Write(chunk)
		n += int64(k)
		if !stream.Receive() {
			break
		}
	}
	if err := stream.Err(); err != nil {
		f.Close()
		return nil, err
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return nil, err
	}
	if got := strings.ToUpper(hex.EncodeToString(sum.Sum(nil))); n != int64(first.GetSize()) || got != first.GetSha256() {
		return nil, fmt.Errorf("%s arrived as %d bytes with SHA-256 %s, not %d bytes with %s", h.Name(), n, got, first.GetSize(), first.GetSha256())
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return nil, err
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".bin")+".p7s", first.GetSignature(), 0o644); err != nil {
		return nil, err
	}
	first.Chunk = nil
	if in.json {
		return first, nil
	}
	what := "full list, " + strconv.FormatUint(first.GetRecords(), 10) + " entries"
	if h.Delta() {
		what = fmt.Sprintf("delta from version %d, %d changes", h.Base, first.GetRecords())
	}
	fmt.Fprintf(in.out, "%s  %s, %d bytes, SHA-256 %s\n  valid %s until %s; list digest %s\n  wrote %s and %s.p7s\n", h.Name(), what, n, first.GetSha256(),
		first.GetValidFrom(), first.GetValidUntil(), first.GetListDigest(), path, strings.TrimSuffix(path, ".bin"))
	return nil, nil
}

// listVerdict is what list verify reports.
type listVerdict struct {
	File       string `json:"file"`
	OK         bool   `json:"ok"`
	Reason     string `json:"reason,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Name       string `json:"name,omitempty"`
	Records    uint64 `json:"records"`
	Signer     string `json:"signer,omitempty"`
	Serial     string `json:"signer_serial,omitempty"`
	Issued     string `json:"issued,omitempty"`
	ValidUntil string `json:"valid_until,omitempty"`
	ListDigest string `json:"list_digest,omitempty"`
	Applied    string `json:"applied,omitempty"`
}

// verifyList verifies a document as a terminal does, with the CA bundle
// (and the CRLs given) and nothing of samd's, and with --apply merges a
// delta into the held list (the new list written aside, then renamed,
// only if the delta read for the merge is the one verified).
func (c *client) verifyList(l *listFlags, file, sigFile string, held, latest uint64, apply, out string, crlFiles []string, in *invocation) error {
	kind, owner, err := l.resolve(c)
	if err != nil {
		return err
	}
	if sigFile == "" {
		sigFile = strings.TrimSuffix(file, ".bin") + ".p7s"
	}
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		return err
	}
	crls, err := readListCRLs(crlFiles)
	if err != nil {
		return err
	}
	now := time.Now()
	opts := lists.VerifyOptions{Roots: c.roots, Owner: owner, Kind: kind, Held: held, Latest: latest, Now: now}
	if len(crls) > 0 {
		opts.Revoked = crls.revoked(now)
	}
	if apply != "" {
		h, tr, err := readTrailer(apply)
		if err != nil {
			return fmt.Errorf("--apply: %w", err)
		}
		opts.Held, opts.HeldDigest = h.Version, tr.List
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	v, verr := lists.Verify(bufio.NewReader(f), sig, opts)
	f.Close()
	res := listVerdict{File: file, OK: verr == nil}
	switch {
	case lists.ReasonOf(verr) != lists.ReasonUnknown:
		var le *lists.Error
		errors.As(verr, &le)
		res.Reason, res.Detail = le.Reason.String(), le.Detail
	case verr != nil:
		return verr
	default:
		res.Name, res.Records, res.ListDigest = v.Header.Name(), v.Trailer.Records, v.Trailer.List.String()
		res.Issued, res.ValidUntil = v.Header.Issued.Format(time.RFC3339), v.Header.ValidUntil.Format(time.RFC3339)
		res.Serial = strings.ToUpper(v.Signer.SerialNumber.Text(16))
		if p, err := identity.FromCertificate(v.Signer); err == nil {
			res.Signer = p.Operator + "/" + p.Device
		}
		if apply != "" && v.Header.Delta() {
			if out == "" {
				h := v.Header
				h.Base = 0
				out = filepath.Join(filepath.Dir(file), docName(h)+".bin")
			}
			switch err := applyDelta(apply, file, v.Header, v.SHA256, out); {
			case lists.ReasonOf(err) != lists.ReasonUnknown:
				var le *lists.Error
				errors.As(err, &le)
				res.OK, res.Reason, res.Detail = false, le.Reason.String(), le.Detail
			case err != nil:
				return err
			default:
				res.Applied = out
			}
		}
	}
	if in.json {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(in.out, string(b))
	} else if res.OK {
		fmt.Fprintf(in.out, "%s  ok: %s, %d records, signer %s serial %s, issued %s, valid until %s, list digest %s\n", file, res.Name, res.Records,
			res.Signer, res.Serial, res.Issued, res.ValidUntil, res.ListDigest)
		if res.Applied != "" {
			fmt.Fprintf(in.out, "  applied to %s: wrote %s\n", apply, res.Applied)
		}
	} else {
		fmt.Fprintf(in.out, "%s  FAILED %s: %s\n", file, res.Reason, res.Detail)
	}
	if !res.OK {
		return fmt.Errorf("%s was refused: %s", file, res.Reason)
	}
	return nil
}

// readTrailer reads a document's header and trailer.
func readTrailer(path string) (lists.Header, lists.Trailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return lists.Header{}, lists.Trailer{}, err
	}
	defer f.Close()
	d, err := lists.NewDecoder(bufio.NewReader(f))
	if err != nil {
		return lists.Header{}, lists.Trailer{}, err
	}
	for _, err := range d.Changes() {
		if err != nil {
			return lists.Header{}, lists.Trailer{}, err
		}
	}
	tr, err := d.Trailer()
	return d.Header(), tr, err
}

// applyDelta merges the delta into the held full list (lists.Apply
// checks both list digests) and writes the result as the new version's
// full list; the result is kept only if the merge ends without error and
// the delta it read is, byte for byte, the one verified (its SHA-256 is
// verified; else the reason is tampered: the file changed after it was
// verified).
func applyDelta(heldPath, deltaPath string, h lists.Header, verified lists.Digest, out string) error {
	held, err := os.Open(heldPath)
	if err != nil {
		return err
	}
	defer held.Close()
	hd, err := lists.NewDecoder(bufio.NewReader(held))
	if err != nil {
		return err
	}
	delta, err := os.Open(deltaPath)
	if err != nil {
		return err
	}
	defer delta.Close()
	sum := sha256.New()
	dr := bufio.NewReader(io.TeeReader(delta, sum))
	dd, err := lists.NewDecoder(dr)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".apply-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	h.Base = 0
	_, err = lists.WriteFull(f, h, lists.Apply(hd.Entries(), dd))
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return err
	}
	if got := lists.Digest(sum.Sum(nil)); got != verified {
		return &lists.Error{Reason: lists.ReasonTampered, Detail: fmt.Sprintf("%s changed after it was verified (SHA-256 %s, verified %s)", deltaPath, got, verified)}
	}
	return os.Rename(f.Name(), out)
}

// listRecord is one record as list show prints it.
type listRecord struct {
	Op        string `json:"op"`
	Card      string `json:"card"`
	Target    string `json:"target,omitempty"`
	Action    string `json:"action,omitempty"`
	APTA      *uint8 `json:"apta_status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Effective string `json:"effective,omitempty"`
	Data      string `json:"data,omitempty"`
}

// showList prints a document; it verifies nothing (list verify does).
func showList(path string, w io.Writer, asJSON bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := lists.NewDecoder(bufio.NewReader(f))
	if err != nil {
		return err
	}
	h := d.Header()
	var recs []listRecord
	var text bytes.Buffer
	fmt.Fprintf(&text, "%s  issued %s, valid %s until %s\n", h.Name(), h.Issued.Format(time.RFC3339), h.ValidFrom.Format(time.RFC3339), h.ValidUntil.Format(time.RFC3339))
	for c, err := range d.Changes() {
		if err != nil {
			return err
		}
		e := c.Entry
		r := listRecord{Op: c.Op.String(), Card: strings.ToUpper(hex.EncodeToString(e.Card)), Target: strings.ToUpper(hex.EncodeToString(e.Target))}
		if c.Op == lists.OpPut {
			r.Action, r.Reason, r.Data = e.Action.String(), e.Reason.String(), strings.ToUpper(hex.EncodeToString(e.Data))
			if s, ok := e.Action.APTAStatus(); ok {
				r.APTA = &s
			}
			if !e.Effective.IsZero() {
				r.Effective = e.Effective.Format(time.RFC3339)
			}
		}
		if asJSON {
			recs = append(recs, r)
			continue
		}
		line := fmt.Sprintf("  %-6s %s", r.Op, r.Card)
		if r.Target != "" {
			line += "/" + r.Target
		}
		if r.Action != "" {
			line += "  " + r.Action
			if r.APTA != nil {
				line += fmt.Sprintf(" (APTA %d)", *r.APTA)
			}
			line += ", " + r.Reason
		}
		if r.Effective != "" {
			line += ", from " + r.Effective
		}
		if r.Data != "" {
			line += ", data " + r.Data
		}
		fmt.Fprintln(&text, line)
	}
	tr, err := d.Trailer()
	if err != nil {
		return err
	}
	if asJSON {
		b, _ := json.MarshalIndent(struct {
			Name       string       `json:"name"`
			Kind       string       `json:"kind"`
			Owner      string       `json:"owner"`
			Version    uint64       `json:"version"`
			Base       uint64       `json:"base_version"`
			Issued     string       `json:"issued"`
			ValidFrom  string       `json:"valid_from"`
			ValidUntil string       `json:"valid_until"`
			Records    []listRecord `json:"records"`
			ListDigest string       `json:"list_digest"`
			BaseDigest string       `json:"base_list_digest,omitempty"`
		}{h.Name(), h.Kind.String(), h.Owner, h.Version, h.Base, h.Issued.Format(time.RFC3339), h.ValidFrom.Format(time.RFC3339),
			h.ValidUntil.Format(time.RFC3339), append([]listRecord{}, recs...), tr.List.String(), baseDigest(h, tr)}, "", "  ")
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
	fmt.Fprintf(&text, "  %d records; list digest %s", tr.Records, tr.List)
	if h.Delta() {
		fmt.Fprintf(&text, " (from %s)", tr.Base)
	}
	text.WriteString("\n")
	_, err = w.Write(text.Bytes())
	return err
}

func baseDigest(h lists.Header, tr lists.Trailer) string {
	if !h.Delta() {
		return ""
	}
	return tr.Base.String()
}

// ackList signs a receipt for the version a document gives, with the
// client certificate's key, and sends it.
func (c *client) ackList(ctx context.Context, path, out string) (proto.Message, error) {
	h, tr, err := readTrailer(path)
	if err != nil {
		return nil, err
	}
	chain, key, err := c.chain()
	if err != nil {
		return nil, err
	}
	p, err := identity.FromCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	now := time.Now()
	doc, sig, err := lists.SignReceipt(rand.Reader, key, chain, lists.Receipt{Owner: h.Owner, Kind: h.Kind, Version: h.Version, List: tr.List, Receiver: p, Time: now},
		"samd client", uint64(now.Unix()))
	if err != nil {
		return nil, err
	}
	if out != "" {
		if err := errors.Join(os.WriteFile(out, doc, 0o644), os.WriteFile(out+".p7s", sig, 0o644)); err != nil {
			return nil, err
		}
	}
	return msg(c.lists.AckList(ctx, connect.NewRequest(&samdv1.AckListRequest{Receipt: doc, Signature: sig})))
}

func printListStatus(w io.Writer, r *samdv1.ListStatusResponse) {
	fmt.Fprintf(w, "%s/%s  version %d", r.GetKind(), r.GetOwner(), r.GetVersion())
	if r.GetVersion() > 0 {
		fmt.Fprintf(w, ", issued %s, valid until %s", r.GetIssued(), r.GetValidUntil())
	}
	fmt.Fprintf(w, ", %d entries, %d changes waiting", r.GetEntries(), r.GetPending())
	if len(r.GetDeltaBases()) > 0 {
		bases := make([]string, len(r.GetDeltaBases()))
		for i, b := range r.GetDeltaBases() {
			bases[i] = strconv.FormatUint(b, 10)
		}
		fmt.Fprintf(w, ", deltas from %s", strings.Join(bases, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "receivers: %d of %d have not acknowledged version %d\n", r.GetBehind(), len(r.GetReceivers()), r.GetVersion())
	width := 0
	for _, rc := range r.GetReceivers() {
		width = max(width, len(rc.GetReceiver()))
	}
	for _, rc := range r.GetReceivers() {
		acked := "acknowledged nothing"
		if v := rc.GetAcknowledgedVersion(); v > 0 {
			acked = fmt.Sprintf("acknowledged %d at %s", v, rc.GetAcknowledgedAt())
		}
		if rc.GetBehind() {
			fmt.Fprintf(w, "  %-*s  NOT ACKNOWLEDGED since %s (%s)\n", width, rc.GetReceiver(), rc.GetBehindSince(), acked)
		} else {
			fmt.Fprintf(w, "  %-*s  ok (%s)\n", width, rc.GetReceiver(), acked)
		}
	}
}
