package part19_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/pki/part19"
)

func verify(t testing.TB, file []byte, name part19.Name, opts part19.VerifyOptions) part19.Result {
	t.Helper()
	res, err := part19.Verify(bytes.NewReader(file), name, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Size != int64(len(file)) {
		t.Fatalf("Verify read %d of %d bytes", res.Size, len(file))
	}
	return res
}

// TestSignVerify: a file built in the test from §3.1's layout, signed by
// samd with each algorithm it signs with, verifies — in samd, and in
// OpenSSL through the README's script (`openssl dgst -verify` over every
// byte before the signature field, with the key of the certificate in
// the end file).
func TestSignVerify(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	for _, c := range []struct {
		name string
		key  string
		alg  part19.Algorithm
		dgst []string
	}{
		{"ok/ECDSA P-256", "p256", 0, []string{"-sha256"}},
		{"ok/ECDSA P-384", "p384", 0, []string{"-sha384"}},
		{"ok/RSA PSS", "rsa2048", 0, []string{"-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:auto"}},
		{"ok/RSA PKCS1 v1.5", "rsa2048", part19.RSAWithSHA256, []string{"-sha256"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := keyOf(t, c.key)
			content := xdrFile(1, 1, someMessages()...)
			file := samdSigned(t, k, name, content, c.alg, 9)
			res := verify(t, file, name, part19.VerifyOptions{Now: now})
			want := c.alg
			if want == 0 {
				want, _ = part19.DefaultAlgorithm(k.key.Public())
			}
			switch {
			case !res.OK:
				t.Fatalf("refused: %s: %s", res.Reason, res.Detail)
			case res.Algorithm != want || !res.Certificate.Equal(k.cert) || res.Messages != nil:
				t.Fatalf("algorithm %s, certificate %v, messages %v", res.Algorithm, res.Certificate.Subject, res.Messages)
			case res.Trace == nil || *res.Trace != (part19.Trace{Instance: "samd-test", Counter: 9, File: name.String()}):
				t.Fatalf("trace %+v", res.Trace)
			case res.Header != (part19.Header{Tag: 1, Created: created, EventType: 1, EndFile: uint32(len(content))}):
				t.Fatalf("header %+v", res.Header)
			}
			_, ef := splitFile(t, file)
			if res.SignedLength != int64(len(file)-4-len(ef.sig)-(4-len(ef.sig)%4)%4) {
				t.Fatalf("signed length %d of %d", res.SignedLength, len(file))
			}
			if out, err := opensslVerify(t, file, c.dgst...); err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("OpenSSL refuses samd's file: %v\n%s", err, out)
			}
			file[20] ^= 1
			if out, err := opensslVerify(t, file, c.dgst...); err == nil {
				t.Fatalf("OpenSSL accepts a changed file:\n%s", out)
			}
		})
	}
}

