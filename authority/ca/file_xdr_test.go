package ca_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/part19"
)

// xdrMessage is one message of a test file: its header's fields (§3.1
// "Message Header") and a transaction of the test's own making.
type xdrMessage struct {
	number, reportDate uint32
	device             string // Device ID, 3 bytes
	complement         uint32
	body               []byte
}

// placeholder is a 16-byte transaction: its type (an XDR unsigned int at
// offset 0, as the test environment's body lengths say) and 12 bytes.
func placeholder(typ uint32, fill byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, typ), bytes.Repeat([]byte{fill}, 12)...)
}

// xdrFile writes an XDR batch file without its end file, byte by byte
// from Part 19 §3.1's tables (not with samd's encoder): the File Header
// Tag and File event type as XDR integers 00 00 00 TT, the creation date,
// the End File position (the file's length), then each message header —
// message number, report date, Device ID as three bytes and one zero
// byte, complement device id — and its transaction.
func xdrFile(tag, created, event uint32, msgs []xdrMessage) []byte {
	var body []byte
	for _, m := range msgs {
		body = binary.BigEndian.AppendUint32(body, m.number)
		body = binary.BigEndian.AppendUint32(body, m.reportDate)
		body = append(body, m.device[0], m.device[1], m.device[2], 0)
		body = binary.BigEndian.AppendUint32(body, m.complement)
		body = append(body, m.body...)
	}
	b := binary.BigEndian.AppendUint32(nil, tag)
	b = binary.BigEndian.AppendUint32(b, created)
	b = binary.BigEndian.AppendUint32(b, event)
	b = binary.BigEndian.AppendUint32(b, uint32(16+len(body)))
	return append(b, body...)
}

// opaque is XDR variable-length opaque data (RFC 4506 §4.10): the length,
// the bytes, zero fill to four.
func opaque(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, (4-len(v)%4)%4)...)
}

// withBodies is a test environment whose verifier walks the messages:
// 16-byte transactions of types 30 and 32 with the type at offset 0.
func withBodies(c *ca.Config) {
	c.BodyLengths = &part19.BodyLengths{TypeOffset: 0, Lengths: map[uint32]uint32{30: 16, 32: 16}}
}

