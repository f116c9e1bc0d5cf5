package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// TestCommandHelp runs "COMMAND -h" for every command of samd client and
// samd admin: each prints its usage and a line for every flag, and no
// flag lacks its help.
func TestCommandHelp(t *testing.T) {
	for _, x := range []*cli{clientCLI, adminCLI} {
		var top bytes.Buffer
		if err := x.run([]string{"-h"}, &top); err != nil {
			t.Fatalf("samd %s -h: %v", x.name, err)
		}
		for _, cmd := range x.commands {
			t.Run(x.name+"/"+cmd.name, func(t *testing.T) {
				if cmd.help == "" || !strings.Contains(top.String(), "\n  "+strings.TrimSpace(cmd.name+" "+cmd.args)+" ") {
					t.Errorf("samd %s -h does not list %q with its help", x.name, cmd.name)
				}
				var out bytes.Buffer
				if err := x.run(append(strings.Fields(cmd.name), "-h"), &out); err != nil {
					t.Fatalf("-h: %v", err)
				}
				if want := "usage: samd " + x.name + " [connection flags] " + cmd.name; !strings.HasPrefix(out.String(), want) {
					t.Fatalf("-h printed\n%s\nwant it to begin %q", out.String(), want)
				}
				fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
				cmd.flags(fs)
				fs.VisitAll(func(f *flag.Flag) {
					if strings.TrimSpace(f.Usage) == "" {
						t.Errorf("--%s has no help", f.Name)
					}
					if !lineFor(out.String(), f.Name) {
						t.Errorf("-h has no line for --%s:\n%s", f.Name, out.String())
					}
				})
			})
		}
	}
}

// lineFor reports whether help has a line that documents --name.
func lineFor(help, name string) bool {
	for _, l := range strings.Split(help, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "--"+name {
			return true
		}
	}
	return false
}

// TestConnectionFlags: samd client and samd admin take the same
// connection flags, from one definition, each with its help.
func TestConnectionFlags(t *testing.T) {
	fs := flag.NewFlagSet("conn", flag.ContinueOnError)
	new(connFlags).register(fs)
	for _, x := range []*cli{clientCLI, adminCLI} {
		var out bytes.Buffer
		if err := x.run([]string{"-h"}, &out); err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage == "" || !lineFor(out.String(), f.Name) {
				t.Errorf("samd %s -h: no help for --%s", x.name, f.Name)
			}
		})
	}
}

// TestAdminAddr: samd client reaches the admin listener at --admin-addr;
// samd admin too, and at --addr when --admin-addr is not given.
func TestAdminAddr(t *testing.T) {
	for _, c := range []struct {
		name  string
		admin bool
		args  []string
		want  string
	}{
		{"ok/client-default", false, nil, "127.0.0.1:7444"},
		{"ok/client-addr-is-not-admin", false, []string{"--addr", "10.0.0.1:1"}, "127.0.0.1:7444"},
		{"ok/client-admin-addr", false, []string{"--admin-addr", "10.0.0.2:2"}, "10.0.0.2:2"},
		{"ok/admin-default", true, nil, "127.0.0.1:7444"},
		{"ok/admin-addr", true, []string{"--addr", "10.0.0.1:1"}, "10.0.0.1:1"},
		{"ok/admin-admin-addr", true, []string{"--admin-addr", "10.0.0.2:2"}, "10.0.0.2:2"},
		{"ok/admin-admin-addr-wins", true, []string{"--addr", "10.0.0.1:1", "--admin-addr", "10.0.0.2:2"}, "10.0.0.2:2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("conn", flag.ContinueOnError)
			var cf connFlags
			cf.register(fs)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if got := cf.options(fs, c.admin).adminAddr; got != c.want {
				t.Fatalf("admin listener %q, want %q", got, c.want)
			}
		})
	}
}

