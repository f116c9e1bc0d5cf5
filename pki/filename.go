package pki

import (
	"fmt"
	"slices"
	"strconv"
)

// MaxFileSequence is the largest NNNNNNNNN of a transaction file name;
// the number after it is 1.
const MaxFileSequence = 999_999_999

// FileName is a transaction file name XXYYYYZU.NNNNNNNNN (Håndbok 206
// Part 19 §3.1). samd reads XX as the file type, YYYY as the sender's id
// and ZU as two more characters it keeps but does not interpret, and
// NNNNNNNNN as the sequence number per sender and file type. (The layout
// of the fields beyond the pattern is not in the sources samd was built
// from; README "Transaction files" says what was assumed.)
type FileName struct {
	Type, Sender, ZU string
	Seq              uint64
}

// String formats the name.
func (f FileName) String() string {
	return fmt.Sprintf("%s%s%s.%09d", f.Type, f.Sender, f.ZU, f.Seq)
}

// Series is the sequence a file belongs to: its sender and type.
func (f FileName) Series() string { return f.Type + f.Sender }

func upperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Valid checks the fields' lengths and characters (A-Z, 0-9) and the
// sequence number's range.
func (f FileName) Valid() error {
	switch {
	case len(f.Type) != 2 || !upperAlnum(f.Type):
		return fmt.Errorf("pki: file type %q is not two characters A-Z 0-9", f.Type)
	case len(f.Sender) != 4 || !upperAlnum(f.Sender):
		return fmt.Errorf("pki: sender %q is not four characters A-Z 0-9", f.Sender)
	case len(f.ZU) != 2 || !upperAlnum(f.ZU):
		return fmt.Errorf("pki: ZU %q is not two characters A-Z 0-9", f.ZU)
	case f.Seq < 1 || f.Seq > MaxFileSequence:
		return fmt.Errorf("pki: sequence number %d is outside 1..%d", f.Seq, MaxFileSequence)
	}
	return nil
}

// ParseFileName parses XXYYYYZU.NNNNNNNNN.
func ParseFileName(s string) (FileName, error) {
	if len(s) != 18 || s[8] != '.' {
		return FileName{}, fmt.Errorf("pki: file name %q is not XXYYYYZU.NNNNNNNNN", s)
	}
	for i := 9; i < 18; i++ {
		if s[i] < '0' || s[i] > '9' {
			return FileName{}, fmt.Errorf("pki: file name %q: NNNNNNNNN is not nine digits", s)
		}
	}
	n, _ := strconv.ParseUint(s[9:], 10, 64)
	f := FileName{Type: s[0:2], Sender: s[2:6], ZU: s[6:8], Seq: n}
	if err := f.Valid(); err != nil {
		return FileName{}, err
	}
	return f, nil
}

// NextSeq is the sequence number after n.
func NextSeq(n uint64) uint64 {
	if n >= MaxFileSequence {
		return 1
	}
	return n + 1
}

// SequenceReport is what a set of files of one series lacks or repeats.
type SequenceReport struct {
	Series string `json:"series"`
	// First and Last are the first and the last number received.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Missing lists the ranges of numbers between First and Last (across
	// a wrap after MaxFileSequence) that did not arrive.
	Missing []Range `json:"missing"`
	// Duplicates lists numbers received more than once.
	Duplicates []uint64 `json:"duplicates"`
	// OutOfOrder lists numbers that arrived after a later one.
	OutOfOrder []uint64 `json:"out_of_order"`
	Count      int      `json:"count"`
}

// Range is an inclusive range of sequence numbers.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// CheckSequences reports, for each series (sender and file type), the
// gaps, duplicates and out-of-order arrivals among the files, given in
// the order they arrived. Numbers are compared in the order they were
// handed out, so a wrap from MaxFileSequence to 1 is no gap; a series is
// assumed not to span more than half the number space.
func CheckSequences(arrived []FileName) []SequenceReport {
	bySeries := map[string][]uint64{}
	var order []string
	for _, f := range arrived {
		s := f.Series()
		if _, ok := bySeries[s]; !ok {
			order = append(order, s)
		}
		bySeries[s] = append(bySeries[s], f.Seq)
	}
	slices.Sort(order)
	out := make([]SequenceReport, 0, len(order))
	for _, s := range order {
		out = append(out, checkSeries(s, bySeries[s]))
	}
	return out
}

// ahead is how far b is after a in the wrapping sequence (0..max-1).
func ahead(a, b uint64) uint64 {
	return (b + MaxFileSequence - a) % MaxFileSequence
}

func checkSeries(series string, seqs []uint64) SequenceReport {
	r := SequenceReport{Series: series, Count: len(seqs)}
	// The series starts at the number from which every other is at most
	// half the space ahead: the earliest one handed out.
	first := seqs[0]
	for _, n := range seqs[1:] {
		if ahead(n, first) < MaxFileSequence/2 && n != first {
			first = n
		}
	}
	seen := map[uint64]int{}
	var high uint64 // furthest position ahead of first reached so far
	for i, n := range seqs {
		seen[n]++
		if seen[n] == 2 {
			r.Duplicates = append(r.Duplicates, n)
		}
		pos := ahead(first, n)
		if i > 0 && pos < high && seen[n] == 1 {
			r.OutOfOrder = append(r.OutOfOrder, n)
		}
		high = max(high, pos)
	}
	r.First = first
	r.Last = (first-1+high)%MaxFileSequence + 1
	pos := make([]uint64, 0, len(seen))
	for n := range seen {
		pos = append(pos, ahead(first, n))
	}
	slices.Sort(pos)
	for i := 1; i < len(pos); i++ {
		if pos[i] > pos[i-1]+1 {
			r.Missing = append(r.Missing, Range{From: (first+pos[i-1])%MaxFileSequence + 1, To: (first-2+pos[i])%MaxFileSequence + 1})
		}
	}
	slices.Sort(r.Duplicates)
	return r
}
