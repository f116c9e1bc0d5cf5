// Command samd is the software SAM daemon and its tools.
//
//	samd serve --config FILE     serve terminals over mTLS
//	samd dev [--dir DIR]         make a development token, PKI and keys, then serve
//	samd client ...              call every API method; --json for scripts
//	samd config check FILE       validate a configuration file and its TLS files
//
// This package is the composition root: it wires the key store, the
// authority, the audit log and the server together, and runs the startup
// known-answer tests. It holds no logic of its own.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const usage = `samd: software SAM and HSM bridge for transit ticketing

usage:
  samd serve --config FILE       serve over mTLS with the configured HSM
  samd dev [--dir DIR] [--listen ADDR]
                                 make (once) a SoftHSM2 token, a development PKI
                                 and demo keys in DIR, then serve on 127.0.0.1
  samd client [flags] COMMAND    call every samd method, --json for scripts; samd client -h
  samd config check FILE         validate a configuration file and its TLS files
  samd bench --dev DIR           measure samd against the token's own ceiling
  samd audit verify --config F   verify the audit log's chain and signed checkpoints
  samd audit export --config F [--since T --until T --operator O --key K --outcome O --method M] [LOG ...]
                                 verified records that match, as JSON lines
  samd admin [flags] COMMAND     security officers: dual-control proposals, votes, key inventory
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = cmdServe(os.Args[2:])
	case "dev":
		err = cmdDev(os.Args[2:])
	case "client":
		err = cmdClient(os.Args[2:], os.Stdout)
	case "config":
		err = cmdConfig(os.Args[2:])
	case "bench":
		err = cmdBench(os.Args[2:], os.Stdout)
	case "audit":
		err = cmdAudit(os.Args[2:], os.Stdout)
	case "admin":
		err = cmdAdmin(os.Args[2:], os.Stdout)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "samd: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the usage is printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "samd:", err)
		os.Exit(1)
	}
}
