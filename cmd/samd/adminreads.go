package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/revocation"
)

// officerReadCommands are the officers' reads that the console shows
// (OfficerService.SearchAudit, Status, SearchCertificates,
// NegativeLists): the same calls, audited the same way, answered about
// the officer's own operator (the scheme's officers: every operator).
var officerReadCommands = []command{
	{name: "audit search", help: "search the verified audit records, newest first, and show how each chain verified",
		more: "An operator's officer finds its own operator's callers' records only; the scheme's officers every record.",
		flags: func(fs *flag.FlagSet) runFunc {
			var req samdv1.SearchAuditRequest
			fs.StringVar(&req.Since, "since", "", "records at or after `TIME`, RFC 3339 (e.g. 2026-12-01T10:00:00Z)")
			fs.StringVar(&req.Until, "until", "", "records before `TIME`, RFC 3339")
			fs.StringVar(&req.Operator, "operator", "", "the caller's operator, an `ID`")
			fs.StringVar(&req.Key, "key", "", "a key the record names, `NAME` (every version) or NAME:vN")
			fs.StringVar(&req.Outcome, "outcome", "", "the `OUTCOME`: ok, denied or error")
			fs.StringVar(&req.Method, "method", "", "a part of the method name, `TEXT` (e.g. SubmitComponent)")
			limit := addOptUint(fs, "limit", 1000, "the newest `N` matches (default 100, at most 1000)")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				req.Limit = limit.v
				return printed(in, printAuditSearch)(c.officers.SearchAudit(ctx, connect.NewRequest(&req)))
			}
		}},
	{name: "status", help: "samd at a glance: readiness, the HSM session pool, the policy in force, the last hour's calls",
		flags: noFlags(func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			return printed(in, printStatus)(c.officers.Status(ctx, connect.NewRequest(&samdv1.StatusRequest{})))
		})},
	{name: "certs", help: "search the scheme PKI's certificates, newest first, with their revocations",
		more: "An operator's officer finds its own operator's certificates only; the scheme's officers every one, and\nrevocations of serials samd never recorded.",
		flags: func(fs *flag.FlagSet) runFunc {
			var req samdv1.SearchCertificatesRequest
			fs.StringVar(&req.Ca, "ca", "", "the issuing CA's `NAME`")
			fs.StringVar(&req.Operator, "operator", "", "the subject's operator, an `ID`")
			fs.StringVar(&req.Device, "device", "", "the subject's device, an `ID`")
			fs.StringVar(&req.Serial, "serial", "", "the serial number, in `HEX`")
			fs.BoolVar(&req.Revoked, "revoked", false, "revoked certificates only")
			limit := addOptUint(fs, "limit", 1000, "the newest `N` (default 100, at most 1000)")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				req.Limit = limit.v
				return printed(in, printCertificates)(c.officers.SearchCertificates(ctx, connect.NewRequest(&req)))
			}
		}},
	{name: "lists", help: "the negative lists you may see: versions, entries, deltas kept, and who has not acknowledged the current version",
		more: "An operator's officer sees its own operator's lists; the scheme's officers every owner's (or --owner's).",
		flags: func(fs *flag.FlagSet) runFunc {
			owner := fs.String("owner", "", "one owner's lists, an operator `ID` (default: every list you may see)")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				return printed(in, printLists)(c.officers.NegativeLists(ctx, connect.NewRequest(&samdv1.NegativeListsRequest{Owner: *owner})))
			}
		}},
}

// printed answers a read: its response as it is with --json (and any
// error), or nil once print wrote it as text.
func printed[T any, PT interface {
	*T
	proto.Message
}](in *invocation, print func(io.Writer, PT)) func(*connect.Response[T], error) (proto.Message, error) {
	return func(r *connect.Response[T], err error) (proto.Message, error) {
		if err != nil || in.json {
			return msg[T, PT](r, err)
		}
		print(in.out, PT(r.Msg))
		return nil, nil
	}
}

