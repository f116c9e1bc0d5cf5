package authority_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state/sqlite"
)

// TestTopUpLimitPerDay: admin.topup_limit bounds what one officer tops
// up alone in a day, not per call: three top-ups at the limit are one
// limit's worth and two refusals (the finding: 3 × 1 000 000 000 taken
// where one 1 000 000 001 was refused), spread over devices too; a
// refusal names the proposal and changes no balance; another officer,
// and the next UTC day, start from zero.
func TestTopUpLimitPerDay(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	a := authority.New(authority.Config{State: st, Now: func() time.Time { return now }})
	o1 := identity.Principal{Role: identity.RoleOfficer, Operator: "op", Device: "so-1"}
	o2 := identity.Principal{Role: identity.RoleOfficer, Operator: "op", Device: "so-2"}
	const limit = 1_000_000_000
	top := func(who identity.Principal, device string, amount int64) error {
		_, err := a.TopUpAllowance(ctx, who, policies.Grant{}, device, policies.Amount{Minor: amount, Currency: "NOK"}, limit)
		return err
	}
	for _, c := range []struct {
		name   string
		who    identity.Principal
		device string
		amount int64
		later  time.Duration
		ok     bool
	}{
		{"ok/at-the-limit", o1, "op/t-1", limit, 0, true},
		{"fail/again-at-the-limit", o1, "op/t-1", limit, 0, false},
		{"fail/a-third-time", o1, "op/t-1", limit, 0, false},
		{"fail/another-device", o1, "op/t-2", 1, 0, false},
		{"fail/one-call-above", o2, "op/t-2", limit + 1, 0, false},
		{"ok/another-officer", o2, "op/t-2", limit, 0, true},
		{"ok/the-next-day", o1, "op/t-1", limit, 2 * time.Hour, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			now = now.Add(c.later)
			before, _ := st.Allowance(ctx, c.device)
			err := top(c.who, c.device, c.amount)
			after, _ := st.Allowance(ctx, c.device)
			if c.ok {
				if err != nil || after.Balance != before.Balance+c.amount {
					t.Fatalf("top-up: %v, balance %d -> %d", err, before.Balance, after.Balance)
				}
				return
			}
			if errkind.Of(err) != errkind.Denied || !strings.Contains(err.Error(), "allowance.topup") || after.Balance != before.Balance {
				t.Fatalf("top-up past the day's limit: %v, balance %d -> %d", err, before.Balance, after.Balance)
			}
		})
	}
	// Without a limit, no count.
	if _, err := a.TopUpAllowance(ctx, o1, policies.Grant{}, "op/t-3", policies.Amount{Minor: 5 * limit, Currency: "NOK"}, 0); err != nil {
		t.Fatalf("a top-up without a limit: %v", err)
	}
}
