package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/pki/part19"
)

// fileTimeout bounds a file's streaming, whatever --timeout says.
const fileTimeout = 30 * time.Minute

// chunkSize is how much of a file one stream message carries.
const chunkSize = 256 << 10

const fileMore = `Names are Håndbok 206 Part 19 §3.1's XXYYYYZU.NNNNNNNNN: XX the hardware type,
YYYY the sender's PTOID, Z the file type (1 CSC, 2 CT; XML files 1), U the DIS
version, NNNNNNNNN the sequence number. XML files are signed as detached CMS
(FILE.p7s beside them); XDR batch files carry their end file (certificate,
algorithm, digest, trace, signature) after their messages.`

// fileCommands are the transaction files'.
var fileCommands = []command{
	{name: "file name", help: "the next file name XXYYYYZU.NNNNNNNNN of the caller's operator (back office)", more: fileMore, flags: func(fs *flag.FlagSet) runFunc {
		z := fs.String("file-type", "", "Z: `1` (CSC transactions; every XML file) or 2 (CT transactions)")
		hw := fs.String("hardware-type", "", "XX: TR, MW, IO or a configured one (default: the operator's only one), `XX`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.files.NextFileName(ctx, connect.NewRequest(&samdv1.NextFileNameRequest{FileType: *z, HardwareType: *hw})))
		}
	}},
	{name: "file sign", args: "FILE", help: "sign FILE: a detached CMS signature (XML files), or the end file of a Part 19 XDR file (back office)", more: fileMore,
		timeout: fileTimeout, flags: func(fs *flag.FlagSet) runFunc {
			signer := fs.String("signer", "", "the signer, as pki signer named it, `NAME`")
			format := fs.String("format", "cms", "`cms` (writes FILE.p7s) or xdr (FILE is the header and messages; samd's end file is appended to it)")
			out := fs.String("out", "", "cms: write the signature to `FILE.p7s` (default: FILE.p7s beside FILE)")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				switch *format {
				case "cms":
					return c.signFile(ctx, in.args[0], *signer, *out)
				case "xdr":
					if *out != "" {
						return nil, errors.New("--out is for cms: an XDR file is signed in place (its name is the one signed)")
					}
					return c.signXDR(ctx, in.args[0], *signer)
				}
				return nil, fmt.Errorf("--format %q: cms or xdr", *format)
			}
		}},
	{name: "file verify", args: "FILE", help: "verify FILE's signature, chain, CRL and sender (clearing house)", more: fileMore, timeout: fileTimeout, flags: func(fs *flag.FlagSet) runFunc {
		sig := fs.String("sig", "", "cms: the detached signature, `FILE.p7s` (default: FILE.p7s beside FILE)")
		format := fs.String("format", "auto", "`auto` (cms when --sig is given or FILE.p7s exists, else xdr), cms or xdr")
		return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			f, err := verifyFormat(in.args[0], *sig, *format)
			if err != nil {
				return nil, err
			}
			return c.verifyFile(ctx, in.args[0], *sig, f)
		}
	}},
	{name: "file verify-dir", args: "DIR", timeout: fileTimeout, more: fileMore,
		help: "verify every XXYYYYZU.NNNNNNNNN in DIR (with its .p7s: CMS, else XDR), and the sequence numbers per series (clearing house)",
		flags: noFlags(func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			return nil, c.verifyDir(ctx, in.args[0], in.out, in.json)
		})},
	{name: "file xdr-demo", args: "FILE", offline: true,
		help: "write a small unsigned Part 19 XDR file FILE (named XXYYYYZU.NNNNNNNNN) from §3.1's header layout; needs no samd",
		more: `The file header (tag = the name's Z, creation date now, event type 1, End File
position) and messages from two devices (Device ID D01 and D02), each a 16-byte
message header and a 16-byte placeholder transaction: an XDR unsigned int
transaction type (30 CSC check-in, or 32 CT check-in) and 12 bytes. Appendix A,
which gives the real transactions, is not in the seed; samd dev's
pki.body_lengths describes these placeholders.`,
		flags: func(fs *flag.FlagSet) runFunc {
			n := fs.Int("messages", 3, "how many messages, `N` (1-1000)")
			gap := fs.Bool("gap", false, "leave out one message number of device D01, for the verifier to report")
			return func(_ context.Context, _ *client, in *invocation) (proto.Message, error) {
				d, err := writeXDRDemo(in.args[0], *n, *gap, time.Now())
				if err != nil {
					return nil, err
				}
				if in.json {
					b, _ := json.MarshalIndent(d, "", "  ")
					fmt.Fprintln(in.out, string(b))
					return nil, nil
				}
				fmt.Fprintf(in.out, "wrote %s: %d bytes, unsigned\nheader     tag %d, created %s (%d), event type 1, End File position %d\nmessages   %d, transaction type %d, devices %s\n",
					d.File, d.Size, d.Tag, time.Unix(int64(d.Created), 0).UTC().Format(time.RFC3339), d.Created, d.EndFilePosition, d.Messages, d.TransactionType, strings.Join(d.Devices, ", "))
				return nil, nil
			}
		}},
}

