package part19_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/samd-io/samd/pki/part19"
)

// TestHandmadeFile: the XDR file of testdata/handmade, written by hand and
// signed by OpenSSL (gen.sh; README.md explains each byte), verifies as a
// known answer, with its header, trace, signed length and messages.
func TestHandmadeFile(t *testing.T) {
	const path = "testdata/handmade/TR00041A.000000007"
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile("testdata/handmade/signer.pem")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := pem.Decode(certPEM)
	name := mustName(t, "TR00041A.000000007")
	bodies := &part19.BodyLengths{TypeOffset: 4, Lengths: map[uint32]uint32{30: 16, 31: 20}}
	res := verify(t, file, name, part19.VerifyOptions{Bodies: bodies, Now: now})
	sum := sha256.Sum256(file[:116])
	var devices []string
	if res.Messages != nil {
		for _, d := range res.Messages.Devices {
			devices = append(devices, fmt.Sprintf("%s %d..%d n=%d missing=%v", d.Device, d.First, d.Last, d.Count, d.Missing))
		}
	}
	switch {
	case !res.OK:
		t.Fatalf("refused: %s: %s", res.Reason, res.Detail)
	case hex.EncodeToString(sum[:]) != "38a05790b62bbbeeab7a9ce583b79c9ad68bd82d42c9030849b0b1430f6ee8e0":
		t.Fatalf("the bytes before the end file are not README.md's: %x", sum)
	case res.Header != (part19.Header{Tag: part19.FileTypeCSC, Created: 1768464000, EventType: 1, EndFile: 116}):
		t.Fatalf("header %+v", res.Header)
	case res.Algorithm != part19.ECDSAWithSHA256 || string(res.Certificate.Raw) != string(cert.Bytes) || res.SignedLength != 652:
		t.Fatalf("algorithm %s, signed length %d", res.Algorithm, res.SignedLength)
	case res.Trace == nil || *res.Trace != (part19.Trace{Instance: "samd-handmade", Counter: 7, File: "TR00041A.000000007"}):
		t.Fatalf("trace %+v", res.Trace)
	case res.Messages.Messages != 3 || strings.Join(devices, "; ") != "V01/0 41..42 n=2 missing=[]; V02/3 7..7 n=1 missing=[]":
		t.Fatalf("messages: %d %q", res.Messages.Messages, devices)
	}
	if out, err := opensslVerify(t, file); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("OpenSSL: %v\n%s", err, out)
	}
}
