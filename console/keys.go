package console

import (
	"net/http"
	"sort"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// soon is how close to the end of its validity window a key is
// highlighted; a key with a usage limit is highlighted from this share
// of it used.
const (
	soon      = 30 * 24 * time.Hour
	usageWarn = 0.9
)

// keyRow is a key version as the keys page shows it.
type keyRow struct {
	*samdv1.InventoryKey
	// State is "" for a key in service, else why it is highlighted:
	// expired, expires soon, retired, not in policy, at or near its usage
	// limit.
	State string
	Bad   bool
	// Note says what a key that no key entry names is for, when samd
	// itself uses it (the audit, CA, session-sealing and signing keys
	// serve no caller's operation, so no policy names them).
	Note string
	// Used is the share of the usage limit used, in percent (0 without a
	// limit).
	Used int
}

// ownRoles are the roles of the keys samd uses itself, which no key
// entry names.
var ownRoles = map[string]string{"audit": "samd's audit checkpoints", "ca": "a CA of the scheme PKI", "session-seal": "samd's card sessions",
	"sign": "a transaction-file signer"}

// keys shows the key inventory: every key version in the HSM with its
// role, check values, policy window and uses; never a value.
func (c *Console) keys(r *http.Request, v *view) error {
	res, err := call(c.api.officers.Inventory(as(r), connect.NewRequest(&samdv1.InventoryRequest{})))
	if err != nil {
		return err
	}
	var rows []keyRow
	for _, k := range res.GetKeys() {
		row := keyRow{InventoryKey: k}
		if lim := k.GetUsageLimit(); lim > 0 {
			row.Used = int(min(100*k.GetUses()/lim, 100))
		}
		until, _ := time.Parse(time.RFC3339, k.GetValidUntil())
		switch {
		case k.GetRetired():
			row.State, row.Bad = "retired", true
		case !k.GetInPolicy() && ownRoles[k.GetRole()] != "":
			row.Note = "samd's own: " + ownRoles[k.GetRole()]
		case !k.GetInPolicy():
			row.State = "no key entry: serves nothing"
		case !until.IsZero() && !v.Now.Before(until):
			row.State, row.Bad = "expired", true
		case !until.IsZero() && until.Sub(v.Now) < soon:
			row.State = "expires soon: " + left(until.Sub(v.Now))
		case k.GetUsageLimit() > 0 && k.GetUses() >= k.GetUsageLimit():
			row.State, row.Bad = "usage limit reached", true
		case k.GetUsageLimit() > 0 && float64(k.GetUses()) >= usageWarn*float64(k.GetUsageLimit()):
			row.State = "near its usage limit"
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].GetName() != rows[j].GetName() {
			return rows[i].GetName() < rows[j].GetName()
		}
		return rows[i].GetVersion() < rows[j].GetVersion()
	})
	v.Data = rows
	return nil
}