// verifyFormat decides a file's format for file verify: cms when a
// detached signature is named or lies beside the file, xdr otherwise.
func verifyFormat(path, sig, format string) (string, error) {
	switch format {
	case "cms", "xdr":
		return format, nil
	case "auto":
		if sig != "" {
			return "cms", nil
		}
		if _, err := os.Stat(path + ".p7s"); err == nil {
			return "cms", nil
		}
		return "xdr", nil
	}
	return "", fmt.Errorf("--format %q: auto, cms or xdr", format)
}

// sendFile streams the file at path through a client stream, its first
// chunk in first and the next ones in messages of their own, and returns
// the answer.
func sendFile[Req, Res any](path string, stream *connect.ClientStreamForClient[Req, Res], first *Req, chunk func(*Req, []byte)) (*Res, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := sendChunks(f, func(b []byte) error {
		m := first
		if m == nil {
			m = new(Req)
		}
		first = nil
		chunk(m, b)
		return stream.Send(m)
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

// signStream streams a file to samd's SignFile after first.
func (c *client) signStream(ctx context.Context, path string, first *samdv1.SignFileRequest) (*samdv1.SignFileResponse, error) {
	return sendFile(path, c.files.SignFile(ctx), first, func(m *samdv1.SignFileRequest, b []byte) { m.Chunk = b })
}

// signFile streams a file to samd and writes its detached signature.
func (c *client) signFile(ctx context.Context, path, signer, out string) (*samdv1.SignFileResponse, error) {
	res, err := c.signStream(ctx, path, &samdv1.SignFileRequest{Name: filepath.Base(path), Signer: signer})
	if err != nil {
		return nil, err
	}
	if out == "" {
		out = path + ".p7s"
	}
	return res, os.WriteFile(out, res.GetSignature(), 0o644)
}

// signXDR streams an XDR file (header and messages) to samd and appends
// the end file samd made: the file is then the signed file, content ‖
// end file, under the name signed. A failed append is undone.
func (c *client) signXDR(ctx context.Context, path, signer string) (*samdv1.SignFileResponse, error) {
	res, err := c.signStream(ctx, path, &samdv1.SignFileRequest{Name: filepath.Base(path), Signer: signer, Format: "xdr"})
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() != int64(res.GetSize()) {
		return nil, fmt.Errorf("%s changed while samd signed it (%d bytes signed): the end file was not appended", path, res.GetSize())
	}
	if _, err := f.Write(res.GetEndFile()); err != nil {
		return nil, errors.Join(err, f.Truncate(int64(res.GetSize())))
	}
	if err := f.Sync(); err != nil {
		return nil, errors.Join(err, f.Truncate(int64(res.GetSize())))
	}
	return res, nil
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

// verifyFile streams a file to samd: format cms with its detached
// signature (sigPath, default FILE.p7s), xdr with its end file inside.
func (c *client) verifyFile(ctx context.Context, path, sigPath, format string) (*samdv1.VerifyFileResponse, error) {
	first := &samdv1.VerifyFileRequest{Name: filepath.Base(path), Format: format}
	if format == "cms" {
		if sigPath == "" {
			sigPath = path + ".p7s"
		}
		sig, err := os.ReadFile(sigPath)
		if err != nil {
			return nil, err
		}
		first.Signature = sig
	}
	return sendFile(path, c.files.VerifyFile(ctx), first, func(m *samdv1.VerifyFileRequest, b []byte) { m.Chunk = b })
}

// dirReport is what verify-dir prints.
type dirReport struct {
	Files     []json.RawMessage       `json:"files"`
	Sequences []part19.SequenceReport `json:"sequences"`
	// Unnamed lists files whose names are not XXYYYYZU.NNNNNNNNN.
	Unnamed []string `json:"unnamed"`
	OK      bool     `json:"ok"`
}

// verifyDir verifies every transaction file of a directory, in the order
// they arrived, and reports the sequence numbers per series (hardware
// type, PTOID, file type), continuous across the wrap from 999999999 to
// 000000000.
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
	rep := dirReport{OK: true, Files: []json.RawMessage{}, Unnamed: []string{}} // [] in --json, not null
	var arrived []part19.Name
	for _, f := range files {
		n, ok := seriesName(f.name)
		if !ok {
			rep.Unnamed = append(rep.Unnamed, f.name)
			rep.OK = false
			continue
		}
		arrived = append(arrived, n)
		path := filepath.Join(dir, f.name)
		format, _ := verifyFormat(path, "", "auto")
		res, err := c.verifyFile(ctx, path, "", format)
		if err != nil {
			res = &samdv1.VerifyFileResponse{Name: f.name, Reason: "unreadable", Detail: err.Error()}
		}
		if !res.GetOk() {
			rep.OK = false
		}
		b, _ := jsonOut.Marshal(res)
		rep.Files = append(rep.Files, b)
		if !asJSON {
			printVerdict(out, res)
		}
	}
	rep.Sequences = append([]part19.SequenceReport{}, part19.CheckSequences(arrived)...)
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

// seriesName reads a file name for the sequence report: the §3.1
// pattern, with any well-formed hardware type (samd's configuration says
// which are allowed, and its verdict refuses the others).
func seriesName(name string) (part19.Name, bool) {
	if len(name) < 2 {
		return part19.Name{}, false
	}
	n, err := part19.ParseName(name, []part19.HardwareType{part19.HardwareType(name[:2])})
	return n, err == nil
}

// printSigned prints a SignFileResponse.
func printSigned(w io.Writer, r *samdv1.SignFileResponse) {
	if len(r.GetEndFile()) > 0 {
		fmt.Fprintf(w, "file       %s, %d bytes before the end file, SHA-256 %s\nsigned by  serial %s, instance %s, counter %d, %s (%d-byte end file appended)\n",
			r.GetName(), r.GetSize(), r.GetSha256(), r.GetSignerSerial(), r.GetInstance(), r.GetCounter(), r.GetAlgorithm(), len(r.GetEndFile()))
		printMessages(w, r.GetMessages(), r.GetMessages() != nil)
		return
	}
	fmt.Fprintf(w, "file       %s, %d bytes, SHA-256 %s\nsigned by  serial %s, instance %s, counter %d (%d-byte CMS signature)\n",
		r.GetName(), r.GetSize(), r.GetSha256(), r.GetSignerSerial(), r.GetInstance(), r.GetCounter(), len(r.GetSignature()))
}

// printVerdict prints a VerifyFileResponse on one line (XDR: and its
// messages).
func printVerdict(w io.Writer, r *samdv1.VerifyFileResponse) {
	if !r.GetOk() {
		fmt.Fprintf(w, "%s  FAILED %s: %s\n", r.GetName(), r.GetReason(), r.GetDetail())
		return
	}
	if r.GetFormat() != "xdr" {
		fmt.Fprintf(w, "%s  ok: sender %s, sequence %d, signer %s/%s serial %s, signed %s by %s #%d\n", r.GetName(), r.GetSender(), r.GetSequence(),
			r.GetSigner().GetOperator(), r.GetSigner().GetDevice(), r.GetSignerSerial(), r.GetSigningTime(), r.GetInstance(), r.GetCounter())
		return
	}
	by := "not samd (no trace)"
	if r.GetInstance() != "" {
		by = fmt.Sprintf("%s #%d", r.GetInstance(), r.GetCounter())
	}
	fmt.Fprintf(w, "%s  ok: XDR, sender %s (%s, DIS %s), sequence %d, signer %s/%s serial %s, %s, created %s, signed by %s\n", r.GetName(), r.GetSender(),
		r.GetHardwareType(), r.GetDisVersion(), r.GetSequence(), r.GetSigner().GetOperator(), r.GetSigner().GetDevice(), r.GetSignerSerial(), r.GetAlgorithm(),
		r.GetHeader().GetCreated(), by)
	printMessages(w, r.GetMessages(), r.GetMessagesWalked())
}

// printMessages prints an XDR file's message report.
func printMessages(w io.Writer, m *samdv1.MessageReport, walked bool) {
	if !walked {
		fmt.Fprintln(w, "  messages not walked: no pki.body_lengths is configured, so the header and the end file were checked")
		return
	}
	fmt.Fprintf(w, "  %s\n", plural(int(m.GetMessages()), "message"))
	for _, d := range m.GetDevices() {
		fmt.Fprintf(w, "  device %s: %s, %d..%d", d.GetDevice(), plural(int(d.GetCount()), "message"), d.GetFirst(), d.GetLast())
		for _, g := range d.GetMissing() {
			fmt.Fprintf(w, ", MISSING %d..%d", g.GetFrom(), g.GetTo())
		}
		for _, n := range d.GetDuplicates() {
			fmt.Fprintf(w, ", DUPLICATE %d", n)
		}
		for _, n := range d.GetOutOfOrder() {
			fmt.Fprintf(w, ", OUT OF ORDER %d", n)
		}
		fmt.Fprintln(w)
	}
	if m.GetTruncated() {
		fmt.Fprintln(w, "  (truncated: more devices or holes than the report keeps)")
	}
}

// xdrDemo is what file xdr-demo wrote.
type xdrDemo struct {
	File            string   `json:"file"`
	Size            int      `json:"size"`
	Tag             uint32   `json:"tag"`
	Created         uint32   `json:"created"`
	EndFilePosition uint32   `json:"end_file_position"`
	Messages        int      `json:"messages"`
	TransactionType uint32   `json:"transaction_type"`
	Devices         []string `json:"devices"`
}

// writeXDRDemo writes an unsigned XDR batch file (Part 19 §3.1, package
// part19's layout) to path, whose base name is its XXYYYYZU.NNNNNNNNN:
// the file header, then n messages alternating between devices D01/0 and
// D02/7, numbered per device from 41 and 1 (with gap: D01's second number
// left out), each with a 16-byte placeholder transaction. It refuses to
// overwrite a file.
func writeXDRDemo(path string, n int, gap bool, now time.Time) (xdrDemo, error) {
	base := filepath.Base(path)
	name, ok := seriesName(base)
	if !ok {
		_, err := part19.ParseName(base, nil)
		return xdrDemo{}, fmt.Errorf("the file's name: %w", err)
	}
	if n < 1 || n > 1000 {
		return xdrDemo{}, fmt.Errorf("--messages %d: 1 to 1000", n)
	}
	const body = 16   // placeholder transaction: type, then 12 bytes
	typ := uint32(30) // §1.3.2: CSC Fare Product checkin
	if name.FileType == part19.FileTypeCT {
		typ = 32 // CT Fare Product checkin
	}
	end := part19.HeaderSize + n*(part19.MessageHeaderSize+body)
	d := xdrDemo{File: path, Size: end, Tag: uint32(name.FileType), Created: uint32(now.Unix()), EndFilePosition: uint32(end), Messages: n, TransactionType: typ}
	hdr := part19.Header{Tag: name.FileType, Created: d.Created, EventType: 1, EndFile: d.EndFilePosition}.Bytes()
	b := append(make([]byte, 0, end), hdr[:]...)
	devices := []part19.Device{{ID: part19.DeviceID{'D', '0', '1'}}, {ID: part19.DeviceID{'D', '0', '2'}, Complement: 7}}
	next := []uint32{41, 1}
	for i := range n {
		k := i % 2
		if gap && k == 0 && next[k] == 42 {
			next[k]++ // message 42 of D01 never arrives
		}
		m := part19.MessageHeader{Number: next[k], ReportDate: d.Created, DeviceID: devices[k].ID, ComplementDeviceID: devices[k].Complement}.Bytes()
		next[k]++
		b = append(b, m[:]...)
		b = binary.BigEndian.AppendUint32(b, typ)
		b = binary.BigEndian.AppendUint32(b, uint32(i+1)) // placeholder: the transaction's index in the file
		b = append(b, make([]byte, body-8)...)
	}
	for _, dev := range devices[:min(n, 2)] {
		d.Devices = append(d.Devices, dev.String())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return xdrDemo{}, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return xdrDemo{}, err
	}
	return d, f.Close()
}

// plural is "1 message", "2 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
