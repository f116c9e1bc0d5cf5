package dualcontrol

import (
	"strings"
	"testing"

	"github.com/samd-io/samd/errkind"
)

// TestStrictParams: proposal parameters decode only when every key is
// written once and exactly as the operation's schema spells it, at every
// level, embedded specs included; a duplicate key (encoding/json would
// keep the last one, so the text an officer reads first is not what is
// proposed) and a key that matches a field only ignoring case are
// refused as invalid input. Unknown keys stay refused.
func TestStrictParams(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		into      any
		ok        bool
	}{
		{"ok/topup", `{"device":"op/dev","amount":500,"currency":"NOK"}`, &TopUpParams{}, true},
		{"ok/embedded", `{"name":"k/a/b","version":1,"role":"mac","algorithm":"AES-128","components":2,"kcv":"ABCDEF","kcv_method":""}`, &ComponentsParams{}, true},
		{"ok/list", `{"ca":"x","profile":"server","csr_pem":"","dns_names":["a","a"]}`, &CertIssueParams{}, true},
		{"fail/duplicate", `{"device":"op/dev","amount":500,"currency":"NOK",` + strings.Repeat("\n", 200) + `"amount":900000000}`, &TopUpParams{}, false},
		{"fail/duplicate-embedded", `{"name":"k/a/b","version":1,"role":"mac","algorithm":"AES-128","components":2,"kcv":"ABCDEF","kcv":"123456"}`, &ComponentsParams{}, false},
		{"fail/case", `{"device":"op/dev","Amount":500,"currency":"NOK"}`, &TopUpParams{}, false},
		{"fail/case-after-exact", `{"device":"op/dev","amount":500,"currency":"NOK","AMOUNT":900000000}`, &TopUpParams{}, false},
		{"fail/case-embedded", `{"name":"k/a/b","version":1,"role":"mac","algorithm":"AES-128","components":2,"KCV":"ABCDEF"}`, &ComponentsParams{}, false},
		{"fail/unknown", `{"device":"op/dev","amount":500,"currency":"NOK","note":"x"}`, &TopUpParams{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := strict([]byte(c.raw), c.into)
			if (err == nil) != c.ok {
				t.Fatalf("%v", err)
			}
			if !c.ok && !strings.HasPrefix(c.name, "fail/unknown") && errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("kind %v: %v", errkind.Of(err), err)
			}
		})
	}
}
