package part19

import (
	"cmp"
	"slices"
)

// Range is an inclusive range of sequence numbers. From > To when the
// range crosses the wrap (e.g. 999999998..0).
type Range struct {
	From uint32 `json:"from"`
	To   uint32 `json:"to"`
}

// Gaps is what a run of sequence numbers, in the order they arrived,
// lacks or repeats. Numbers are compared in the order they were handed
// out, so the wrap (999999999 → 0 for file names) is no gap; a run is
// assumed to span less than half the number space.
type Gaps struct {
	// First and Last are the earliest and the latest number received.
	First uint32 `json:"first"`
	Last  uint32 `json:"last"`
	Count int    `json:"count"`
	// Missing lists the ranges between First and Last that did not arrive.
	Missing []Range `json:"missing"`
	// Duplicates lists numbers received more than once, in the order
	// they were handed out.
	Duplicates []uint32 `json:"duplicates"`
	// OutOfOrder lists numbers that arrived after a later one, in the
	// order they arrived.
	OutOfOrder []uint32 `json:"out_of_order"`
	// Truncated: the run had more holes or repeats than the report keeps
	// (message numbers inside one file only); the lists are incomplete.
	Truncated bool `json:"truncated,omitempty"`
}

// SequenceReport is one series' [Gaps].
type SequenceReport struct {
	Series Series `json:"series"`
	Gaps
}

// CheckSequences reports, for each series (hardware type, sender and file
// type), the gaps, duplicates and late arrivals among the files, given in
// the order they arrived, sorted by series. A delivery that crosses the
// wrap from 999999999 to 0 is continuous.
func CheckSequences(arrived []Name) []SequenceReport {
	trackers := map[Series]*tracker{}
	for _, n := range arrived {
		t := trackers[n.Series()]
		if t == nil {
			t = &tracker{modulus: seqModulus}
			trackers[n.Series()] = t
		}
		t.add(n.Seq)
	}
	out := make([]SequenceReport, 0, len(trackers))
	for s, t := range trackers {
		out = append(out, SequenceReport{Series: s, Gaps: t.gaps()})
	}
	slices.SortFunc(out, func(a, b SequenceReport) int { return cmp.Compare(a.Series.String(), b.Series.String()) })
	return out
}

// span is an inclusive run of positions that arrived.
type span struct{ lo, hi int64 }

// tracker follows one run of numbers modulo modulus in constant memory
// while it has no holes: it keeps the runs that arrived (positions
// relative to the first number received, in (-modulus/2, modulus/2]),
// not the numbers. With a budget, each span or listed number it keeps
// takes one from *budget (shared by the trackers of one file), and once
// it is spent the report is marked truncated instead.
type tracker struct {
	modulus int64
	budget  *int

	anchor    uint32
	count     int
	spans     []span
	high      int64 // the furthest position reached
	dups      []uint32
	late      []uint32
	truncated bool
}

func (t *tracker) add(num uint32) {
	if t.count == 0 {
		t.anchor, t.count, t.spans = num, 1, []span{{0, 0}}
		return
	}
	t.count++
	pos := (int64(num) - int64(t.anchor)) % t.modulus
	if pos < 0 {
		pos += t.modulus
	}
	if pos > t.modulus/2 {
		pos -= t.modulus // before the first number received
	}
	if last := &t.spans[len(t.spans)-1]; pos == last.hi+1 {
		last.hi, t.high = pos, max(t.high, pos) // the next number: the usual case
		return
	}
	// i is the first span that ends at or after pos.
	i, j := 0, len(t.spans)
	for i < j {
		if h := int(uint(i+j) >> 1); t.spans[h].hi < pos {
			i = h + 1
		} else {
			j = h
		}
	}
	if i < len(t.spans) && t.spans[i].lo <= pos {
		t.dups = t.keep(t.dups, num)
		return
	}
	if pos < t.high {
		t.late = t.keep(t.late, num)
	}
	t.high = max(t.high, pos)
	joinLeft := i > 0 && t.spans[i-1].hi == pos-1
	joinRight := i < len(t.spans) && t.spans[i].lo == pos+1
	switch {
	case joinLeft && joinRight:
		t.spans[i-1].hi = t.spans[i].hi
		t.spans = slices.Delete(t.spans, i, i+1)
	case joinLeft:
		t.spans[i-1].hi = pos
	case joinRight:
		t.spans[i].lo = pos
	case t.spend():
		t.spans = slices.Insert(t.spans, i, span{pos, pos})
	}
}

// spend takes one from the budget, or marks the report truncated when it
// is spent (the hole or number is lost from the lists, not the count).
func (t *tracker) spend() bool {
	if t.budget == nil {
		return true
	}
	if *t.budget <= 0 {
		t.truncated = true
		return false
	}
	*t.budget--
	return true
}

// keep appends num to list within the budget.
func (t *tracker) keep(list []uint32, num uint32) []uint32 {
	if !t.spend() {
		return list
	}
	return append(list, num)
}

// number is the sequence number at position pos.
func (t *tracker) number(pos int64) uint32 {
	n := (int64(t.anchor) + pos) % t.modulus
	if n < 0 {
		n += t.modulus
	}
	return uint32(n)
}

func (t *tracker) gaps() Gaps {
	g := Gaps{Count: t.count, Truncated: t.truncated, OutOfOrder: slices.Clone(t.late)}
	if t.count == 0 {
		return g
	}
	g.First, g.Last = t.number(t.spans[0].lo), t.number(t.high)
	for i := 1; i < len(t.spans); i++ {
		g.Missing = append(g.Missing, Range{From: t.number(t.spans[i-1].hi + 1), To: t.number(t.spans[i].lo - 1)})
	}
	// Duplicates ascend in the order the numbers were handed out.
	pos := func(n uint32) int64 {
		p := (int64(n) - int64(g.First)) % t.modulus
		if p < 0 {
			p += t.modulus
		}
		return p
	}
	g.Duplicates = slices.Clone(t.dups)
	slices.SortFunc(g.Duplicates, func(a, b uint32) int { return cmp.Compare(pos(a), pos(b)) })
	g.Duplicates = slices.Compact(g.Duplicates)
	return g
}