// TestVerifyRefusals: a samd-signed file, changed in each way the issue
// names (and a few more), is refused with its own reason.
func TestVerifyRefusals(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	k := keyOf(t, "p256")
	content := xdrFile(1, 1, someMessages()...)
	signed := samdSigned(t, k, name, content, 0, 3)
	e := len(content)
	endAt := func(v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint32(b[12:], v); return b }
	}
	flip := func(i int) func([]byte) []byte { return func(b []byte) []byte { b[i] ^= 0x01; return b } }
	editEnd := func(edit func(*endFile)) func([]byte) []byte {
		return func(b []byte) []byte {
			head, ef := splitFile(t, b)
			edit(&ef)
			return append(bytes.Clone(head), ef.bytes()...)
		}
	}
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
		opts part19.VerifyOptions
		want part19.Reason
	}{
		{"ok/as signed", func(b []byte) []byte { return b }, part19.VerifyOptions{}, ""},
		{"ok/creation date within the skew", func(b []byte) []byte { return b }, part19.VerifyOptions{Now: time.Unix(created-60, 0), MaxSkew: 5 * time.Minute}, ""},

		{"fail/header: creation date byte flipped", flip(7), part19.VerifyOptions{}, part19.ReasonTampered},
		{"fail/message byte flipped", flip(inTransaction(2)), part19.VerifyOptions{}, part19.ReasonTampered},
		{"fail/message header byte flipped", flip(16 + 3), part19.VerifyOptions{}, part19.ReasonTampered},
		{"fail/last byte before the end file flipped", flip(e - 1), part19.VerifyOptions{}, part19.ReasonTampered},

		{"fail/tag 2 in a Z=1 file", func(b []byte) []byte { b[3] = 2; return b }, part19.VerifyOptions{}, part19.ReasonTagMismatch},
		{"fail/tag 3", func(b []byte) []byte { b[3] = 3; return b }, part19.VerifyOptions{}, part19.ReasonBadHeader},
		{"fail/tag filled after its byte (01 00 00 00)", func(b []byte) []byte { b[0], b[3] = 1, 0; return b }, part19.VerifyOptions{}, part19.ReasonBadHeader},
		{"fail/event type 2", func(b []byte) []byte { b[11] = 2; return b }, part19.VerifyOptions{}, part19.ReasonEventType},
		{"fail/event type filled after its byte", func(b []byte) []byte { b[8] = 1; return b }, part19.VerifyOptions{}, part19.ReasonBadHeader},
		{"fail/shorter than the header", func(b []byte) []byte { return b[:15] }, part19.VerifyOptions{}, part19.ReasonBadHeader},
		{"fail/creation date in the future", func(b []byte) []byte { return b }, part19.VerifyOptions{Now: time.Unix(created-600, 0), MaxSkew: 5 * time.Minute}, part19.ReasonCreationDate},

		{"fail/End File position moved on by 4", endAt(uint32(e + 4)), part19.VerifyOptions{}, part19.ReasonEndPosition},
		{"fail/End File position moved back by 4", endAt(uint32(e - 4)), part19.VerifyOptions{}, part19.ReasonEndPosition},
		{"fail/End File position moved back to the first message", endAt(32), part19.VerifyOptions{}, part19.ReasonEndPosition},
		{"fail/End File position past the end", endAt(uint32(len(signed) + 100)), part19.VerifyOptions{}, part19.ReasonEndPosition},
		{"fail/End File position inside the header", endAt(12), part19.VerifyOptions{}, part19.ReasonEndPosition},
		{"fail/file cut before the End File position", func(b []byte) []byte { return b[:e-8] }, part19.VerifyOptions{}, part19.ReasonEndPosition},

		{"fail/certificate swapped", editEnd(func(ef *endFile) { ef.cert = keyOf(t, "p256-other").cert.Raw }), part19.VerifyOptions{}, part19.ReasonBadSignature},
		{"fail/signature byte flipped", editEnd(func(ef *endFile) { ef.sig[len(ef.sig)-3] ^= 1 }), part19.VerifyOptions{}, part19.ReasonBadSignature},
		{"fail/trace counter changed", editEnd(func(ef *endFile) { ef.trace.counter++ }), part19.VerifyOptions{}, part19.ReasonBadSignature},
		{"fail/trace file name changed", editEnd(func(ef *endFile) { ef.trace.file = "TR00041A.000000018" }), part19.VerifyOptions{}, part19.ReasonBadSignature},
		{"fail/trace removed", editEnd(func(ef *endFile) { ef.trace = nil }), part19.VerifyOptions{}, part19.ReasonBadSignature},
		{"fail/digest and content changed together", func(b []byte) []byte {
			head, ef := splitFile(t, b)
			head = bytes.Clone(head)
			head[20] ^= 1
			ef.digest = sha256Of(head)
			return append(head, ef.bytes()...)
		}, part19.VerifyOptions{}, part19.ReasonBadSignature},

		{"fail/algorithm of another curve", editEnd(func(ef *endFile) { ef.alg = algorithmID(t, "ecdsa-with-SHA384") }), part19.VerifyOptions{}, part19.ReasonUnsupportedAlgorithm},
		{"fail/algorithm of RSA with an EC key", editEnd(func(ef *endFile) { ef.alg = algorithmID(t, "sha256WithRSAEncryption") }), part19.VerifyOptions{}, part19.ReasonUnsupportedAlgorithm},
		{"fail/algorithm unknown", editEnd(func(ef *endFile) { ef.alg = algorithmID(t, "unknown") }), part19.VerifyOptions{}, part19.ReasonUnsupportedAlgorithm},

		{"fail/digest of another length", editEnd(func(ef *endFile) { ef.digest = ef.digest[:20] }), part19.VerifyOptions{}, part19.ReasonMalformedEndFile},
		{"fail/certificate not X.509", editEnd(func(ef *endFile) { ef.cert = []byte{0x30, 0x03, 0x02, 0x01, 0x00} }), part19.VerifyOptions{}, part19.ReasonMalformedEndFile},
		{"fail/empty signature", editEnd(func(ef *endFile) { ef.sig = nil }), part19.VerifyOptions{}, part19.ReasonMalformedEndFile},
		{"fail/bytes after the signature", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, part19.VerifyOptions{}, part19.ReasonMalformedEndFile},
		{"fail/end file cut", func(b []byte) []byte { return b[:len(b)-4] }, part19.VerifyOptions{}, part19.ReasonMalformedEndFile},
		{"fail/trace flag 2", func(b []byte) []byte {
			_, ef := splitFile(t, b)
			at := e + 4 + len(ef.cert) + (4-len(ef.cert)%4)%4 + 4 + len(ef.alg) + (4-len(ef.alg)%4)%4 + 4 + len(ef.digest)
			b[at+3] = 2
			return b
		}, part19.VerifyOptions{}, part19.ReasonMalformedEndFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := c.edit(bytes.Clone(signed))
			res := verify(t, file, name, c.opts)
			t.Logf("%v %s: %s", res.OK, res.Reason, res.Detail)
			if res.Reason != c.want || res.OK != (c.want == "") {
				t.Fatalf("got %v %q (%s), want %q", res.OK, res.Reason, res.Detail, c.want)
			}
		})
	}
}

