package authority

import (
	"context"
	"errors"
	"fmt"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/mac"
)

// cardChecks are the failed DAC verifications reserved for the objects of
// one request, by object index ("" where none was), before their DACs
// are computed (state.Store.ReserveCardFailures): a card already at its
// profile's limit is refused, and no number of requests in flight at once
// gets past the limit. A 16-bit DAC is guessed once in 65 536 tries; the
// limit bounds a forger's chance on one card to limit/65 536, where the
// busy back-off alone would allow tens of thousands of tries a day.
type cardChecks struct {
	keys    []string
	refused int
}

// cardKey names a card's count: the profile's key (every version; a key
// set) and the card id. Profiles that share a key share the count.
func cardKey(p mac.Profile, card []byte) string { return p.Key().Name.String() + "|" + cardHex(card) }

// reserveCards reserves a failed verification for each object of an
// apta-dac profile that passed its checks (out[i].Err nil), failing those
// whose card is at its limit.
func (a *Authority) reserveCards(ctx context.Context, p mac.Profile, objs []mac.Object, out []ObjectResult) (*cardChecks, error) {
	c := &cardChecks{}
	limit := p.CardFailureLimit()
	if limit == 0 {
		return c, nil
	}
	if a.state == nil {
		return nil, errors.New("authority: a DAC profile's card limit needs a state store")
	}
	var idx []int
	var ks []string
	for i, o := range objs {
		if out[i].Err == nil {
			idx = append(idx, i)
			ks = append(ks, cardKey(p, o.CardID))
		}
	}
	if len(ks) == 0 {
		return c, nil
	}
	ok, err := a.state.ReserveCardFailures(ctx, ks, limit)
	if err != nil {
		return nil, err
	}
	c.keys = make([]string, len(objs))
	for j, i := range idx {
		if !ok[j] {
			out[i].Err = refuse(errkind.Limit, ReasonCardFailures, fmt.Sprintf("card %s has had %d failed DAC verifications under %s: it is refused (replace the card; report it for the negative list)",
				cardHex(objs[i].CardID), limit, p.Key().Name))
			c.refused++
			continue
		}
		c.keys[i] = ks[j]
	}
	return c, nil
}

// keep leaves object i's reservation counted: its DAC did not verify.
func (c *cardChecks) keep(i int) {
	if c.keys != nil {
		c.keys[i] = ""
	}
}

// release gives back every reservation not kept: the DACs that verified,
// and those never computed because the request failed first. A release
// the store refuses leaves the counts high, on the scheme's side.
func (c *cardChecks) release(ctx context.Context, a *Authority) {
	var ks []string
	for _, k := range c.keys {
		if k != "" {
			ks = append(ks, k)
		}
	}
	if len(ks) > 0 {
		_ = a.state.ReleaseCardFailures(context.WithoutCancel(ctx), ks)
	}
}
