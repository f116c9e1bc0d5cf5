package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// command is one command of samd client or samd admin: its name, its
// help, its flags (each with its help) and what it does.
type command struct {
	// name is the words after "samd client", e.g. "pki ca create".
	name string
	// args names its operands, e.g. "FILE"; "" for none. It takes exactly
	// as many as args names.
	args string
	// help is one line for the command list; more, if any, follows it in
	// the command's own -h.
	help, more string
	// flags registers the command's flags on fs, every one with its help,
	// and returns what runs the command once they are parsed.
	flags func(fs *flag.FlagSet) runFunc
	// anonymous lets the command connect without a client certificate
	// (a device enrolling for its first one).
	anonymous bool
	// timeout is the least time the command gets, whatever --timeout says
	// (a file's streaming).
	timeout time.Duration
	// offline: the command works without samd (its client is nil), and
	// needs no connection flags.
	offline bool
}

// runFunc runs a command on the connection c. It returns the response to
// print, or nil when it printed its own output.
type runFunc func(ctx context.Context, c *client, in *invocation) (proto.Message, error)

// invocation is what a command is given besides its flags.
type invocation struct {
	args []string // the operands, as many as the command's args names
	out  io.Writer
	json bool
}

// noFlags is the flags of a command that has none.
func noFlags(run runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

// cli is samd client or samd admin: the connection flags, then one
// command of its table with the command's flags.
type cli struct {
	name     string // "client" or "admin"
	intro    string // what the first lines of -h say
	commands []command
	// admin: every command goes to the admin listener, which --addr
	// names when --admin-addr is not given.
	admin bool
}

// connFlags are the connection flags samd client and samd admin share.
type connFlags struct {
	o    clientOptions
	json bool
}

func (cf *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&cf.o.addr, "addr", "127.0.0.1:7443", "samd's terminal listener, `HOST:PORT` (samd admin: its admin listener, unless --admin-addr is given)")
	fs.StringVar(&cf.o.adminAddr, "admin-addr", "127.0.0.1:7444", "samd's admin listener, `HOST:PORT`: the officers' commands, allowances and policies")
	fs.StringVar(&cf.o.dev, "dev", "", "use the CA and client certificates that \"samd dev\" made in `DIR`")
	fs.StringVar(&cf.o.as, "as", "", "with --dev, the identity `ROLE`: terminal (the default), personalisation, officer, officer-2, officer-3, scheme-officer, scheme-officer-2, scheme-officer-3, back-office, clearing-house")
	fs.StringVar(&cf.o.ca, "ca", "", "the scheme CA certificate, PEM `FILE` (instead of --dev)")
	fs.StringVar(&cf.o.cert, "cert", "", "the client certificate, PEM `FILE` (instead of --dev)")
	fs.StringVar(&cf.o.key, "key", "", "the client certificate's private key, PEM `FILE` (instead of --dev)")
	fs.StringVar(&cf.o.protocol, "protocol", "grpc", "the wire `PROTOCOL`: grpc, json (Connect JSON over HTTP) or grpcweb")
	fs.DurationVar(&cf.o.timeout, "timeout", 10*time.Second, "how long a command may take, a `DURATION` such as 30s")
	fs.BoolVar(&cf.json, "json", false, "print the response (or the error) as JSON, zero values included")
}

// options returns the connection's options once fs is parsed.
func (cf *connFlags) options(fs *flag.FlagSet, admin bool) clientOptions {
	o := cf.o
	if admin {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["addr"] && !set["admin-addr"] {
			o.adminAddr = o.addr
		}
	}
	return o
}

// commandLine is a parsed command line: the command with its flags
// parsed, its operands, and the connection's options.
type commandLine struct {
	cmd      *command
	run      runFunc
	operands []string
	opts     clientOptions
	json     bool
}