// inTransaction is the offset of a byte inside the first message's
// transaction data: header 16, message header 16, then 8 bytes of main
// header and type.
func inTransaction(i int) int { return 16 + 16 + 8 + i }

// TestVerifyRenamedHook: the core leaves renamed and sender-mismatch to
// the caller, and gives it what it needs: the name verified against, and
// the trace's name signed under.
func TestVerifyRenamedHook(t *testing.T) {
	k := keyOf(t, "p256")
	signedAs := mustName(t, "TR00041A.000000017")
	file := samdSigned(t, k, signedAs, xdrFile(1, 1, someMessages()...), 0, 1)
	other := mustName(t, "TR00051A.000000017")
	res := verify(t, file, other, part19.VerifyOptions{})
	if !res.OK || res.Name != other || res.Trace.File != signedAs.String() || res.Certificate == nil {
		t.Fatalf("%+v", res)
	}
}

// TestOpenSSLSignedFiles: end files OpenSSL signs (`openssl dgst -sign`,
// written by the test's own encoder) verify in samd; RSA/MD5 and
// RSA/SHA-1 (§4.2.3's "1.2.840.113549.1.1.4 (RSA/MD5)" era) only when the
// caller allows legacy algorithms.
func TestOpenSSLSignedFiles(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	content := xdrFile(1, 1, someMessages()...)
	for _, c := range []struct {
		name, key, alg string
		trace          *trace
		legacy         bool
	}{
		{"ok/ECDSA P-256", "p256", "ecdsa-with-SHA256", nil, false},
		{"ok/ECDSA P-256 with a trace", "p256", "ecdsa-with-SHA256", &trace{"openssl", 5, name.String()}, false},
		{"ok/ECDSA P-384", "p384", "ecdsa-with-SHA384", nil, false},
		{"ok/RSA PSS", "rsa2048", "rsassa-pss-sha256", nil, false},
		{"ok/RSA PKCS1 SHA-256", "rsa2048", "sha256WithRSAEncryption", nil, false},
		{"ok/RSA-1024 MD5 (legacy)", "rsa1024", "md5WithRSAEncryption", nil, true},
		{"ok/RSA-1024 SHA-1 (legacy)", "rsa1024", "sha1WithRSAEncryption", nil, true},
		{"ok/RSA-2048 MD5 (legacy)", "rsa2048", "md5WithRSAEncryption", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := opensslSigned(t, keyOf(t, c.key), content, c.alg, c.trace)
			res := verify(t, file, name, part19.VerifyOptions{AllowLegacy: c.legacy})
			if !res.OK || res.Algorithm.String() != c.alg || (res.Trace == nil) != (c.trace == nil) {
				t.Fatalf("%v %s (%s), algorithm %s, trace %+v", res.OK, res.Reason, res.Detail, res.Algorithm, res.Trace)
			}
			if !c.legacy {
				return
			}
			if res := verify(t, file, name, part19.VerifyOptions{}); res.Reason != part19.ReasonLegacyAlgorithm {
				t.Fatalf("legacy end file without the allowance: %v %q", res.OK, res.Reason)
			}
			file[20] ^= 1
			if res := verify(t, file, name, part19.VerifyOptions{AllowLegacy: true}); res.Reason != part19.ReasonTampered {
				t.Fatalf("changed legacy file: %v %q", res.OK, res.Reason)
			}
		})
	}
	// A legacy algorithm on a key under 1024 bits, or a modern one under
	// 2048, is refused.
	file := opensslSigned(t, keyOf(t, "rsa1024"), content, "sha256WithRSAEncryption", nil)
	if res := verify(t, file, name, part19.VerifyOptions{AllowLegacy: true}); res.Reason != part19.ReasonUnsupportedAlgorithm {
		t.Fatalf("RSA-1024 with SHA-256: %v %q", res.OK, res.Reason)
	}
}

