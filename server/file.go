package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/part19"
)

func (s *pkiService) NextFileName(ctx context.Context, req *connect.Request[samdv1.NextFileNameRequest]) (*connect.Response[samdv1.NextFileNameResponse], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	if req.Msg.GetZu() != "" {
		return nil, errkind.Errorf(errkind.InvalidInput, "files: zu is no longer read: a name's Z is file_type (1 CSC, 2 CT) and U the sender's DIS version (Håndbok 206 Part 19 §3.1)")
	}
	z, err := fileType(req.Msg.GetFileType())
	if err != nil {
		return nil, err
	}
	n, err := p.NextFileName(ctx, principal(ctx), part19.HardwareType(req.Msg.GetHardwareType()), z)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.NextFileNameResponse{Name: n.String(), Sequence: uint64(n.Seq)}), nil
}

// fileType reads a name's Z: "1" (CSC transactions; every XML file) or
// "2" (CT transactions).
func fileType(z string) (part19.FileType, error) {
	switch z {
	case "1":
		return part19.FileTypeCSC, nil
	case "2":
		return part19.FileTypeCT, nil
	}
	return part19.FileTypeUnknown, errkind.Errorf(errkind.InvalidInput, "files: file type %q is not 1 (CSC transactions) or 2 (CT transactions)", z)
}

// fileFormat reads a request's format: "cms" (or none) or "xdr".
func fileFormat(f string) (part19.Format, error) {
	switch f {
	case "", "cms":
		return part19.FormatXML, nil
	case "xdr":
		return part19.FormatXDR, nil
	}
	return part19.FormatUnknown, errkind.Errorf(errkind.InvalidInput, "files: format %q is not cms or xdr", f)
}

// streamReader reads the file content that a client stream carries in
// its messages' chunks, starting with the first message's.
func streamReader[T any](s *connect.ClientStream[T], first []byte, chunk func(*T) []byte) io.Reader {
	return &chunkReader{buf: first, next: func() ([]byte, error) {
		if !s.Receive() {
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		return chunk(s.Msg()), nil
	}}
}

type chunkReader struct {
	buf  []byte
	next func() ([]byte, error)
}

func (c *chunkReader) Read(b []byte) (int, error) {
	for len(c.buf) == 0 {
		var err error
		if c.buf, err = c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (s *pkiService) SignFile(ctx context.Context, stream *connect.ClientStream[samdv1.SignFileRequest]) (*connect.Response[samdv1.SignFileResponse], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	if !stream.Receive() {
		return nil, errkind.Errorf(errkind.InvalidInput, "sign: the first message must name the file and the signer")
	}
	first := stream.Msg()
	format, err := fileFormat(first.GetFormat())
	if err != nil {
		return nil, err
	}
	content := streamReader(stream, first.GetChunk(), (*samdv1.SignFileRequest).GetChunk)
	if format == part19.FormatXDR {
		f, err := p.SignXDR(ctx, principal(ctx), first.GetSigner(), first.GetName(), content)
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&samdv1.SignFileResponse{Name: f.Name, Size: uint64(f.Size), Sha256: strings.ToUpper(hex.EncodeToString(f.SHA256)),
			EndFile: f.EndFile, Algorithm: f.Algorithm.String(), Counter: f.Counter, Instance: p.Instance(), SignerSerial: f.Signer.Serial,
			Messages: messageReport(f.Messages)}), nil
	}
	f, err := p.SignFile(ctx, principal(ctx), first.GetSigner(), first.GetName(), content)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.SignFileResponse{Name: f.Name, Size: uint64(f.Size), Sha256: strings.ToUpper(hex.EncodeToString(f.SHA256)),
		Signature: f.Signature, Counter: f.Counter, Instance: p.Instance(), SignerSerial: f.Signer.Serial}), nil
}

func (s *pkiService) VerifyFile(ctx context.Context, stream *connect.ClientStream[samdv1.VerifyFileRequest]) (*connect.Response[samdv1.VerifyFileResponse], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	if !stream.Receive() {
		return nil, errkind.Errorf(errkind.InvalidInput, "verify: the first message must name the file and carry its signature")
	}
	first := stream.Msg()
	format, err := fileFormat(first.GetFormat())
	if err != nil {
		return nil, err
	}
	sig := bytes.Clone(first.GetSignature())
	content := streamReader(stream, first.GetChunk(), (*samdv1.VerifyFileRequest).GetChunk)
	var v ca.Verdict
	if format == part19.FormatXDR {
		v, err = p.VerifyXDR(ctx, first.GetName(), content)
	} else {
		v, err = p.VerifyFile(ctx, first.GetName(), sig, content)
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(verdictResponse(first.GetName(), format, v)), nil
}

// verdictResponse is a file's verdict on the wire.
func verdictResponse(name string, format part19.Format, v ca.Verdict) *samdv1.VerifyFileResponse {
	out := &samdv1.VerifyFileResponse{Ok: v.OK, Reason: v.Reason, Detail: v.Detail, Name: name, Size: uint64(v.Size),
		Sha256: strings.ToUpper(hex.EncodeToString(v.SHA256)), SignerSerial: v.Serial, Format: "cms"}
	if v.File != (part19.Name{}) {
		out.Sender, out.Sequence = v.File.PTOID.String(), uint64(v.File.Seq)
		out.HardwareType, out.FileType, out.DisVersion = string(v.File.HardwareType), strconv.Itoa(int(v.File.FileType)), v.File.DISVersion.String()
	}
	if v.Signer != (identity.Principal{}) {
		out.Signer = &samdv1.Principal{Role: v.Signer.Role.String(), Operator: v.Signer.Operator, Device: v.Signer.Device}
	}
	if !v.SigningTime.IsZero() {
		out.SigningTime = v.SigningTime.UTC().Format(time.RFC3339)
	}
	if v.Trace != nil {
		out.Instance, out.Counter = v.Trace.Instance, v.Trace.Counter
	}
	if format == part19.FormatXDR {
		out.Format, out.Algorithm = "xdr", v.Algorithm
		if h := v.Header; h != (part19.Header{}) {
			out.Header = &samdv1.XDRHeader{Tag: uint32(h.Tag), Created: h.CreatedTime().Format(time.RFC3339), CreatedSeconds: h.Created,
				EventType: uint32(h.EventType), EndFilePosition: h.EndFile}
		}
		out.Messages, out.MessagesWalked = messageReport(v.Messages), v.Messages != nil
	}
	return out
}

// messageReport is an XDR file's message walk on the wire (nil: not
// walked).
func messageReport(r *part19.MessageReport) *samdv1.MessageReport {
	if r == nil {
		return nil
	}
	out := &samdv1.MessageReport{Messages: uint32(r.Messages), Truncated: r.Truncated}
	for _, d := range r.Devices {
		m := &samdv1.DeviceMessages{Device: d.Device.String(), First: d.First, Last: d.Last, Count: uint32(d.Count), Duplicates: d.Duplicates, OutOfOrder: d.OutOfOrder}
		for _, g := range d.Missing {
			m.Missing = append(m.Missing, &samdv1.SequenceRange{From: g.From, To: g.To})
		}
		out.Devices = append(out.Devices, m)
	}
	return out
}