func (e *pkiEnv) signXDR(t *testing.T, who identity.Principal, signer, name string, content []byte) ca.SignedXDR {
	t.Helper()
	f, err := e.pki.SignXDR(context.Background(), who, signer, name, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *pkiEnv) verifyXDR(t *testing.T, name string, file []byte) ca.Verdict {
	t.Helper()
	v, err := e.pki.VerifyXDR(context.Background(), name, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// opensslVerifyXDR runs README's script (pki/part19/testdata/
// openssl-verify.sh): OpenSSL alone checks the signature over every byte
// before the signature field with the end file's certificate's key.
func opensslVerifyXDR(t *testing.T, file []byte, dgst ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "file")
	os.WriteFile(p, file, 0o600)
	script, _ := filepath.Abs("../../pki/part19/testdata/openssl-verify.sh")
	cmd := exec.Command("sh", append([]string{script, p}, dgst...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestXDRFiles signs Part 19 XDR files built in the test through the
// scheme CA with signers whose keys are in the token (ECDSA P-256,
// RSA-3072-PSS), has them verified, by samd and by OpenSSL alone, and
// then each kind of tampering refused with its own reason.
func TestXDRFiles(t *testing.T) {
	e := newPKIEnv(t, "xdr", 0, withBodies)
	ctx := context.Background()
	s1, err := e.pki.CreateSigner(ctx, "xdr-issuing", "op-a", "x1", keys.ECP256, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pki.CreateSigner(ctx, "xdr-issuing", "op-b", "x2", keys.RSA3072, 0, ""); err != nil {
		t.Fatal(err)
	}
	now := uint32(e.clk.Now().Unix())
	msgs := []xdrMessage{
		{41, now - 60, "V01", 0, placeholder(30, 0xA1)},
		{42, now - 50, "V01", 0, placeholder(30, 0xA2)},
		{7, now - 40, "V02", 3, placeholder(30, 0xA3)},
		{44, now - 30, "V01", 0, placeholder(30, 0xA4)}, // 43 never arrived
	}
	content := xdrFile(1, now, 1, msgs)
	end := len(content)

	name, err := e.pki.NextFileName(ctx, backA, "", part19.FileTypeCSC)
	if err != nil || name.String() != "TR01001A.000000001" {
		t.Fatalf("file name %v %v", name, err)
	}
	f := e.signXDR(t, backA, "x1", name.String(), content)
	signed := append(bytes.Clone(content), f.EndFile...)
	if f.Size != int64(end) || f.Counter != 1 || f.Algorithm != part19.ECDSAWithSHA256 || f.Messages == nil || f.Messages.Messages != 4 {
		t.Fatalf("signed %+v", f)
	}
	v := e.verifyXDR(t, name.String(), signed)
	if !v.OK || v.Trace == nil || *v.Trace != (ca.Trace{Instance: "samd-test-1", Counter: 1, File: name.String()}) || v.Serial != s1.Serial ||
		v.Signer.String() != "back-office/op-a/x1" || v.Algorithm != "ecdsa-with-SHA256" || v.Header.EndFile != uint32(end) || v.Size != int64(len(signed)) {
		t.Fatalf("verdict %+v", v)
	}
	// The message walk: per device, the numbers, and the hole at 43.
	var devices []string
	for _, d := range v.Messages.Devices {
		devices = append(devices, fmt.Sprintf("%s %d..%d n=%d missing=%v", d.Device, d.First, d.Last, d.Count, d.Missing))
	}
	if got := strings.Join(devices, "; "); got != "V01/0 41..44 n=3 missing=[{43 43}]; V02/3 7..7 n=1 missing=[]" {
		t.Fatalf("messages: %s", got)
	}
	// OpenSSL, with nothing but the file, accepts the signature.
	if out, err := opensslVerifyXDR(t, signed); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl dgst -verify: %v\n%s", err, out)
	}
	// RSA-3072: RSASSA-PSS, which OpenSSL checks too. CT transactions,
	// from op-b as level 4 middleware.
	ct := xdrFile(2, now, 1, []xdrMessage{{1, now, "C01", 0, placeholder(32, 0)}})
	fb := e.signXDR(t, backB, "x2", "MW02002A.000000001", ct)
	ctSigned := append(bytes.Clone(ct), fb.EndFile...)
	if v := e.verifyXDR(t, "MW02002A.000000001", ctSigned); !v.OK || v.Algorithm != "rsassa-pss-sha256" {
		t.Fatalf("RSA-PSS file: %+v", v)
	}
	if out, err := opensslVerifyXDR(t, ctSigned, "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:auto"); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl dgst -verify of the RSA-PSS file: %v\n%s", err, out)
	}

	// Each tampering, with its reason.
	s3, err := e.pki.CreateSigner(ctx, "xdr-issuing", "op-a", "x3", keys.ECP256, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(signed)) }
	at := func(off int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[off] = v; return b }
	}
	certLen := int(binary.BigEndian.Uint32(signed[end:]))
	afterCert := end + 4 + (certLen+3)&^3
	for _, c := range []struct {
		name, file string
		body       []byte
		want       string
	}{
		{"fail/a byte of the header (creation date)", name.String(), edit(at(7, signed[7]^1)), ca.ReasonTampered},
		{"fail/a byte of a message", name.String(), edit(at(16+16+5, signed[16+16+5]^0x80)), ca.ReasonTampered},
		{"fail/the byte before the end file", name.String(), edit(at(end-1, signed[end-1]^1)), ca.ReasonTampered},
		{"fail/tag 2 in a Z = 1 file", name.String(), edit(at(3, 2)), string(part19.ReasonTagMismatch)},
		{"fail/event type 2", name.String(), edit(at(11, 2)), string(part19.ReasonEventType)},
		{"fail/tag with bits above its byte", name.String(), edit(at(0, 1)), string(part19.ReasonBadHeader)},
		{"fail/End File position moved back", name.String(), edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[12:], uint32(end-16)); return b }), string(part19.ReasonEndPosition)},
		{"fail/End File position moved on", name.String(), edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[12:], uint32(end+4)); return b }), string(part19.ReasonEndPosition)},
		{"fail/creation date in the future", name.String(), edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], now+3600); return b }), string(part19.ReasonCreationDate)},
		{"fail/certificate swapped for the operator's other signer's", name.String(),
			append(opaque(bytes.Clone(content), s3.Cert), signed[afterCert:]...), ca.ReasonBadSignature},
		{"fail/the end file cut short", name.String(), signed[:len(signed)-3], string(part19.ReasonMalformedEndFile)},
		{"fail/bytes after the signature", name.String(), append(bytes.Clone(signed), 0, 0, 0, 0), string(part19.ReasonMalformedEndFile)},
		{"fail/no end file", name.String(), content, string(part19.ReasonEndPosition)},
		{"fail/renamed to another sender", "TR02001A.000000001", signed, ca.ReasonSenderMismatch},
		{"fail/renamed to a hardware type the sender does not send as", "MW01001A.000000001", signed, ca.ReasonSenderMismatch},
		{"fail/renamed to another sequence number", "TR01001A.000000009", signed, ca.ReasonRenamed},
		{"fail/renamed to file type 2", "TR01002A.000000001", signed, string(part19.ReasonTagMismatch)},
		{"fail/a name that breaks 3.1", "TR01001A.00000000X", signed, ca.ReasonBadName},
		{"fail/a hardware type 3.1 does not name", "TX01001A.000000001", signed, ca.ReasonBadName},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.verifyXDR(t, c.file, c.body)
			if v.OK || v.Reason != c.want {
				t.Fatalf("got ok=%v %s (%s), want %s", v.OK, v.Reason, v.Detail, c.want)
			}
		})
	}
	// OpenSSL refuses the changed byte too.
	if out, err := opensslVerifyXDR(t, edit(at(16+16+5, signed[16+16+5]^0x80))); err == nil || !strings.Contains(out, "Verification failure") {
		t.Fatalf("openssl dgst -verify of a changed file: %v\n%s", err, out)
	}

	t.Run("fail/refusals before signing", func(t *testing.T) {
		future := xdrFile(1, now+3600, 1, msgs)
		unknownType := xdrFile(1, now, 1, []xdrMessage{{1, now, "V01", 0, placeholder(99, 0)}})
		for _, c := range []struct {
			name, signer, file string
			who                identity.Principal
			body               []byte
			kind               errkind.Kind
			reason             part19.Reason
		}{
			{"tag 2 in a Z = 1 file", "x1", "TR01001A.000000002", backA, xdrFile(2, now, 1, msgs), errkind.InvalidInput, part19.ReasonTagMismatch},
			{"event type 2", "x1", "TR01001A.000000002", backA, xdrFile(1, now, 2, msgs), errkind.InvalidInput, part19.ReasonEventType},
			{"creation date in the future", "x1", "TR01001A.000000002", backA, future, errkind.InvalidInput, part19.ReasonCreationDate},
			{"creation date before the signer", "x1", "TR01001A.000000002", backA, xdrFile(1, now-86400, 1, msgs), errkind.InvalidInput, part19.ReasonCreationDate},
			{"an end file already", "x1", "TR01001A.000000002", backA, signed, errkind.InvalidInput, part19.ReasonEndPosition},
			{"shorter than its End File position", "x1", "TR01001A.000000002", backA, content[:end-4], errkind.InvalidInput, part19.ReasonEndPosition},
			{"a transaction type without a length", "x1", "TR01001A.000000002", backA, unknownType, errkind.InvalidInput, part19.ReasonBadMessage},
			{"another operator's PTOID", "x1", "TR02001A.000000002", backA, content, errkind.Denied, ""},
			{"a name that breaks 3.1", "x1", "TR01003A.000000002", backA, content, errkind.InvalidInput, ""},
		} {
			_, err := e.pki.SignXDR(ctx, c.who, c.signer, c.file, bytes.NewReader(c.body))
			var refused *part19.Error
			if errkind.Of(err) != c.kind || c.reason != "" && (!errors.As(err, &refused) || refused.Reason != c.reason) {
				t.Errorf("%s: %v, want %v %s", c.name, err, c.kind, c.reason)
			}
		}
		var ne *part19.NameError
		if _, err := e.pki.SignXDR(ctx, backA, "x1", "TR01003A.000000002", bytes.NewReader(content)); !errors.As(err, &ne) || ne.Field != part19.FieldFileType {
			t.Errorf("the refused name does not name the file type: %v", err)
		}
	})

	t.Run("fail/expired signer", func(t *testing.T) {
		s4, err := e.pki.CreateSigner(ctx, "xdr-issuing", "op-a", "x4", keys.ECP256, 24*time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(s4.Cert)
		ok := e.signXDR(t, backA, "x4", "TR01001A.000000003", content)
		e.clk.Add(48 * time.Hour)
		defer e.clk.Add(-48 * time.Hour)
		// A file signed while the signer was valid still verifies ...
		if v := e.verifyXDR(t, "TR01001A.000000003", append(bytes.Clone(content), ok.EndFile...)); !v.OK {
			t.Fatalf("a file signed before the signer expired: %s (%s)", v.Reason, v.Detail)
		}
		late := xdrFile(1, uint32(e.clk.Now().Unix()), 1, msgs)
		if _, err := e.pki.SignXDR(ctx, backA, "x4", "TR01001A.000000004", bytes.NewReader(late)); errkind.Of(err) != errkind.Denied {
			t.Fatalf("signing with an expired signer: %v", err)
		}
		// ... one its key made after expiry (as a stolen key would) does not.
		ref, _ := keys.NewRef("sign/op-a/x4", 1)
		k, _ := e.store.Key(ref)
		signer, _ := e.store.Signer(k)
		n, _ := part19.ParseName("TR01001A.000000004", nil)
		p, err := part19.Prepare(bytes.NewReader(late), n, cert, part19.SignOptions{Now: e.clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ef, err := p.Sign(rand.Reader, signer, part19.Trace{Instance: "stolen", Counter: 1})
		if err != nil {
			t.Fatal(err)
		}
		if v := e.verifyXDR(t, "TR01001A.000000004", append(late, ef...)); v.Reason != ca.ReasonExpired {
			t.Fatalf("an end file made after expiry: %s (%s)", v.Reason, v.Detail)
		}
	})

	t.Run("fail/revoked signer", func(t *testing.T) {
		if _, _, err := e.pki.Revoke(ctx, "xdr-issuing", s1.Serial, 1, 0); err != nil {
			t.Fatal(err)
		}
		if v := e.verifyXDR(t, name.String(), signed); v.Reason != ca.ReasonRevoked || !strings.Contains(v.Detail, "keyCompromise") {
			t.Fatalf("file of a revoked signer: %s (%s)", v.Reason, v.Detail)
		}
		if _, err := e.pki.SignXDR(ctx, backA, "x1", "TR01001A.000000005", bytes.NewReader(content)); errkind.Of(err) != errkind.Denied {
			t.Fatalf("signing with a revoked signer: %v", err)
		}
	})
}

// TestXDRWithoutBodyLengths: without a body-length table the verifier
// checks the header and the end file only, and its verdict says the
// messages were not walked.
func TestXDRWithoutBodyLengths(t *testing.T) {
	e := newPKIEnv(t, "xdr-plain", 0)
	ctx := context.Background()
	if _, err := e.pki.CreateSigner(ctx, "xdr-plain-issuing", "op-a", "p1", keys.ECP256, 0, ""); err != nil {
		t.Fatal(err)
	}
	now := uint32(e.clk.Now().Unix())
	// A transaction no table describes: 20 bytes of type 99.
	content := xdrFile(1, now, 1, []xdrMessage{{1, now, "V01", 0, append(placeholder(99, 1), 0, 0, 0, 0)}})
	f := e.signXDR(t, backA, "p1", "TR01001A.000000001", content)
	v := e.verifyXDR(t, "TR01001A.000000001", append(content, f.EndFile...))
	if !v.OK || v.Messages != nil || f.Messages != nil {
		t.Fatalf("verdict %+v, messages %+v", v, v.Messages)
	}
}

// TestXDRLegacySenders: end files OpenSSL signed with RSA/MD5 and
// RSA/SHA-1 (§4.2.3's "1.2.840.113549.1.1.4 (RSA/MD5)") verify for a
// legacy sender (op-b, PTOID 0200) and are refused as legacy-algorithm
// for another (op-a).
func TestXDRLegacySenders(t *testing.T) {
	e := newPKIEnv(t, "xdr-legacy", 0)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "legacy.key")
	openssl(t, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", keyFile)
	csr := filepath.Join(dir, "legacy.csr")
	openssl(t, "req", "-new", "-key", keyFile, "-subj", "/CN=legacy translator", "-outform", "DER", "-out", csr)
	csrDER, _ := os.ReadFile(csr)
	now := uint32(e.clk.Now().Unix())
	content := xdrFile(1, now, 1, []xdrMessage{{1, now, "L01", 0, placeholder(30, 0)}})
	for _, op := range []struct {
		who  identity.Principal
		name string
		ok   bool
	}{
		{identity.Principal{Role: identity.RoleBackOffice, Operator: "op-b", Device: "legacy-1"}, "TR02001A.000000001", true},
		{identity.Principal{Role: identity.RoleBackOffice, Operator: "op-a", Device: "legacy-1"}, "TR01001A.000000001", false},
	} {
		c, err := e.pki.Issue(context.Background(), ca.IssueRequest{CA: "xdr-legacy-issuing", Profile: pki.ProfileSigner, CSR: csrDER, Principal: op.who})
		if err != nil {
			t.Fatal(err)
		}
		for _, alg := range []struct {
			name, dgst, algID string
			sum               func([]byte) []byte
		}{
			{"RSA/MD5", "-md5", "300d06092a864886f70d0101040500", func(b []byte) []byte { s := md5.Sum(b); return s[:] }},
			{"RSA/SHA-1", "-sha1", "300d06092a864886f70d0101050500", func(b []byte) []byte { s := sha1.Sum(b); return s[:] }},
		} {
			t.Run(op.who.Operator+"/"+alg.name, func(t *testing.T) {
				// The end file by hand: certificate, algorithm, digest, no
				// trace; OpenSSL signs every byte before the signature.
				algID, _ := hex.DecodeString(alg.algID)
				signedPart := opaque(nil, c.Cert)
				signedPart = opaque(signedPart, algID)
				signedPart = opaque(signedPart, alg.sum(content))
				signedPart = binary.BigEndian.AppendUint32(signedPart, 0)
				region := append(bytes.Clone(content), signedPart...)
				in, sig := filepath.Join(dir, "region"), filepath.Join(dir, "sig")
				os.WriteFile(in, region, 0o600)
				openssl(t, "dgst", alg.dgst, "-sign", keyFile, "-out", sig, in)
				sigBytes, _ := os.ReadFile(sig)
				file := opaque(region, sigBytes)
				v := e.verifyXDR(t, op.name, file)
				switch {
				case op.ok && !v.OK:
					t.Fatalf("legacy sender %s: %s (%s)", op.who.Operator, v.Reason, v.Detail)
				case !op.ok && v.Reason != ca.ReasonLegacy:
					t.Fatalf("sender %s, not legacy: ok=%v %s (%s)", op.who.Operator, v.OK, v.Reason, v.Detail)
				case op.ok && (v.Trace != nil || v.Signer.Operator != "op-b"):
					t.Fatalf("verdict %+v", v)
				}
			})
		}
	}
}

// TestFileNameWrap: a series at 999999998 hands out 999999999, then
// 000000000 (§3.1: "It is reset to 0 at its upper limit"), then 000000001;
// another file type of the same sender has a series of its own.
func TestFileNameWrap(t *testing.T) {
	e := newPKIEnv(t, "wrap", 0)
	ctx := context.Background()
	// The store as a samd left it near the upper limit.
	db, err := sql.Open("sqlite", "file:"+e.statePath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sequence (name, last) VALUES (?, 999999998)`, ca.SequenceName(part19.Series{HardwareType: "TR", PTOID: 100, FileType: 1})); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var got []string
	for range 3 {
		n, err := e.pki.NextFileName(ctx, backA, "", part19.FileTypeCSC)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.String())
	}
	if ct, err := e.pki.NextFileName(ctx, backA, "", part19.FileTypeCT); err != nil || ct.String() != "TR01002A.000000001" {
		t.Fatalf("CT series: %v %v", ct, err)
	}
	if strings.Join(got, " ") != "TR01001A.999999999 TR01001A.000000000 TR01001A.000000001" {
		t.Fatalf("names across the wrap: %v", got)
	}
	for _, c := range []struct {
		name string
		who  identity.Principal
		hw   part19.HardwareType
		z    part19.FileType
		kind errkind.Kind
	}{
		{"fail/hardware type the operator does not send as", backA, part19.HardwareMW, 1, errkind.Denied},
		{"fail/no hardware type for a sender of two", backB, "", 1, errkind.InvalidInput},
		{"fail/file type 3", backA, "", 3, errkind.InvalidInput},
		{"fail/no sender", identity.Principal{Role: identity.RoleBackOffice, Operator: "op-c", Device: "bo"}, "", 1, errkind.Denied},
	} {
		if _, err := e.pki.NextFileName(ctx, c.who, c.hw, c.z); errkind.Of(err) != c.kind {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
		}
	}
	if n, err := e.pki.NextFileName(ctx, backB, part19.HardwareMW, part19.FileTypeCSC); err != nil || n.String() != "MW02001A.000000001" {
		t.Fatalf("op-b as MW: %v %v", n, err)
	}
}