// run parses the command line and runs its command.
func (x *cli) run(args []string, out io.Writer) error {
	l, err := x.parse(args, out)
	if err != nil || l == nil {
		return err
	}
	var c *client
	timeout := l.opts.timeout
	if !l.cmd.offline {
		if c, err = newClient(l.opts); err != nil {
			return err
		}
		timeout = c.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, l.cmd.timeout))
	defer cancel()
	msg, err := l.run(ctx, c, &invocation{args: l.operands, out: out, json: l.json})
	if err != nil {
		return printError(out, err, l.json)
	}
	if msg == nil {
		return nil
	}
	if err := printResponse(out, msg, l.json); err != nil {
		return err
	}
	return verdict(msg)
}

// parse parses the connection flags, finds the command and parses its
// flags and operands. It connects to nothing. When it printed help (-h)
// to out, it returns nil and no error.
func (x *cli) parse(args []string, out io.Writer) (*commandLine, error) {
	fs := flag.NewFlagSet("samd "+x.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf connFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			x.usage(out, fs)
			return nil, nil
		}
		return nil, fmt.Errorf("%w (samd %s -h lists the flags and commands)", err, x.name)
	}
	if fs.NArg() == 0 {
		x.usage(os.Stderr, fs)
		return nil, errors.New("no command")
	}
	cmd, rest, err := x.find(fs.Args())
	if err != nil {
		return nil, err
	}
	cfs := flag.NewFlagSet("samd "+x.name+" "+cmd.name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	l := &commandLine{cmd: cmd, run: cmd.flags(cfs), json: cf.json}
	l.operands, err = parseInterspersed(cfs, rest)
	if errors.Is(err, flag.ErrHelp) {
		x.commandUsage(out, cmd, cfs)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w (samd %s %s -h lists its flags)", cmd.name, err, x.name, cmd.name)
	}
	if want := strings.Fields(cmd.args); len(l.operands) != len(want) {
		if len(want) == 0 {
			return nil, fmt.Errorf("%s takes no argument, was given %q", cmd.name, l.operands)
		}
		return nil, fmt.Errorf("%s: name %s (samd %s %s %s)", cmd.name, strings.Join(want, " "), x.name, cmd.name, cmd.args)
	}
	l.opts = cf.options(fs, x.admin)
	l.opts.anonymous = cmd.anonymous
	return l, nil
}

// verdict makes a response that reports a failed verification exit
// non-zero, once it is printed.
func verdict(msg proto.Message) error {
	if v, ok := msg.(*samdv1.VerifyObjectsResponse); ok && v.GetInvalid() > 0 {
		return fmt.Errorf("%d of %d objects did not verify", v.GetInvalid(), len(v.GetResults()))
	}
	if v, ok := msg.(*samdv1.VerifyFileResponse); ok && !v.GetOk() {
		return fmt.Errorf("%s did not verify: %s", v.GetName(), v.GetReason())
	}
	return nil
}

// find returns the command whose name is the longest run of leading
// words of args, and the arguments after it.
func (x *cli) find(args []string) (*command, []string, error) {
	var best *command
	n := 0
	for i := range x.commands {
		words := strings.Fields(x.commands[i].name)
		if len(words) > n && len(words) <= len(args) && slices.Equal(words, args[:len(words)]) {
			best, n = &x.commands[i], len(words)
		}
	}
	if best != nil {
		return best, args[n:], nil
	}
	// A group's name alone ("card", "pki ca"): list its commands.
	for k := min(len(args), 3); k > 0; k-- {
		group := strings.Join(args[:k], " ")
		var in []command
		for _, c := range x.commands {
			if strings.HasPrefix(c.name, group+" ") {
				in = append(in, c)
			}
		}
		if len(in) > 0 {
			fmt.Fprintf(os.Stderr, "samd %s %s commands:\n", x.name, group)
			listCommands(os.Stderr, in)
			return nil, nil, fmt.Errorf("%s: which command? (samd %s %s COMMAND -h)", group, x.name, group)
		}
	}
	return nil, nil, fmt.Errorf("unknown command %q (samd %s -h lists them)", args[0], x.name)
}