// TestBytesFlag: a byte field in hex or as text, not both.
func TestBytesFlag(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
		ok   bool
	}{
		{"ok/none", nil, "", true},
		{"ok/hex", []string{"--sysid", "4E585020416275"}, "4E585020416275", true},
		{"ok/ascii", []string{"--sysid-ascii", "NXP Abu"}, "4e585020416275", true},
		{"fail/both", []string{"--sysid", "00", "--sysid-ascii", "NXP Abu"}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("b", flag.ContinueOnError)
			b := addBytes(fs, "sysid", "the system identifier")
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			got, err := b.value()
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("got %q, %v; want %q (ok %v)", got, err, c.want, c.ok)
			}
		})
	}
}

// TestOperands: a command's operands may stand before, between or after
// its flags; after "--" everything is an operand.
func TestOperands(t *testing.T) {
	for _, c := range []struct {
		name, args, want, out string
	}{
		{"ok/after", "--out F ID", "ID", "F"},
		{"ok/before", "ID --out F", "ID", "F"},
		{"ok/between", "A --out F B", "A B", "F"},
		{"ok/dashes", "--out F -- --x", "--x", "F"},
		{"ok/none", "--out F", "", "F"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("o", flag.ContinueOnError)
			out := fs.String("out", "", "a `FILE`")
			got, err := parseInterspersed(fs, strings.Fields(c.args))
			if err != nil || !slices.Equal(got, strings.Fields(c.want)) || *out != c.out {
				t.Fatalf("operands %q, --out %q, %v", got, *out, err)
			}
		})
	}
}

// TestCommandLine: a command line is taken apart into its command, flags
// and operands, and mistakes are refused before any connection.
func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		name string
		x    *cli
		args string
		cmd  string
		ok   bool
	}{
		{"ok/kcv", clientCLI, "--dev d --json kcv --key k:v1 --uid 04 --sysid-ascii NXP", "kcv", true},
		{"ok/longest-name", clientCLI, "--dev d pki ca create --name n", "pki ca create", true},
		{"ok/verify-is-not-sun-verify", clientCLI, "--dev d verify --profile p", "verify", true},
		{"ok/file-sign", clientCLI, "--dev d file sign --signer s F", "file sign", true},
		{"ok/file-verify-operand-first", clientCLI, "--dev d file verify F --sig F.p7s", "file verify", true},
		{"ok/admin-approve", adminCLI, "--dev d --as officer-2 approve ID --out c.pem", "approve", true},
		{"ok/enrol-anonymous", clientCLI, "--ca ca.crt pki enrol --token T --new-key k.pem --out c.pem", "pki enrol", true},
		{"fail/no-command", clientCLI, "--dev d", "", false},
		{"fail/unknown-connection-flag", clientCLI, "--frob d kcv", "", false},
		{"fail/unknown-command", clientCLI, "--dev d frobnicate", "", false},
		{"fail/group-alone", clientCLI, "--dev d card", "", false},
		{"fail/unknown-flag", clientCLI, "--dev d kcv --frob 1", "", false},
		{"fail/another-commands-flag", clientCLI, "--dev d value cancel --amount 5", "", false},
		{"fail/missing-operand", clientCLI, "--dev d file sign --signer s", "", false},
		{"fail/extra-operand", clientCLI, "--dev d kcv extra", "", false},
		{"fail/admin-missing-id", adminCLI, "--dev d approve", "", false},
		{"fail/admin-has-no-client-command", adminCLI, "--dev d kcv", "", false},
		{"fail/bad-optional-number", clientCLI, "--dev d export --des-version 256", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := c.x.parse(strings.Fields(c.args), io.Discard)
			if (err == nil) != c.ok {
				t.Fatalf("samd %s %s: %v", c.x.name, c.args, err)
			}
			if c.ok && (l == nil || l.cmd.name != c.cmd) {
				t.Fatalf("samd %s %s: parsed as %+v, want %q", c.x.name, c.args, l, c.cmd)
			}
		})
	}
}

// TestJSONZeroValues: --json prints every field, a balance of 0 as 0.
func TestJSONZeroValues(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		var out bytes.Buffer
		if err := printResponse(&out, &samdv1.Allowance{Device: "dev-operator/dev-terminal-1", Currency: "NOK"}, asJSON); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if m["balance"] != "0" || m["updated"] != "" {
			t.Fatalf("zero values left out:\n%s", out.String())
		}
	}
}