// printLists prints each list as `samd client list status` does.
func printLists(w io.Writer, r *samdv1.NegativeListsResponse) {
	if len(r.GetLists()) == 0 {
		fmt.Fprintln(w, "no list has entries yet")
	}
	for i, l := range r.GetLists() {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printListStatus(w, l)
	}
}

// printAuditSearch prints each chain's verification, then one line per
// record: time, outcome, method, caller, keys, and the reason of a
// refusal or an error.
func printAuditSearch(w io.Writer, r *samdv1.SearchAuditResponse) {
	for _, ch := range r.GetChains() {
		state := "intact"
		if !ch.GetIntact() {
			state = fmt.Sprintf("BROKEN at record %d: %s (nothing from there on is searched)", ch.GetBrokenSeq(), ch.GetBrokenReason())
		}
		signed := "no checkpoint key"
		if ch.GetCheckpointKey() {
			signed = fmt.Sprintf("%d checkpoints verified, the last covers record %d, %d records after it", ch.GetCheckpoints(), ch.GetLastCovered(), ch.GetUnsigned())
		}
		fmt.Fprintf(w, "chain %s  %d records verified, %s; %s\n", ch.GetName(), ch.GetRecords(), state, signed)
	}
	fmt.Fprintf(w, "%d records match; the newest %d:\n", r.GetMatched(), len(r.GetRecords()))
	for _, rec := range r.GetRecords() {
		caller := "-"
		if p := rec.GetCaller(); p != nil {
			caller = p.GetRole() + "/" + p.GetOperator() + "/" + p.GetDevice()
		}
		line := fmt.Sprintf("%s  %-6s %s  %s", rec.GetTime(), rec.GetOutcome(), strings.TrimPrefix(rec.GetMethod(), "/samd.v1."), caller)
		if len(rec.GetKeys()) > 0 {
			line += "  keys " + strings.Join(rec.GetKeys(), ",")
		}
		if rec.GetVia() != "" {
			line += "  via " + rec.GetVia()
		}
		if rec.GetReason() != "" {
			line += "  (" + rec.GetCode() + ": " + rec.GetReason() + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// printStatus prints samd's state as the console's health page shows it.
func printStatus(w io.Writer, r *samdv1.StatusResponse) {
	ready := "ready"
	if !r.GetReady() {
		ready = "NOT READY: " + r.GetNotReady()
	}
	var calls, errs, denied uint64
	for _, m := range r.GetMinutes() {
		calls, errs, denied = calls+m.GetCalls(), errs+m.GetErrors(), denied+m.GetDenied()
	}
	fmt.Fprintf(w, "samd       %s (started %s, now %s)\nhsm        %d of %d sessions in use\npolicy     %s\nlast hour  %d calls, %d errors, %d refused\n",
		ready, r.GetStarted(), r.GetNow(), r.GetHsmSessionsInUse(), r.GetHsmSessions(), r.GetPolicyVersion(), calls, errs, denied)
}

// printCertificates prints one line per certificate: serial, CA,
// profile, subject, validity and revocation.
func printCertificates(w io.Writer, r *samdv1.SearchCertificatesResponse) {
	if len(r.GetCertificates()) == 0 {
		fmt.Fprintln(w, "no certificate matches")
	}
	for _, c := range r.GetCertificates() {
		line := c.GetSerial() + "  " + c.GetCa()
		if c.GetRecorded() {
			s := c.GetSubject()
			line += fmt.Sprintf("  %s  %s/%s/%s  %s .. %s", c.GetProfile(), s.GetRole(), s.GetOperator(), s.GetDevice(), c.GetNotBefore(), c.GetNotAfter())
		} else {
			line += "  (not issued through samd)"
		}
		if c.GetRevoked() {
			line += fmt.Sprintf("  REVOKED %s (%s)", c.GetRevokedAt(), revocation.Reason(c.GetReason()))
		}
		fmt.Fprintln(w, line)
	}
}
