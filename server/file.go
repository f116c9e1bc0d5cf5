package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

func (s *pkiService) NextFileName(ctx context.Context, req *connect.Request[samdv1.NextFileNameRequest]) (*connect.Response[samdv1.NextFileNameResponse], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	zu := req.Msg.GetZu()
	if zu == "" {
		zu = "00"
	}
	f, err := p.NextFileName(ctx, principal(ctx), req.Msg.GetFileType(), zu)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.NextFileNameResponse{Name: f.String(), Sequence: f.Seq}), nil
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
	content := streamReader(stream, first.GetChunk(), (*samdv1.SignFileRequest).GetChunk)
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
	sig := bytes.Clone(first.GetSignature())
	content := streamReader(stream, first.GetChunk(), (*samdv1.VerifyFileRequest).GetChunk)
	v, err := p.VerifyFile(ctx, first.GetName(), sig, content)
	if err != nil {
		return nil, err
	}
	out := &samdv1.VerifyFileResponse{Ok: v.OK, Reason: v.Reason, Detail: v.Detail, Name: first.GetName(), Sender: v.File.Sender, Sequence: v.File.Seq,
		Size: uint64(v.Size), Sha256: strings.ToUpper(hex.EncodeToString(v.SHA256)), SignerSerial: v.Serial}
	if v.Signer != (identity.Principal{}) {
		out.Signer = &samdv1.Principal{Role: v.Signer.Role.String(), Operator: v.Signer.Operator, Device: v.Signer.Device}
	}
	if !v.SigningTime.IsZero() {
		out.SigningTime = v.SigningTime.UTC().Format(time.RFC3339)
	}
	if v.Trace != nil {
		out.Instance, out.Counter = v.Trace.Instance, v.Trace.Counter
	}
	return connect.NewResponse(out), nil
}
