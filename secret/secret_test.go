package secret_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/samd-io/samd/secret"
)

// TestNoPathPrintsTheSecret prints a secret, alone and inside a struct,
// through every formatting path a developer might reach for, and looks for
// the secret in raw, hex and decimal form.
func TestNoPathPrintsTheSecret(t *testing.T) {
	raw := []byte{0xA8, 0xDD, 0x63, 0xA3, 0xB8, 0x9D, 0x54, 0xB3, 0x7C, 0xA8, 0x02, 0x47, 0x3F, 0xDA, 0x91, 0x75}
	s := secret.Copy(raw)
	type wrapper struct {
		Name string
		Key  secret.Bytes
		Ptr  *secret.Bytes
	}
	w := wrapper{Name: "k", Key: s, Ptr: &s}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, w), fmt.Sprintf(verb, &w))
	}
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintln(w), s.String(), s.GoString())

	var logBuf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logBuf, nil), slog.NewTextHandler(&logBuf, nil)} {
		l := slog.New(h)
		l.Info("m", "key", s, "w", w, slog.Any("any", s))
	}
	outputs = append(outputs, logBuf.String())

	j, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	txt, _ := s.MarshalText()
	outputs = append(outputs, string(txt))

	forms := []string{string(raw), hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)), "168 221 99", "a8 dd 63"}
	for _, out := range outputs {
		for _, f := range forms {
			if strings.Contains(strings.ToLower(out), strings.ToLower(f)) {
				t.Errorf("output %q contains the secret in the form %q", out, f)
			}
		}
	}
	if !strings.Contains(outputs[0], secret.Redacted) {
		t.Errorf("%%v printed %q, want the redaction marker", outputs[0])
	}
}

func TestWipe(t *testing.T) {
	b := []byte{1, 2, 3}
	s := secret.New(b)
	if s.Len() != 3 || !bytes.Equal(s.Reveal(), []byte{1, 2, 3}) {
		t.Fatal("Reveal does not return the secret")
	}
	s.Wipe()
	if !bytes.Equal(b, []byte{0, 0, 0}) {
		t.Fatalf("after Wipe the buffer is %v", b)
	}
}
