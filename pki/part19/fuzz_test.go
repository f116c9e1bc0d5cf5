package part19_test

import (
	"bytes"
	"testing"

	"github.com/samd-io/samd/pki/part19"
)

// FuzzVerify feeds the XDR reader (header, message walk, end file)
// arbitrary files: it must answer with a verdict, read the whole input,
// and pass nothing it cannot have verified. Seeds: testdata/fuzz/FuzzVerify
// (the hand-made file and pieces of it).
func FuzzVerify(f *testing.F) {
	name, err := part19.ParseName("TR00041A.000000007", nil)
	if err != nil {
		f.Fatal(err)
	}
	bodies := &part19.BodyLengths{TypeOffset: 4, Lengths: map[uint32]uint32{30: 16, 31: 20}}
	f.Fuzz(func(t *testing.T, file []byte) {
		res, err := part19.Verify(bytes.NewReader(file), name, part19.VerifyOptions{Bodies: bodies, AllowLegacy: true})
		switch {
		case err != nil:
			t.Fatalf("a bytes.Reader cannot fail: %v", err)
		case res.Size != int64(len(file)):
			t.Fatalf("read %d of %d bytes", res.Size, len(file))
		case res.OK != (res.Reason == ""):
			t.Fatalf("OK %v with reason %q", res.OK, res.Reason)
		case res.OK && (res.Certificate == nil || res.Messages == nil || res.SignedLength > int64(len(file))):
			t.Fatalf("passed without a certificate or messages: %+v", res)
		}
	})
}
