package value

import (
	"slices"

	"github.com/samd-io/samd/errkind"
)

// TxType is a transaction type of Håndbok 206 Part 19 §1.3.2 ("The
// indicated number is the Transaction type field in the transaction
// header", §5). A value record carries the type of the transaction the
// terminal reports for the value samd authorised.
type TxType uint8

// txType is one row of §1.3.2 that moves value onto a card (or pays it
// back), with the purposes samd authorises it for.
type txType struct {
	name     string
	purposes []string
}

// txTypes are the rows of §1.3.2 whose transactions create value or sell
// a product, by the seed's number and description. The others (18 activity
// management, 20 AutoRenew management, 21 card management, 23 holder
// information, 24 non-interoperable operation, 25 garbage collection, 30–33
// check-in and check-out, 36 black list management, 12 fare media
// exchange) move no value, and samd authorises none of them.
var txTypes = map[TxType]txType{
	2:  {"CSC Fare Media Sale", []string{"sale"}},
	3:  {"CSC Fare Product sale", []string{"sale"}},
	4:  {"CSC tPurse Product sale", []string{"sale", "load"}},
	5:  {"CT Fare Product sale", []string{"sale"}},
	6:  {"MT Fare Product sale", []string{"sale"}},
	7:  {"CSC Fare Media refund", []string{"refund"}},
	8:  {"CSC Fare Product refund", []string{"refund"}},
	9:  {"CSC tPurse Product refund", []string{"refund"}},
	10: {"CT Fare Product refund", []string{"refund"}},
	11: {"CSC tPurse Product Reload", []string{"load"}},
	13: {"CSC Fare Product Exchange", []string{"sale"}},
	14: {"CSC tPurse Product Exchange", []string{"load"}},
	15: {"CSC Fare Product AutoRenew", []string{"sale"}},
	16: {"CSC tPurse Product AutoLoad", []string{"load"}},
	19: {"CSC tPurse management", []string{"load", "refund"}},
}

// Name is the seed's name of the type ("CSC tPurse Product Reload"), or
// "" for a type samd does not authorise.
func (t TxType) Name() string { return txTypes[t].name }

// CheckTransaction reports whether a value authorisation for purpose
// ("load", "sale" or "refund") may carry transaction type t, refusing with
// invalid input otherwise.
func CheckTransaction(purpose string, t TxType) error {
	tt, ok := txTypes[t]
	switch {
	case t == 0:
		return errkind.Errorf(errkind.InvalidInput, "value: a transaction type (Håndbok 206 Part 19 §1.3.2) is required")
	case !ok:
		return errkind.Errorf(errkind.InvalidInput, "value: Part 19 transaction type %d moves no value (§1.3.2); samd authorises value only for %v", t, TxTypes())
	case !slices.Contains(tt.purposes, purpose):
		return errkind.Errorf(errkind.InvalidInput, "value: Part 19 transaction type %d (%s) is not a %s", t, tt.name, purpose)
	}
	return nil
}

// TxTypes lists the types samd authorises value for, in order.
func TxTypes() []TxType {
	out := make([]TxType, 0, len(txTypes))
	for t := range txTypes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
