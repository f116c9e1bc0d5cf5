package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

const adminUsage = `usage: samd admin [connection flags] COMMAND     (the admin listener, default 127.0.0.1:7444)

Connection flags are samd client's (--dev DIR --as officer|officer-2|officer-3|scheme-officer|scheme-officer-2, or --ca --cert --key; --json).

Commands (security officers of the registry):
  propose OPERATION --params JSON   propose an operation under dual control; prints its id
                                    key.generate    {"name":"…","version":1,"role":"diversify-master","algorithm":"AES-128"}
                                    key.import-components {"name","version","role","algorithm","components":2,"kcv":"…"}
                                    key.import-tr31 {"block","kbpk":"NAME:vN","name","version","role"}
                                    allowance.topup {"device":"<operator>/<device>","amount":N,"currency":"NOK"}
                                  scheme-wide acts (the scheme's officers only, --as scheme-officer|scheme-officer-2):
                                    policy.activate {"version":"<digest from samd config check>"}
                                    pki.ca.create   {"name","common_name","parent","validity_days","max_path_len"}
                                    pki.ca.revoke   {"ca","reason"}
                                    pki.certificate.issue {"ca","profile":"server"|"officer","dns_names"|"operator","device"}
                                    officer.add | officer.remove {"officer":"<operator>/<device>"}
    [--csr FILE]                    put a CSR (PEM) into the parameters as csr_pem
  approve ID | reject ID [--out F]  vote on a proposal; the approval completing the quorum runs it
                                    (--out: write the certificate an executed proposal issued)
  component ID --value HEX --kcv HEX
                                    give your key component to a key.import-components proposal
                                    (checked against its KCV, sealed in the HSM at once; it counts as your approval)
  proposal ID                       show one proposal
  proposals [--hours N]             proposals of the last N hours (default 24)
  keys                              key inventory: name, version, role, algorithm, check values, uses
`

// cmdAdmin runs "samd admin": samd client's connection, pointed at the
// admin listener, with the officers' commands.
func cmdAdmin(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(out, adminUsage)
		return nil
	}
	return cmdClient(append([]string{"--addr", "127.0.0.1:7444", "--admin"}, args...), out)
}

// officerCmd runs one officers' command.
func (c *client) officerCmd(ctx context.Context, cmd string, args []string) (proto.Message, error) {
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	params := fs.String("params", "{}", "")
	value := fs.String("value", "", "")
	check := fs.String("kcv", "", "")
	hours := fs.Uint("hours", 24, "")
	csrFile := fs.String("csr", "", "")
	outFile := fs.String("out", "", "")
	// The operand may come before the flags: "propose key.generate --params …".
	var operand string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		operand, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if operand == "" && fs.NArg() > 0 {
		operand = fs.Arg(0)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	o := c.officers
	need := func() error {
		if operand == "" {
			return fmt.Errorf("admin %s: name it", cmd)
		}
		return nil
	}
	switch cmd {
	case "propose":
		if err := need(); err != nil {
			return nil, err
		}
		p := *params
		if *csrFile != "" {
			var err error
			if p, err = withCSR(p, *csrFile); err != nil {
				return nil, err
			}
		}
		r, err := o.Propose(ctx, connect.NewRequest(&samdv1.ProposeRequest{Operation: operand, ParamsJson: p}))
		return msg(r, err)
	case "approve", "reject", "proposal":
		if err := need(); err != nil {
			return nil, err
		}
		req := connect.NewRequest(&samdv1.VoteRequest{Id: operand})
		var r *connect.Response[samdv1.Proposal]
		var err error
		switch cmd {
		case "approve":
			r, err = o.Approve(ctx, req)
		case "reject":
			r, err = o.Reject(ctx, req)
		default:
			r, err = o.GetProposal(ctx, req)
		}
		if err == nil && *outFile != "" {
			_, cert, ok := strings.Cut(r.Msg.GetResult(), "-----BEGIN CERTIFICATE-----")
			if !ok {
				return nil, fmt.Errorf("--out: proposal %s (%s) issued no certificate", operand, r.Msg.GetStatus())
			}
			if err := os.WriteFile(*outFile, []byte("-----BEGIN CERTIFICATE-----"+cert), 0o644); err != nil {
				return nil, err
			}
		}
		return msg(r, err)
	case "component":
		if err := need(); err != nil {
			return nil, err
		}
		return msg(o.SubmitComponent(ctx, connect.NewRequest(&samdv1.ComponentRequest{Id: operand, Value: *value, Kcv: *check})))
	case "proposals":
		return msg(o.ListProposals(ctx, connect.NewRequest(&samdv1.ListProposalsRequest{Hours: uint32(*hours)})))
	case "keys":
		return msg(o.Inventory(ctx, connect.NewRequest(&samdv1.InventoryRequest{})))
	}
	return nil, errors.New("unknown admin command " + cmd + "\n" + adminUsage)
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
