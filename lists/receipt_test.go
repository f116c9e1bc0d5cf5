package lists_test

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
)

// TestReceiptLayout: a receipt encodes as the package doc's table says,
// written out by hand here.
func TestReceiptLayout(t *testing.T) {
	list := sha256.Sum256(unhex(t, goldenRecords))
	r := lists.Receipt{Owner: "no-pto:042", Kind: lists.KindCardHotlist, Version: 2, List: list,
		Receiver: identity.Principal{Role: identity.RoleTerminal, Operator: "no-pto:042", Device: "VAL-1"}, Time: issued}
	uri := "samd://principal/terminal/no-pto:042/VAL-1"
	want := slices.Concat(unhex(t, `
534D5243 01 01                 // magic "SMRC", format 1, card hotlist
0A 6E6F2D70746F3A303432        // owner "no-pto:042"
0000000000000002               // version 2
`), list[:], []byte{byte(len(uri))}, []byte(uri), unhex(t, "00000000695735A5"))
	got, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %X\nwant %X", got, want)
	}
	back, err := lists.ParseReceipt(want)
	if err != nil || !sameReceipt(back, r) {
		t.Fatalf("ParseReceipt = %+v, %v", back, err)
	}
	for name, b := range map[string][]byte{
		"fail/trailing-byte": append(slices.Clone(want), 0),
		"fail/truncated":     want[:len(want)-1],
		"fail/magic":         append([]byte("SMNL"), want[4:]...),
		"fail/officer":       bytes.Replace(want, []byte("\x2asamd://principal/terminal/"), []byte("\x29samd://principal/officer/"), 1),
		"fail/kind":          append(slices.Clone(want[:5]), append([]byte{9}, want[6:]...)...),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := lists.ParseReceipt(b); !errors.Is(err, lists.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

// TestReceiptSignedByOpenSSL: a terminal with nothing but OpenSSL and its
// own key signs the receipt bytes (`openssl cms -sign`), and samd's
// VerifyReceipt accepts it.
func TestReceiptSignedByOpenSSL(t *testing.T) {
	p := newPKI(t)
	key := ecKey(t, elliptic.P256())
	cert := p.leaf(t, key.Public(), "terminal/no-pto:042/VAL-1", false)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, "terminal.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	keyFile := p.write(t, "terminal.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
	interFile := p.write(t, "inter.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.inter.Raw}))

	list := sha256.Sum256([]byte("version 2"))
	r := lists.Receipt{Owner: "no-pto:042", Kind: lists.KindCardHotlist, Version: 2, List: list,
		Receiver: identity.Principal{Role: identity.RoleTerminal, Operator: "no-pto:042", Device: "VAL-1"}, Time: p.now}
	doc, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	docFile := p.write(t, "receipt.bin", doc)
	sigFile := p.dir + "/receipt.p7s"
	if out, err := openssl(t, "cms", "-sign", "-binary", "-md", "sha256", "-in", docFile, "-signer", certFile, "-inkey", keyFile,
		"-certfile", interFile, "-outform", "DER", "-out", sigFile); err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		t.Fatal(err)
	}
	got, signer, err := lists.VerifyReceipt(doc, sig, lists.ReceiptOptions{Roots: p.roots, Owner: "no-pto:042", Kind: lists.KindCardHotlist, Version: 2, List: list})
	if err != nil {
		t.Fatal(err)
	}
	if !sameReceipt(got, r) || !signer.Equal(cert) {
		t.Errorf("receipt %+v by %v", got, signer.Subject)
	}
}

// TestReceiptReasons: VerifyReceipt accepts a receiver's receipt for the
// version and digest expected, and refuses every other with its reason.
func TestReceiptReasons(t *testing.T) {
	p := newPKI(t)
	key := ecKey(t, elliptic.P256())
	cert := p.leaf(t, key.Public(), "terminal/no-pto:042/VAL-1", false)
	list := sha256.Sum256([]byte("version 2"))
	r := lists.Receipt{Owner: "no-pto:042", Kind: lists.KindCardHotlist, Version: 2, List: list,
		Receiver: identity.Principal{Role: identity.RoleTerminal, Operator: "no-pto:042", Device: "VAL-1"}, Time: p.now}
	doc, sig, err := lists.SignReceipt(rand.Reader, key, []*x509.Certificate{cert, p.inter}, r, "VAL-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	base := lists.ReceiptOptions{Roots: p.roots, Owner: "no-pto:042", Kind: lists.KindCardHotlist, Version: 2, List: list}
	with := func(mod func(*lists.ReceiptOptions)) lists.ReceiptOptions {
		o := base
		mod(&o)
		return o
	}
	// Another terminal signs VAL-1's receipt.
	otherKey := ecKey(t, elliptic.P256())
	otherCert := p.leaf(t, otherKey.Public(), "terminal/no-pto:042/VAL-2", false)
	// The certificate carried is VAL-1's, with another key.
	swapped := bytes.Replace(bytes.Clone(sig), cert.Raw, p.twin(t, cert, otherKey.Public()).Raw, 1)
	strange := newPKI(t)
	strangeCert := strange.leaf(t, key.Public(), "terminal/no-pto:042/VAL-1", false)
	tampered := bytes.Clone(doc)
	tampered[len(tampered)-1] ^= 1

	for _, tc := range []struct {
		name     string
		doc, sig []byte
		opts     lists.ReceiptOptions
		want     lists.Reason
	}{
		{"ok/receipt", doc, sig, base, lists.ReasonUnknown},
		{"fail/other-version", doc, sig, with(func(o *lists.ReceiptOptions) { o.Version = 3 }), lists.ReasonWrongVersion},
		{"fail/other-digest", doc, sig, with(func(o *lists.ReceiptOptions) { o.List[0] ^= 1 }), lists.ReasonWrongDigest},
		{"fail/other-owner", doc, sig, with(func(o *lists.ReceiptOptions) { o.Owner = "no-pto:077" }), lists.ReasonWrongOwner},
		{"fail/other-kind", doc, sig, with(func(o *lists.ReceiptOptions) { o.Kind = lists.KindActionList }), lists.ReasonWrongKind},
		{"fail/key-not-the-certificates", doc, swapped, base, lists.ReasonBadSignature},
		{"fail/tampered", tampered, sig, base, lists.ReasonTampered},
		{"fail/signed-by-another-receiver", doc, forge(t, p, doc, otherKey, otherCert), base, lists.ReasonWrongReceiver},
		{"fail/untrusted", doc, forge(t, strange, doc, key, strangeCert), base, lists.ReasonUntrusted},
		{"fail/malformed-receipt-signed", []byte("receipt"), forge(t, p, []byte("receipt"), key, cert), base, lists.ReasonMalformed},
		{"fail/malformed-signature", doc, []byte{0x30, 0}, base, lists.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := lists.VerifyReceipt(tc.doc, tc.sig, tc.opts)
			if got := lists.ReasonOf(err); got != tc.want || (err == nil) != (tc.want == lists.ReasonUnknown) {
				t.Fatalf("got %v (reason %v), want reason %v", err, got, tc.want)
			}
		})
	}

	t.Run("fail/sign-as-another-receiver", func(t *testing.T) {
		if _, _, err := lists.SignReceipt(rand.Reader, otherKey, []*x509.Certificate{otherCert, p.inter}, r, "VAL-2", 1); err == nil {
			t.Fatal("VAL-2 signed VAL-1's receipt")
		}
	})
}

// sameReceipt compares receipts by their encodings (time.Time values
// differ in location and monotonic reading, not in the second encoded).
func sameReceipt(a, b lists.Receipt) bool {
	x, errA := a.MarshalBinary()
	y, errB := b.MarshalBinary()
	return errA == nil && errB == nil && bytes.Equal(x, y)
}
