package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
)

// param is one parameter of a proposal, in the order of its canonical
// JSON.
type param struct {
	Key, Value string
	// Check marks what officers compare with what they hold: key check
	// values and digests (a wrapped key or a TR-31 block is shown by the
	// API only as its SHA-256; a policy version is a digest).
	Check bool
	// Block: a value of several lines (a CSR, a certificate).
	Block bool
}

var (
	checkKey = regexp.MustCompile(`(?i)kcv|digest|sha256|fingerprint|hash`)
	digest   = regexp.MustCompile(`^(sha256:)?[0-9A-Fa-f]{64}$`)
)

// params lists a proposal's parameters generically from their canonical
// JSON: any operation, one row per top-level field. A value that is not a
// string is shown as its compact JSON. Parameters that are not a JSON
// object are one row holding them as they are.
func params(canonical string) []param {
	dec := json.NewDecoder(strings.NewReader(canonical))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return []param{{Key: "parameters", Value: canonical, Block: strings.Contains(canonical, "\n")}}
	}
	var out []param
	for dec.More() {
		t, err := dec.Token()
		key, ok := t.(string)
		var raw json.RawMessage
		if err != nil || !ok || dec.Decode(&raw) != nil {
			return []param{{Key: "parameters", Value: canonical}}
		}
		p := param{Key: key}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			p.Value = s
		} else {
			var b bytes.Buffer
			_ = json.Compact(&b, raw)
			p.Value = b.String()
		}
		p.Check = p.Value != "" && (checkKey.MatchString(key) || digest.MatchString(p.Value))
		p.Block = strings.Contains(p.Value, "\n")
		out = append(out, p)
	}
	return out
}

// wrappedLine is a line of a result or an audit reason that carries
// wrapped key material: key.export's "block: …" (a TR-31 block or an
// AES-KWP blob for the partner), or a "wrapped: …" value.
var wrappedLine = regexp.MustCompile(`(?m)^(\s*(?:block|wrapped):\s*)(\S+)[ \t]*$`)

// redact shows the wrapped key material in a proposal's result or an
// audit record's reason as its SHA-256, as the API shows it in
// parameters: a page never holds a wrapped key, and officers compare the
// digest with the file `samd admin proposal ID --out FILE` writes.
func redact(s string) string {
	return wrappedLine.ReplaceAllStringFunc(s, func(line string) string {
		m := wrappedLine.FindStringSubmatch(line)
		sum := sha256.Sum256([]byte(m[2]))
		return m[1] + "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:]))
	})
}