// parseInterspersed parses fs's flags from args, with the operands
// anywhere among them ("approve ID --out F" or "approve --out F ID"), and
// returns the operands. After "--" everything is an operand.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var after []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, after = args[:i], args[i+1:]
	}
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return append(operands, after...), nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// usage prints samd client's (or admin's) help: its connection flags and
// its commands.
func (x *cli) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: samd %s [connection flags] COMMAND [flags] [operands]\n", x.name)
	fmt.Fprintf(w, "       samd %s COMMAND -h      the command's flags\n\n%s\nConnection flags:\n", x.name, x.intro)
	printFlags(w, fs)
	fmt.Fprintln(w, "\nCommands:")
	listCommands(w, x.commands)
}

// commandUsage prints one command's help and every flag of it.
func (x *cli) commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	synopsis := "samd " + x.name + " [connection flags] " + cmd.name
	var n int
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		synopsis += " [flags]"
	}
	if cmd.args != "" {
		synopsis += " " + cmd.args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", synopsis, cmd.help)
	if cmd.more != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(cmd.more, "\n"))
	}
	if n == 0 {
		fmt.Fprintln(w, "\nNo flags.")
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	printFlags(w, fs)
}

// listCommands prints one line per command: its name, operands and help.
func listCommands(w io.Writer, cmds []command) {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name+" "+c.args))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(c.name+" "+c.args), c.help)
	}
}

// printFlags prints one line per flag: --name VALUE, its help and its
// default when that is not the zero value. A help that ends by naming the
// value (", `N`" or " (`FILE`)") has that end dropped: the value's name
// stands beside the flag.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	type line struct{ left, help string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if name != "" {
			left += " " + name
			help = strings.TrimSuffix(strings.TrimSuffix(help, ", "+name), " ("+name+")")
		}
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			help += " (default " + f.DefValue + ")"
		}
		lines = append(lines, line{left, help})
		width = max(width, len(left))
	})
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l.left, l.help)
	}
}

// bytesFlag is a byte field that may hold text: --NAME takes it in hex,
// --NAME-ascii as text (its bytes are sent, in hex).
type bytesFlag struct {
	name, hex, text string
}

// addBytes registers --name and --name-ascii on fs; what says what the
// bytes are.
func addBytes(fs *flag.FlagSet, name, what string) *bytesFlag {
	b := &bytesFlag{name: name}
	fs.StringVar(&b.hex, name, "", what+", in `HEX`")
	fs.StringVar(&b.text, name+"-ascii", "", what+", as `TEXT` (instead of --"+name+")")
	return b
}

// value returns the bytes in hex, from whichever of the pair was given.
func (b *bytesFlag) value() (string, error) {
	if b.text == "" {
		return b.hex, nil
	}
	if b.hex != "" {
		return "", fmt.Errorf("give --%s or --%s-ascii, not both", b.name, b.name)
	}
	return hex.EncodeToString([]byte(b.text)), nil
}

// optUint is an optional number: unset unless the flag is given.
type optUint struct {
	v     uint32
	set   bool
	limit uint64
}

// addOptUint registers an optional number of at most limit.
func addOptUint(fs *flag.FlagSet, name string, limit uint64, usage string) *optUint {
	o := &optUint{limit: limit}
	fs.Var(o, name, usage)
	return o
}

func (o *optUint) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatUint(uint64(o.v), 10)
}

func (o *optUint) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > o.limit {
		return fmt.Errorf("want a number from 0 to %d", o.limit)
	}
	o.v, o.set = uint32(n), true
	return nil
}

// ptr returns the number, or nil when it was not given.
func (o *optUint) ptr() *uint32 {
	if !o.set {
		return nil
	}
	v := o.v
	return &v
}
