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
	OpOfficerRevoke  = "pki.officer.revoke"
	OpKeyExport      = "key.export"
)

// operations are every operation officers may put under dual control.
var operations = []string{OpKeyGenerate, OpKeyImportTR31, OpAllowanceTopUp, OpPolicyActivate, OpKeyComponents, OpCACreate, OpCARevoke,
	OpOfficerAdd, OpOfficerRemove, OpKeyImportKWP, OpCertIssue, OpOfficerRevoke, OpKeyExport}

// Operations lists every operation officers may put under dual control,
// in a fixed order.
func Operations() []string { return slices.Clone(operations) }

// SchemeWide reports whether an operation is a scheme-wide act: one that
// every operator's devices feel — a CA and its certificates (CA creation
// and revocation; server certificates, which every terminal trusts as
// samd; officer certificates, which carry an officer's vote), the
// officer registry, the policy documents of every operator, and a shared
// key handed to a partner operator (key.export). Only the scheme's
// officers (Config.SchemeOperator) propose and approve
// them, always under dual control: there is no direct call for them.
func SchemeWide(op string) bool {
	switch op {
	case OpCACreate, OpCARevoke, OpCertIssue, OpOfficerAdd, OpOfficerRemove, OpPolicyActivate, OpKeyExport:
		return true
	}
	return false
}

// AlwaysDual reports whether an operation has no direct call at all, so
// that it can always be proposed, by at least MinSchemeQuorum officers:
// every scheme-wide act, and the revocation of an officer's certificate
// (pki.officer.revoke), which takes a vote away.
func AlwaysDual(op string) bool { return SchemeWide(op) || op == OpOfficerRevoke }

// schemeMayNeed reports whether the scheme's officers may have to make
// an operation: a scheme-wide act, a ceremony of a scheme key
// (keyscope.go), the revocation of a scheme officer's certificate.
func schemeMayNeed(op string) bool {
	switch op {
	case OpKeyGenerate, OpKeyComponents, OpKeyImportKWP, OpKeyImportTR31, OpOfficerRevoke:
		return true
	}
	return SchemeWide(op)
}

// MinSchemeQuorum is the quorum of an operation without a direct call
// (AlwaysDual) that the configuration does not set, and the least it may
// set.
const MinSchemeQuorum = 2

// Quorum returns the quorum of every operation that can be proposed: the
// configured ones, and MinSchemeQuorum for each operation without a
// direct call (AlwaysDual) the configuration does not list. It refuses
// an unknown operation, a quorum below 1, one below MinSchemeQuorum for
// an operation without a direct call, and a quorum larger than the
// officers who could approve (the registry; for an operation the
// scheme's officers may have to make — a scheme-wide act, a scheme key's
// ceremony, a scheme officer's revocation — the scheme operator's
// officers in it).
func Quorum(registry []string, configured map[string]int, schemeOperator string) (map[string]int, error) {
	scheme := 0
	for _, r := range registry {
		if op, _, _ := strings.Cut(r, "/"); schemeOperator != "" && op == schemeOperator {
			scheme++
		}
	}
	out := map[string]int{}
	for _, op := range operations {
		if AlwaysDual(op) {
			out[op] = MinSchemeQuorum
		}
	}
	for op, m := range configured {
		switch {
		case !slices.Contains(operations, op):
			return nil, fmt.Errorf("officers: quorum for unknown operation %q (known: %s)", op, strings.Join(sorted(operations), ", "))
		case AlwaysDual(op) && m < MinSchemeQuorum:
			return nil, fmt.Errorf("officers: quorum %d for %s: it has no direct call and needs at least %d officers", m, op, MinSchemeQuorum)
		case m < 1 || m > len(registry):
			return nil, fmt.Errorf("officers: quorum %d for %s: between 1 and the %d registered officers", m, op, len(registry))
		}
		out[op] = m
	}
	if schemeOperator != "" {
		for op, m := range out {
			if schemeMayNeed(op) && m > scheme {
				return nil, fmt.Errorf("officers: quorum %d for %s: the registry has %d officers of the scheme operator %s, who make it for the scheme", m, op, scheme, schemeOperator)
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
