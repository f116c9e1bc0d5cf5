package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// cmdAdmin runs "samd admin": samd client's connection, pointed at the
// admin listener, with the officers' commands.
func cmdAdmin(args []string, out io.Writer) error {
	if len(args) == 0 {
		return adminCLI.run([]string{"-h"}, out)
	}
	return adminCLI.run(args, out)
}

var adminCLI = &cli{
	name:  "admin",
	admin: true,
	intro: `Security officers of the registry, on the admin listener (--admin-addr;
--addr names it too when --admin-addr is not given): dual-control proposals,
votes, key components, the key inventory, and the reads the officers'
console shows (audit search, status, certs, lists). --as officer|officer-2|
officer-3|scheme-officer|scheme-officer-2|scheme-officer-3 with --dev.
`,
	commands: slices.Concat(adminCommands, officerReadCommands),
}

const proposeMore = `Operations and their parameters (--params):
  key.generate          {"name":"…","version":1,"role":"diversify-master","algorithm":"AES-128"[,"exportable":true]}
  key.import-components {"name","version","role","algorithm","components":2,"kcv":"…"}
  key.import-tr31       {"block","kbpk":"NAME:vN","name","version","role"}
  allowance.topup       {"device":"<operator>/<device>","amount":N,"currency":"NOK"}
  pki.officer.revoke    {"officer":"<operator>/<device>","reason":1[,"ca","serial"]}
Key ceremonies of the scheme's keys (session-seal, transport, CA … and scopes
admin.key_scopes gives no operator) and a scheme officer's revocation are the
scheme's officers'.
Scheme-wide acts (the scheme's officers only, --as scheme-officer|scheme-officer-2):
  policy.activate       {"version":"<digest from samd config check>"}
  pki.ca.create         {"name","common_name","parent","validity_days","max_path_len"}
  pki.ca.revoke         {"ca","reason"}
  pki.certificate.issue {"ca","profile":"server"|"officer","dns_names"|"operator","device"}
  officer.add, officer.remove {"officer":"<operator>/<device>"}
  key.export            {"key":"NAME:vN","kek":"NAME:vN","format":"kwp"|"tr31","partner":"<operator>"}`

// voteFunc is an OfficerService method on one proposal.
type voteFunc func(context.Context, *connect.Request[samdv1.VoteRequest]) (*connect.Response[samdv1.Proposal], error)

// vote is approve's, reject's and proposal's: the method method picks,
// on one proposal by its id, and what it made written to --out: the
// certificate it issued, or the key block it exported.
func vote(method func(*client) voteFunc) func(*flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		outFile := fs.String("out", "", "write the certificate an executed proposal issued, or the key block it exported, to `FILE`")
		return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			id := in.args[0]
			r, err := method(c)(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: id}))
			if err == nil && *outFile != "" {
				var out string
				if _, cert, ok := strings.Cut(r.Msg.GetResult(), "-----BEGIN CERTIFICATE-----"); ok {
					out = "-----BEGIN CERTIFICATE-----" + cert
				} else if _, block, ok := strings.Cut(r.Msg.GetResult(), "\nblock: "); ok {
					out = block + "\n"
				} else {
					return nil, fmt.Errorf("--out: proposal %s (%s) issued no certificate and exported no key", id, r.Msg.GetStatus())
				}
				if err := os.WriteFile(*outFile, []byte(out), 0o644); err != nil {
					return nil, err
				}
			}
			return msg(r, err)
		}
	}
}

// adminCommands are the officers'.
var adminCommands = []command{
	{name: "propose", args: "OPERATION", help: "propose an operation under dual control; prints its id", more: proposeMore, flags: func(fs *flag.FlagSet) runFunc {
		params := fs.String("params", "{}", "the operation's parameters, a `JSON` object (below)")
		csrFile := fs.String("csr", "", "put the certificate request in PEM `FILE` into the parameters as csr_pem")
		return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
			p := *params
			if *csrFile != "" {
				var err error
				if p, err = withCSR(p, *csrFile); err != nil {
					return nil, err
				}
			}
			return msg(c.officers.Propose(ctx, connect.NewRequest(&samdv1.ProposeRequest{Operation: in.args[0], ParamsJson: p})))
		}
	}},
	{name: "approve", args: "ID", help: "approve a proposal; the approval completing the quorum runs it",
		flags: vote(func(c *client) voteFunc { return c.officers.Approve })},
	{name: "reject", args: "ID", help: "reject a proposal", flags: vote(func(c *client) voteFunc { return c.officers.Reject })},
	{name: "component", args: "ID", help: "give your key component to a key.import-components proposal",
		more: "It is checked against its KCV and sealed in the HSM at once; it counts as your approval.", flags: func(fs *flag.FlagSet) runFunc {
			value := fs.String("value", "", "your clear key component, in `HEX`")
			check := fs.String("kcv", "", "the component's check value, in `HEX`")
			return func(ctx context.Context, c *client, in *invocation) (proto.Message, error) {
				return msg(c.officers.SubmitComponent(ctx, connect.NewRequest(&samdv1.ComponentRequest{Id: in.args[0], Value: *value, Kcv: *check})))
			}
		}},
	{name: "proposal", args: "ID", help: "show one proposal", flags: vote(func(c *client) voteFunc { return c.officers.GetProposal })},
	{name: "proposals", help: "the proposals of the last hours", flags: func(fs *flag.FlagSet) runFunc {
		hours := fs.Uint("hours", 24, "how many hours back, `N`")
		return func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.officers.ListProposals(ctx, connect.NewRequest(&samdv1.ListProposalsRequest{Hours: uint32(*hours)})))
		}
	}},
	{name: "keys", help: "the key inventory: name, version, role, algorithm, check values, uses; never a value",
		flags: noFlags(func(ctx context.Context, c *client, _ *invocation) (proto.Message, error) {
			return msg(c.officers.Inventory(ctx, connect.NewRequest(&samdv1.InventoryRequest{})))
		})},
}

// withCSR puts the CSR in file (PEM) into a proposal's JSON parameters
// as csr_pem.
func withCSR(params, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(params), &m); err != nil {
		return "", fmt.Errorf("--params: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	m["csr_pem"] = string(b)
	out, err := json.Marshal(m)
	return string(out), err
}

// msg unwraps a response.
func msg[T any, PT interface {
	*T
	proto.Message
}](r *connect.Response[T], err error) (proto.Message, error) {
	if err != nil {
		return nil, err
	}
	return PT(r.Msg), nil
}
