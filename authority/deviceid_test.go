package authority_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state/sqlite"
)

// TestDeviceIDs: an officer's top-up, read and reset, and the officers'
// allowance.topup proposal, take a device id "<operator>/<device>" only
// by identity's rule: "." and "..", a '/', a NUL or more than 64
// characters in either id are invalid-input, and nothing is stored.
func TestDeviceIDs(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	a := authority.New(authority.Config{State: st})
	o, err := dualcontrol.New(dualcontrol.Config{Registry: []string{"op/so-1"}, Quorum: map[string]int{dualcontrol.OpAllowanceTopUp: 1}, State: st})
	if err != nil {
		t.Fatal(err)
	}
	officer := identity.Principal{Role: identity.RoleOfficer, Operator: "op", Device: "so-1"}
	nok := policies.Amount{Minor: 100, Currency: "NOK"}
	for _, c := range []struct {
		name, device string
		kind         errkind.Kind // of the direct top-up; 0: none
	}{
		{"ok/device", "op/term-1", 0},
		{"fail/dotdot-path", "op/../../etc/x", errkind.InvalidInput},
		{"fail/dotdot", "op/..", errkind.InvalidInput},
		{"fail/dot", "op/.", errkind.InvalidInput},
		{"fail/nul", "op/term\x00-1", errkind.InvalidInput},
		{"fail/100kb", "op/" + strings.Repeat("a", 100<<10), errkind.InvalidInput},
		{"fail/no-device", "op", errkind.InvalidInput},
		{"fail/other-operator", "other/term-1", errkind.Denied},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.TopUpAllowance(ctx, officer, policies.Grant{}, c.device, nok, 0)
			if c.kind == 0 && err != nil || c.kind != 0 && errkind.Of(err) != c.kind {
				t.Fatalf("top-up: %v, want kind %v", err, c.kind)
			}
			if _, err := a.Allowance(ctx, officer, policies.Grant{}, c.device); c.kind == errkind.InvalidInput && errkind.Of(err) != c.kind {
				t.Fatalf("read: %v", err)
			}
			if _, err := a.ResetAllowance(ctx, officer, policies.Grant{}, c.device); c.kind == errkind.InvalidInput && errkind.Of(err) != c.kind {
				t.Fatalf("reset: %v", err)
			}
			params, _ := json.Marshal(dualcontrol.TopUpParams{Device: c.device, Amount: 100, Currency: "NOK"})
			_, err = o.Propose(ctx, officer, dualcontrol.OpAllowanceTopUp, params)
			if c.kind == errkind.InvalidInput && errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("proposal: %v, want invalid-input", err)
			}
		})
	}
	all, err := st.Allowances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range all {
		if _, err := identity.ParseDeviceID(al.Device); err != nil {
			t.Errorf("stored allowance of an invalid device %.40q", al.Device)
		}
	}
}
