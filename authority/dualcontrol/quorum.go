package dualcontrol

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Operations under dual control.
const (
	OpKeyGenerate    = "key.generate"
	OpKeyImportTR31  = "key.import-tr31"
	OpAllowanceTopUp = "allowance.topup"
	OpPolicyActivate = "policy.activate"
	OpKeyComponents  = "key.import-components"
	OpCACreate       = "pki.ca.create"
	OpCARevoke       = "pki.ca.revoke"
	OpOfficerAdd     = "officer.add"
	OpOfficerRemove  = "officer.remove"
	OpKeyImportKWP   = "key.import-kwp"
	OpCertIssue      = "pki.certificate.issue"
)

// operations are every operation officers may put under dual control.
var operations = []string{OpKeyGenerate, OpKeyImportTR31, OpAllowanceTopUp, OpPolicyActivate, OpKeyComponents, OpCACreate, OpCARevoke,
	OpOfficerAdd, OpOfficerRemove, OpKeyImportKWP, OpCertIssue}

// Operations lists every operation officers may put under dual control,
// in a fixed order.
func Operations() []string { return slices.Clone(operations) }

// SchemeWide reports whether an operation is a scheme-wide act: one that
// every operator's devices feel — a CA and its certificates (CA creation
// and revocation; server certificates, which every terminal trusts as
// samd; officer certificates, which carry an officer's vote), the
// officer registry, and the policy documents of every operator. Only the
// scheme's officers (Config.SchemeOperator) propose and approve
// them, always under dual control: there is no direct call for them.
func SchemeWide(op string) bool {
	switch op {
	case OpCACreate, OpCARevoke, OpCertIssue, OpOfficerAdd, OpOfficerRemove, OpPolicyActivate:
		return true
	}
	return false
}

// MinSchemeQuorum is the quorum of a scheme-wide act that the
// configuration does not set, and the least it may set.
const MinSchemeQuorum = 2

// Quorum returns the quorum of every operation that can be proposed: the
// configured ones, and MinSchemeQuorum for each scheme-wide act the
// configuration does not list. It refuses an unknown operation, a
// quorum below 1, a scheme-wide act below MinSchemeQuorum, and a quorum
// larger than the officers who could approve (the registry; for a
// scheme-wide act, the scheme operator's officers in it).
func Quorum(registry []string, configured map[string]int, schemeOperator string) (map[string]int, error) {
	scheme := 0
	for _, r := range registry {
		if op, _, _ := strings.Cut(r, "/"); schemeOperator != "" && op == schemeOperator {
			scheme++
		}
	}
	out := map[string]int{}
	for _, op := range operations {
		if SchemeWide(op) {
			out[op] = MinSchemeQuorum
		}
	}
	for op, m := range configured {
		switch {
		case !slices.Contains(operations, op):
			return nil, fmt.Errorf("officers: quorum for unknown operation %q (known: %s)", op, strings.Join(sorted(operations), ", "))
		case SchemeWide(op) && m < MinSchemeQuorum:
			return nil, fmt.Errorf("officers: quorum %d for %s: a scheme-wide act needs at least %d scheme officers", m, op, MinSchemeQuorum)
		case m < 1 || m > len(registry):
			return nil, fmt.Errorf("officers: quorum %d for %s: between 1 and the %d registered officers", m, op, len(registry))
		}
		out[op] = m
	}
	if schemeOperator != "" {
		for op, m := range out {
			if SchemeWide(op) && m > scheme {
				return nil, fmt.Errorf("officers: quorum %d for %s: the registry has %d officers of the scheme operator %s", m, op, scheme, schemeOperator)
			}
		}
	}
	return out, nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