// TestAlgorithmIdentifiers: the AlgorithmIdentifiers samd writes are the
// DER OpenSSL encodes from the RFCs' definitions (RFC 5758 §3.2, RFC 3279
// §2.2.1, RFC 4055 §3.1 and §5).
func TestAlgorithmIdentifiers(t *testing.T) {
	for a := part19.ECDSAWithSHA256; a <= part19.RSAWithMD5; a++ {
		if got, want := a.AlgorithmIdentifier(), algorithmID(t, a.String()); !bytes.Equal(got, want) {
			t.Errorf("%s: %x, OpenSSL %x", a, got, want)
		}
	}
	if part19.AlgorithmUnknown.AlgorithmIdentifier() != nil || part19.Algorithm(99).Hash() != 0 {
		t.Fatal("an unknown algorithm has an identifier or a hash")
	}
}

// TestPrepare: the signer checks the header first, then that the End
// File position is the number of bytes given; it refuses keys and
// algorithms samd does not sign with.
func TestPrepare(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	k := keyOf(t, "p256")
	good := xdrFile(1, 1, someMessages()...)
	for _, c := range []struct {
		name string
		in   []byte
		opts part19.SignOptions
		want part19.Reason
	}{
		{"ok", good, part19.SignOptions{Now: now}, ""},
		{"ok/creation date within the skew", good, part19.SignOptions{Now: time.Unix(created-60, 0), MaxSkew: 5 * time.Minute}, ""},
		{"ok/messages walk", good, part19.SignOptions{Now: now, Bodies: testBodies}, ""},
		{"fail/tag mismatch", xdrFile(2, 1, someMessages()...), part19.SignOptions{Now: now}, part19.ReasonTagMismatch},
		{"fail/event type", xdrFile(1, 2, someMessages()...), part19.SignOptions{Now: now}, part19.ReasonEventType},
		{"fail/bad tag", xdrFile(7, 1, someMessages()...), part19.SignOptions{Now: now}, part19.ReasonBadHeader},
		{"fail/short", good[:10], part19.SignOptions{Now: now}, part19.ReasonBadHeader},
		{"fail/creation date beyond the skew", good, part19.SignOptions{Now: time.Unix(created-600, 0), MaxSkew: 5 * time.Minute}, part19.ReasonCreationDate},
		{"fail/End File position past the bytes given", good[:len(good)-4], part19.SignOptions{Now: now}, part19.ReasonEndPosition},
		{"fail/bytes after the End File position", append(bytes.Clone(good), 0, 0, 0, 0), part19.SignOptions{Now: now}, part19.ReasonEndPosition},
		{"fail/no room for a message", xdrFile(1, 1), part19.SignOptions{Now: now}, part19.ReasonEndPosition},
		{"fail/message of an unknown type", xdrFile(1, 1, message{num: 1, dev: "V01", typ: 99, len: 16}), part19.SignOptions{Now: now, Bodies: testBodies}, part19.ReasonBadMessage},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := part19.Prepare(bytes.NewReader(c.in), name, k.cert, c.opts)
			var pe *part19.Error
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "" && (p.Header().EndFile != uint32(len(c.in)) || p.Algorithm() != part19.ECDSAWithSHA256 || (p.Messages() != nil) != (c.opts.Bodies != nil)):
				t.Fatalf("header %+v, algorithm %s, messages %v", p.Header(), p.Algorithm(), p.Messages())
			case c.want != "" && (!errors.As(err, &pe) || pe.Reason != c.want):
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}

	// The header is checked before anything else is read: a bad header
	// followed by a failing reader is refused for its header.
	bad := xdrFile(2, 1, someMessages()...)[:16]
	_, err := part19.Prepare(io.MultiReader(bytes.NewReader(bad), failingReader{}), name, k.cert, part19.SignOptions{Now: now})
	var pe *part19.Error
	if !errors.As(err, &pe) || pe.Reason != part19.ReasonTagMismatch {
		t.Fatalf("header-first: %v", err)
	}
	// A reader's error is an error, not a refusal.
	_, err = part19.Prepare(io.MultiReader(bytes.NewReader(good[:40]), failingReader{}), name, k.cert, part19.SignOptions{Now: now})
	if !errors.Is(err, errRead) {
		t.Fatalf("reader error: %v", err)
	}

	for _, c := range []struct {
		name string
		key  string
		opts part19.SignOptions
	}{
		{"fail/never MD5", "rsa2048", part19.SignOptions{Now: now, Algorithm: part19.RSAWithMD5}},
		{"fail/never SHA-1", "rsa2048", part19.SignOptions{Now: now, Algorithm: part19.RSAWithSHA1}},
		{"fail/SHA-384 on P-256", "p256", part19.SignOptions{Now: now, Algorithm: part19.ECDSAWithSHA384}},
		{"fail/RSA on an EC key", "p256", part19.SignOptions{Now: now, Algorithm: part19.RSAWithSHA256}},
		{"fail/RSA-1024", "rsa1024", part19.SignOptions{Now: now}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := part19.Prepare(bytes.NewReader(good), name, keyOf(t, c.key).cert, c.opts); !errors.Is(err, part19.ErrUnsupportedKey) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := part19.Prepare(bytes.NewReader(good), name, k.cert, part19.SignOptions{}); err == nil {
		t.Fatal("Prepare without a clock")
	}
}

// TestSign: the signer's key must be the certificate's, the trace names
// the file, and a second signature (a retry with a new counter) is as
// good as the first.
func TestSign(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	k := keyOf(t, "p256")
	content := xdrFile(1, 1, someMessages()...)
	p, err := part19.Prepare(bytes.NewReader(content), name, k.cert, part19.SignOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  *testKey
		tr   part19.Trace
	}{
		{"fail/another key", keyOf(t, "p256-other"), part19.Trace{Instance: "samd-test", Counter: 1}},
		{"fail/no instance", k, part19.Trace{Counter: 1}},
		{"fail/instance not UTF-8", k, part19.Trace{Instance: "\xff", Counter: 1}},
		{"fail/instance too long", k, part19.Trace{Instance: strings.Repeat("i", 256), Counter: 1}},
		{"fail/trace names another file", k, part19.Trace{Instance: "samd-test", Counter: 1, File: "TR00041A.000000018"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := p.Sign(rand.Reader, c.key.key, c.tr); err == nil {
				t.Fatal("signed")
			}
		})
	}
	for counter := uint64(1); counter <= 2; counter++ {
		ef, err := p.Sign(rand.Reader, k.key, part19.Trace{Instance: "samd-test", Counter: counter, File: name.String()})
		if err != nil {
			t.Fatal(err)
		}
		res := verify(t, append(bytes.Clone(content), ef...), name, part19.VerifyOptions{})
		if !res.OK || res.Trace.Counter != counter {
			t.Fatalf("signature %d: %v %q %+v", counter, res.OK, res.Reason, res.Trace)
		}
	}
}

// TestMessages: with a body-length table the verifier walks the messages
// and reports message-number gaps, repeats and late arrivals per device
// (Device ID and Complement Device ID); without one it says it did not.
func TestMessages(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	k := keyOf(t, "p256")
	msgs := []message{
		{num: 41, dev: "V01", typ: 30}, {num: 42, dev: "V01", typ: 31}, {num: 44, dev: "V01", typ: 30}, // 43 missing
		{num: 7, dev: "V02", comp: 3, typ: 2}, {num: 7, dev: "V02", comp: 3, typ: 30}, // 7 twice
		{num: 5, dev: "V01", comp: 1, typ: 30}, {num: 4, dev: "V01", comp: 1, typ: 30}, // another device: 4 late
		{num: 0xffffffff, dev: "\x00\x01\x02", typ: 30}, {num: 0, dev: "\x00\x01\x02", typ: 30}, // across the wrap of 2^32
	}
	file := samdSigned(t, k, name, xdrFile(1, 1, msgs...), 0, 1)
	if res := verify(t, file, name, part19.VerifyOptions{}); !res.OK || res.Messages != nil {
		t.Fatalf("without a table: %v %q, messages %v", res.OK, res.Reason, res.Messages)
	}
	res := verify(t, file, name, part19.VerifyOptions{Bodies: testBodies})
	if !res.OK || res.Messages == nil {
		t.Fatalf("%v %q %s", res.OK, res.Reason, res.Detail)
	}
	var got []string
	for _, d := range res.Messages.Devices {
		got = append(got, fmt.Sprintf("%s %d..%d n=%d missing=%v dup=%v late=%v", d.Device, d.First, d.Last, d.Count, d.Missing, d.Duplicates, d.OutOfOrder))
	}
	want := []string{
		"0x000102/0 4294967295..0 n=2 missing=[] dup=[] late=[]",
		"V01/0 41..44 n=3 missing=[{43 43}] dup=[] late=[]",
		"V01/1 4..5 n=2 missing=[] dup=[] late=[4]",
		"V02/3 7..7 n=2 missing=[] dup=[7] late=[]",
	}
	if res.Messages.Messages != len(msgs) || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d messages\n%s\nwant\n%s", res.Messages.Messages, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Files samd signed without a table, whose messages do not walk.
	for _, c := range []struct {
		name string
		msgs []message
		edit func([]byte)
	}{
		{"fail/unknown transaction type", []message{{num: 1, dev: "V01", typ: 30}, {num: 2, dev: "V01", typ: 99, len: 16}}, nil},
		{"fail/transaction runs past the End File position", []message{{num: 1, dev: "V01", typ: 31, len: 16}}, nil},
		{"fail/type past the End File position", []message{{num: 1, dev: "V01", typ: 30}, {num: 2, dev: "V01", typ: 30, len: 0}}, func(b []byte) {
			binary.BigEndian.PutUint32(b[12:], uint32(len(b)-12)) // the last message keeps only 4 bytes of its transaction
		}},
		{"fail/bytes too few for a message header", []message{{num: 1, dev: "V01", typ: 30}, {num: 2, dev: "V01", typ: 30}}, func(b []byte) {
			binary.BigEndian.PutUint32(b[12:], uint32(len(b)-24)) // 8 bytes of the last message header
		}},
		{"fail/Device ID fill byte", []message{{num: 1, dev: "V01", typ: 30}}, func(b []byte) { b[16+11] = 'X' }},
	} {
		t.Run(c.name, func(t *testing.T) {
			content := xdrFile(1, 1, c.msgs...)
			if c.edit != nil {
				c.edit(content)
				content = content[:binary.BigEndian.Uint32(content[12:])]
			}
			file := samdSigned(t, k, name, content, 0, 1)
			if res := verify(t, file, name, part19.VerifyOptions{}); !res.OK {
				t.Fatalf("without a table: %q %s", res.Reason, res.Detail)
			}
			if res := verify(t, file, name, part19.VerifyOptions{Bodies: testBodies}); res.Reason != part19.ReasonBadMessage {
				t.Fatalf("got %v %q (%s)", res.OK, res.Reason, res.Detail)
			}
		})
	}
}

// TestBodyLengthsValidate: a table must place the type on an XDR word and
// give each type a length of whole words that holds it.
func TestBodyLengthsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		t    part19.BodyLengths
		ok   bool
	}{
		{"ok", *testBodies, true},
		{"fail/empty", part19.BodyLengths{}, false},
		{"fail/offset not a word", part19.BodyLengths{TypeOffset: 2, Lengths: map[uint32]uint32{1: 8}}, false},
		{"fail/offset too large", part19.BodyLengths{TypeOffset: part19.MaxTypeOffset + 4, Lengths: map[uint32]uint32{1: part19.MaxTypeOffset + 8}}, false},
		{"fail/length not words", part19.BodyLengths{Lengths: map[uint32]uint32{1: 6}}, false},
		{"fail/length without the type", part19.BodyLengths{TypeOffset: 8, Lengths: map[uint32]uint32{1: 8}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.t.Validate(); (err == nil) != c.ok {
				t.Fatalf("%v", err)
			}
			if !c.ok {
				if _, err := part19.Verify(bytes.NewReader(nil), part19.Name{}, part19.VerifyOptions{Bodies: &c.t}); err == nil {
					t.Fatal("Verify takes a bad table")
				}
			}
		})
	}
}

var errRead = errors.New("the line dropped")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errRead }

// TestVerifyReadError: a reader's error is Verify's error, not a verdict.
func TestVerifyReadError(t *testing.T) {
	name := mustName(t, "TR00041A.000000017")
	content := xdrFile(1, 1, someMessages()...)
	if _, err := part19.Verify(io.MultiReader(bytes.NewReader(content[:40]), failingReader{}), name, part19.VerifyOptions{}); !errors.Is(err, errRead) {
		t.Fatalf("got %v", err)
	}
}
