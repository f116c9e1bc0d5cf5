package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
)

const benchUsage = `usage: samd bench --dev DIR [flags]

Starts samd on DIR (made by "samd dev --init-only --dir DIR"), drives it over
mTLS with each mix at each concurrency, measures the token's own ceiling in
the same run, and reports throughput, latency percentiles, errors, and
samd's CPU and memory.

`

// benchResult is one measured step.
type benchResult struct {
	Mix       string  `json:"mix"`
	Conns     int     `json:"conns"`
	Paced     float64 `json:"paced_rate,omitempty"` // calls/s offered, 0 = closed loop
	Calls     int     `json:"calls"`
	Items     int     `json:"items"`
	Errors    int     `json:"errors"`
	CallsPerS float64 `json:"calls_per_s"`
	ItemsPerS float64 `json:"items_per_s"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	CPU       float64 `json:"samd_cpu_percent"`
	// CPUPerCall is samd's CPU time (user and system, the HSM module's
	// work in samd's process included) per call, in µs; a session is one
	// call.
	CPUPerCall float64 `json:"samd_cpu_us_per_call"`
	// Ceiling is the token's work the step asked for — items/s times
	// the CMACs each item costs in the HSM (hsmPerItem) — as a share of
	// the AES-CMAC ceiling measured in the same run.
	Ceiling  float64 `json:"cmac_ceiling_share"`
	RSSMiB   float64 `json:"samd_rss_mib"`
	Threads  int     `json:"samd_threads"`
	FirstErr string  `json:"first_error,omitempty"`
}

// ceiling is the token's own throughput, measured in this process.
type ceiling struct {
	Sessions int     `json:"sessions"`
	CMAC     float64 `json:"aes_cmac_per_s"`
	ECDSA    float64 `json:"ecdsa_p256_per_s"`
}

type benchReport struct {
	Machine  string        `json:"machine"`
	Started  time.Time     `json:"started"`
	Ceilings []ceiling     `json:"ceilings"`
	Results  []benchResult `json:"results"`
	Soak     []soakSample  `json:"soak,omitempty"`
}

type soakSample struct {
	At      float64 `json:"seconds"`
	RSSMiB  float64 `json:"samd_rss_mib"`
	Threads int     `json:"samd_threads"`
	CallsPS float64 `json:"calls_per_s"`
	P99     float64 `json:"p99_ms"`
}

func cmdBench(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, benchUsage); printFlags(os.Stderr, fs) }
	dir := fs.String("dev", ".samd-dev", "the development `DIR` to serve")
	mixes := fs.String("mix", "kcv,kcv-batch,ev2,ev2-stream,seal,seal-batch,sun,sun-batch,value", "the mixes to run, comma-separated, `LIST`")
	connsFlag := fs.String("conns", "1,2,4,8,16", "concurrent connections per step, comma-separated (at most the configuration's limits.max_connections_per_client, 64 by default), `LIST`")
	duration := fs.Duration("duration", 5*time.Second, "the length of each step, `D`")
	batch := fs.Int("batch", 100, "items per batch call, `N`")
	half := fs.Bool("half", false, "also run each mix paced at half its best throughput (p99 at half load)")
	soak := fs.Duration("soak", 0, "instead: run the kcv mix at half load for `D`, sampling samd's memory")
	jsonOut := fs.String("json", "", "write the results as JSON to `FILE`")
	svgOut := fs.String("svg", "", "write a latency (p99) versus throughput chart to `FILE`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var conns []int
	for _, c := range strings.Split(*connsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf("--conns: %q", c)
		}
		conns = append(conns, n)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	cfg, err := config.Load(filepath.Join(abs, "samd.yaml"))
	if err != nil {
		return fmt.Errorf("%w (make the directory with: samd dev --init-only --dir %s)", err, *dir)
	}
	d, err := spawnSamd(abs)
	if err != nil {
		return err
	}
	defer d.stop()
	rep := &benchReport{Machine: machine(), Started: time.Now().UTC()}
	b := &bench{dir: abs, addr: d.addr, adminAddr: d.admin, pid: d.pid, duration: *duration, batch: *batch}
	if err := b.prepare(); err != nil {
		return err
	}

	if *soak > 0 {
		return b.runSoak(out, rep, *soak, *jsonOut)
	}
	// The token's ceiling, with as many sessions as samd's pool at each
	// step, measured while samd is idle.
	for _, c := range []int{1, cfg.HSM.Sessions} {
		if c == 0 {
			c = 8
		}
		ce, err := measureCeiling(cfg, c, *duration)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		rep.Ceilings = append(rep.Ceilings, ce)
		fmt.Fprintf(out, "token ceiling, %2d sessions: AES-CMAC %8.0f/s   ECDSA P-256 sign %7.0f/s\n", ce.Sessions, ce.CMAC, ce.ECDSA)
	}
	var top float64
	for _, c := range rep.Ceilings {
		top = max(top, c.CMAC)
	}
	fmt.Fprintf(out, "\n%-14s %5s %9s %9s %8s %8s %8s %8s %6s %6s %7s %7s %7s\n", "mix", "conns", "calls/s", "items/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "errors", "CPU%", "µs/call", "% CMAC", "RSS MiB")
	for _, mix := range strings.Split(*mixes, ",") {
		mix = strings.TrimSpace(mix)
		if _, ok := b.op(mix); !ok {
			return fmt.Errorf("unknown mix %q", mix)
		}
		var best benchResult
		for _, c := range conns {
			r, err := b.run(mix, c, 0)
			if err != nil {
				return err
			}
			r.Ceiling = ceilingShare(r, top, *batch)
			rep.Results = append(rep.Results, r)
			printResult(out, r)
			if r.ItemsPerS > best.ItemsPerS {
				best = r
			}
		}
		if *half && best.CallsPerS > 0 {
			r, err := b.run(mix, best.Conns, best.CallsPerS/2)
			if err != nil {
				return err
			}
			r.Ceiling = ceilingShare(r, top, *batch)
			rep.Results = append(rep.Results, r)
			printResult(out, r)
		}
	}
	printRatios(out, rep)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if *svgOut != "" {
		if err := os.WriteFile(*svgOut, []byte(svgChart(rep)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func printResult(out io.Writer, r benchResult) {
	label := r.Mix
	if r.Paced > 0 {
		label += "@half"
	}
	fmt.Fprintf(out, "%-14s %5d %9.0f %9.0f %8.2f %8.2f %8.2f %8.2f %6d %6.0f %7.0f %7.1f %7.1f\n",
		label, r.Conns, r.CallsPerS, r.ItemsPerS, r.P50, r.P90, r.P99, r.P999, r.Errors, r.CPU, r.CPUPerCall, 100*r.Ceiling, r.RSSMiB)
	if r.FirstErr != "" {
		fmt.Fprintf(out, "            first error: %s\n", r.FirstErr)
	}
}

// hsmPerItem is how many AES-CMACs in the token one item of a mix costs:
// a KCV, an object seal and a value authorisation's seal one; a SUN
// message two (its SDMMetaReadKey and SDMFileReadKey), a batch one per
// message and one for the batch; an EV2 session over unary calls two
// (BeginAuth and FinishAuth each diversify the card key), over a stream
// one (the card key stays in memory between the two steps). Sealing
// session tokens costs the token one keystream per epoch, nothing per
// call.
func hsmPerItem(mix string, batch int) float64 {
	switch mix {
	case "sun", "ev2":
		return 2
	case "sun-batch":
		return 1 + 1/float64(batch)
	}
	return 1
}

// ceilingShare is the token's work a step asked for, as a share of the
// AES-CMAC ceiling top.
func ceilingShare(r benchResult, top float64, batch int) float64 {
	if top == 0 {
		return 0
	}
	return r.ItemsPerS * hsmPerItem(r.Mix, batch) / top
}

// printRatios sums up each mix at its best throughput: samd's CPU per
// call and the share of the token's AES-CMAC ceiling it reached.
func printRatios(out io.Writer, rep *benchReport) {
	var top float64
	for _, c := range rep.Ceilings {
		top = max(top, c.CMAC)
	}
	fmt.Fprintf(out, "\nat best throughput (AES-CMAC ceiling %.0f/s):\n", top)
	var mixes []string
	best := map[string]benchResult{}
	for _, r := range rep.Results {
		if r.Paced > 0 {
			continue
		}
		if _, ok := best[r.Mix]; !ok {
			mixes = append(mixes, r.Mix)
		}
		if r.ItemsPerS > best[r.Mix].ItemsPerS {
			best[r.Mix] = r
		}
	}
	for _, mix := range mixes {
		r := best[mix]
		fmt.Fprintf(out, "  %-12s %9.0f items/s, %5.0f µs of samd CPU per call, %5.1f%% of the CMAC ceiling\n", mix, r.ItemsPerS, r.CPUPerCall, 100*r.Ceiling)
	}
}

func machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	return fmt.Sprintf("%d x %s", n, cpu)
}

// samdProc is a samd child process.
type samdProc struct {
	cmd         *exec.Cmd
	addr, admin string
	pid         int
}

func (p *samdProc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// spawnSamd starts "samd serve" on the directory's configuration, on a
// free loopback port, and waits until it listens.
func spawnSamd(dir string) (*samdProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "serve", "--config", filepath.Join(dir, "samd.yaml"), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--pki-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addrc, adminc := make(chan string, 1), make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`"?msg"?[=:]"samd serving".*?addr"?[=:]"?([0-9.:]+)`)
		are := regexp.MustCompile(`"?msg"?[=:]"admin listening".*?addr"?[=:]"?([0-9.:]+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := are.FindStringSubmatch(sc.Text()); m != nil {
				adminc <- m[1]
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	select {
	case a := <-addrc:
		p := &samdProc{cmd: cmd, addr: a, pid: cmd.Process.Pid}
		select {
		case p.admin = <-adminc:
		default: // a configuration without an admin listener
		}
		return p, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("samd did not start within 60s")
	}
}

// procStat reads a process's CPU time (seconds), RSS (MiB) and threads.
func procStat(pid int) (cpu, rss float64, threads int) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name in parentheses: utime is field 14,
		// stime 15 (1-based), in clock ticks (100/s on Linux).
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+2:])
			if len(f) > 13 {
				u, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpu = (u + st) / 100
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			f := strings.Fields(v)
			switch {
			case k == "VmRSS" && len(f) > 0:
				kb, _ := strconv.ParseFloat(f[0], 64)
				rss = kb / 1024
			case k == "Threads" && len(f) > 0:
				threads, _ = strconv.Atoi(f[0])
			}
		}
	}
	return cpu, rss, threads
}

// bench holds what the mixes need.
type bench struct {
	dir, addr string
	adminAddr string
	pid       int
	duration  time.Duration
	batch     int
	cardKey   []byte // the AN10922 example card key, for the simulated cards
	metaKey   []byte
	fileKey   []byte
	tagSeq    atomic.Uint32
}

var benchUID = mustHex("04782E21801D80")

// prepare derives the simulated cards' keys (from the published AN10922
// example master, which samd dev loads as a test key) and tops up the
// terminal's allowance for the value mix.
func (b *bench) prepare() error {
	soft := func(m []byte) []byte {
		blk, _ := aes.NewCipher(mustHex("00112233445566778899AABBCCDDEEFF"))
		in, err := derive.RawInput(m)
		if err != nil {
			panic(err)
		}
		k, err := derive.Diversify(context.Background(), softCMACer{blk}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
		if err != nil {
			panic(err)
		}
		return append([]byte(nil), k.Reveal()...)
	}
	b.cardKey = soft(append(append(append([]byte(nil), benchUID...), mustHex("3042F5")...), "NXP Abu"...))
	aid, sys := mustHex("F48EE1"), []byte("samd-test-sun-tags")
	b.metaKey = soft(append(append([]byte(nil), aid...), sys...))
	b.fileKey = nil // per tag, in sunTag
	c, err := newClient(clientOptions{addr: b.addr, adminAddr: b.adminAddr, dev: b.dir, as: "officer"})
	if err != nil {
		return err
	}
	// One officer tops up 1 000 000 000 a day alone (admin.topup_limit):
	// a directory benched before today may have enough left.
	const device, need = "dev-operator/dev-terminal-1", 100_000_000
	if a, err := c.adm.GetAllowance(context.Background(), connect.NewRequest(&samdv1.GetAllowanceRequest{Device: device})); err == nil && a.Msg.GetBalance() >= need {
		return nil
	}
	_, err = c.adm.TopUpAllowance(context.Background(), connect.NewRequest(&samdv1.TopUpAllowanceRequest{
		Device: device, Amount: 1_000_000_000, Currency: "NOK"}))
	return err
}

// benchOp runs one call of a mix on a worker's client and returns how many
// items it carried.
type benchOp func(ctx context.Context, c *client, w *worker) (int, error)

// worker is one connection's state.
type worker struct {
	id   int
	card *cardsim.EV2
	tag  *cardsim.SUN
}

func (b *bench) sunTag(id int) *cardsim.SUN {
	uid := make([]byte, 7)
	uid[0] = 0x04
	binary.BigEndian.PutUint32(uid[3:], b.tagSeq.Add(1)+uint32(id)<<20)
	aid, sys := mustHex("F48EE1"), []byte("samd-test-sun-tags")
	blk, _ := aes.NewCipher(mustHex("00112233445566778899AABBCCDDEEFF"))
	in, _ := derive.RawInput(append(append(append([]byte(nil), uid...), aid...), sys...))
	fk, _ := derive.Diversify(context.Background(), softCMACer{blk}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
	return &cardsim.SUN{UID: uid, MetaKey: b.metaKey, FileKey: append([]byte(nil), fk.Reveal()...), Rand: rand.Reader}
}

func (b *bench) op(mix string) (benchOp, bool) {
	master := &samdv1.KeyRef{Name: "desfire/dev/app-master-aes128", Version: 1}
	randInput := func() *samdv1.DiversificationInput {
		u := make([]byte, 7)
		_, _ = rand.Read(u)
		return &samdv1.DiversificationInput{Uid: hex.EncodeToString(u), Aid: "3042F5", SystemIdentifier: "4E585020416275"}
	}
	obj := func() *samdv1.DataObject {
		u := make([]byte, 7)
		_, _ = rand.Read(u)
		return &samdv1.DataObject{Type: 1, CardId: hex.EncodeToString(u), Sequence: 1, ProductOwner: "dev-operator", Data: "00112233445566778899AABBCCDDEEFF"}
	}
	switch mix {
	case "kcv":
		return func(ctx context.Context, c *client, _ *worker) (int, error) {
			_, err := c.div.DiversifiedKeyCheckValue(ctx, connect.NewRequest(&samdv1.DiversifiedKeyCheckValueRequest{MasterKey: master, Input: randInput()}))
			return 1, err
		}, true
	case "kcv-batch":
		return func(ctx context.Context, c *client, _ *worker) (int, error) {
			req := &samdv1.DiversifiedKeyCheckValuesRequest{MasterKey: master}
			for range b.batch {
				req.Inputs = append(req.Inputs, randInput())
			}
			r, err := c.div.DiversifiedKeyCheckValues(ctx, connect.NewRequest(req))
			if err == nil && r.Msg.GetFailed() > 0 {
				err = fmt.Errorf("%d inputs failed", r.Msg.GetFailed())
			}
			return b.batch, err
		}, true
	case "seal", "seal-batch":
		n := 1
		if mix == "seal-batch" {
			n = b.batch
		}
		return func(ctx context.Context, c *client, _ *worker) (int, error) {
			req := &samdv1.SealObjectsRequest{Profile: "product-entity"}
			for range n {
				req.Objects = append(req.Objects, obj())
			}
			r, err := c.macs.SealObjects(ctx, connect.NewRequest(req))
			if err == nil && r.Msg.GetFailed() > 0 {
				err = fmt.Errorf("%d objects failed", r.Msg.GetFailed())
			}
			return n, err
		}, true
	case "sun", "sun-batch":
		n := 1
		if mix == "sun-batch" {
			n = b.batch
		}
		return func(ctx context.Context, c *client, w *worker) (int, error) {
			req := &samdv1.VerifySUNBatchRequest{}
			for range n {
				picc, enc, in, mac := w.tag.Tap()
				req.Messages = append(req.Messages, &samdv1.VerifySUNRequest{Profile: "test-tags", PiccData: hex.EncodeToString(picc),
					EncFileData: hex.EncodeToString(enc), MacInput: hex.EncodeToString(in), Sdmmac: hex.EncodeToString(mac)})
			}
			if n == 1 {
				_, err := c.card.VerifySUN(ctx, connect.NewRequest(req.Messages[0]))
				return 1, err
			}
			r, err := c.card.VerifySUNBatch(ctx, connect.NewRequest(req))
			if err == nil && r.Msg.GetFailed() > 0 {
				err = fmt.Errorf("%d messages failed", r.Msg.GetFailed())
			}
			return n, err
		}, true
	case "value":
		return func(ctx context.Context, c *client, _ *worker) (int, error) {
			_, err := c.val.AuthorizeValue(ctx, connect.NewRequest(&samdv1.AuthorizeValueRequest{Amount: 1, Currency: "NOK", ProductOwner: "dev-operator", Purpose: samdv1.Purpose_PURPOSE_LOAD,
				CardId: "04782E21801D80", Tsn: 1, TransactionType: 11}))
			return 1, err
		}, true
	case "ev2":
		return b.ev2Session, true
	case "ev2-stream":
		return b.ev2Stream, true
	}
	return nil, false
}

// ev2Session is a full EV2 card session: AuthenticateEV2First (begin and
// finish) and two protected commands, ReadData in MAC mode and in FULL
// mode, with the card simulated here.
func (b *bench) ev2Session(ctx context.Context, c *client, w *worker) (int, error) {
	_, ch := w.card.Transceive(0x71, []byte{0, 0})
	br, err := c.card.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
		Key: &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1},
			Input: &samdv1.DiversificationInput{Uid: "04782E21801D80", Aid: "3042F5", SystemIdentifier: "4E585020416275"}},
		CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		return 0, err
	}
	st, ans := w.card.Transceive(0xAF, mustHex(br.Msg.GetPcdResponse()))
	if st != cardsim.StatusOK {
		return 0, fmt.Errorf("card refused authentication: %02X", st)
	}
	fr, err := c.card.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: br.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		return 0, err
	}
	s := fr.Msg.GetSession()
	for _, f := range []struct {
		file byte
		mode samdv1.CommMode
	}{{1, samdv1.CommMode_COMM_MODE_MAC}, {2, samdv1.CommMode_COMM_MODE_FULL}} {
		pr, err := c.card.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: 0xAD,
			Header: hex.EncodeToString([]byte{f.file, 0, 0, 0, 16, 0, 0}), Mode: samdv1.CommMode_COMM_MODE_MAC}))
		if err != nil {
			return 0, err
		}
		st, resp := w.card.Transceive(0xAD, mustHex(pr.Msg.GetData()))
		if st != cardsim.StatusOK {
			return 0, fmt.Errorf("card answered %02X", st)
		}
		cr, err := c.card.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: pr.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: f.mode}))
		if err != nil {
			return 0, err
		}
		s = cr.Msg.GetSession()
	}
	return 1, nil
}

// ev2Stream is ev2Session in one stream (CardService.Session): the same
// six steps, no session token, one audit record.
func (b *bench) ev2Stream(ctx context.Context, c *client, w *worker) (int, error) {
	s := c.openCardStream(ctx)
	defer s.s.CloseResponse()
	_, ch := w.card.Transceive(0x71, []byte{0, 0})
	br, err := s.step(beginStep(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
		Key: &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1},
			Input: &samdv1.DiversificationInput{Uid: "04782E21801D80", Aid: "3042F5", SystemIdentifier: "4E585020416275"}},
		CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		return 0, err
	}
	st, ans := w.card.Transceive(0xAF, mustHex(br.GetBegin().GetPcdResponse()))
	if st != cardsim.StatusOK {
		return 0, fmt.Errorf("card refused authentication: %02X", st)
	}
	if _, err := s.step(finishStep(ans)); err != nil {
		return 0, err
	}
	for _, f := range []struct {
		file byte
		mode samdv1.CommMode
	}{{1, samdv1.CommMode_COMM_MODE_MAC}, {2, samdv1.CommMode_COMM_MODE_FULL}} {
		pr, err := s.step(protectStep(&samdv1.ProtectCommandRequest{Command: 0xAD, Header: hex.EncodeToString([]byte{f.file, 0, 0, 0, 16, 0, 0}), Mode: samdv1.CommMode_COMM_MODE_MAC}))
		if err != nil {
			return 0, err
		}
		st, resp := w.card.Transceive(0xAD, mustHex(pr.GetProtect().GetData()))
		if st != cardsim.StatusOK {
			return 0, fmt.Errorf("card answered %02X", st)
		}
		if _, err := s.step(checkStep(&samdv1.CheckResponseRequest{Status: uint32(st), Data: hex.EncodeToString(resp), Mode: f.mode})); err != nil {
			return 0, err
		}
	}
	return 1, s.close()
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

// run drives one mix with conns connections for the step's duration;
// with rate > 0 the calls are paced (open loop) and latency counts from
// each call's scheduled start.
func (b *bench) run(mix string, conns int, rate float64) (benchResult, error) {
	op, _ := b.op(mix)
	clients := make([]*client, conns)
	workers := make([]*worker, conns)
	defer func() {
		// One client's connections are limited (limits.max_connections_per_client):
		// each step closes its own.
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	}()
	for i := range clients {
		c, err := newClient(clientOptions{addr: b.addr, dev: b.dir, as: "terminal", timeout: 30 * time.Second})
		if err != nil {
			return benchResult{}, err
		}
		clients[i] = c
		workers[i] = &worker{id: i, tag: b.sunTag(i),
			card: &cardsim.EV2{Keys: [][]byte{b.cardKey}, Rand: rand.Reader,
				Files: map[byte]*cardsim.File{1: {Data: make([]byte, 16), Mode: 1}, 2: {Data: make([]byte, 16), Mode: 3}}}}
		// Warm the connection (TLS handshake) outside the measurement.
		_, _ = op(context.Background(), c, workers[i])
	}
	cpu0, _, _ := procStat(b.pid)
	ctx, cancel := context.WithTimeout(context.Background(), b.duration)
	defer cancel()
	lat := make([][]time.Duration, conns)
	var items, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(conns) / rate)
			}
			next := start.Add(time.Duration(i) * interval / time.Duration(conns))
			for ctx.Err() == nil {
				t0 := time.Now()
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
					t0 = next
					next = next.Add(interval)
				}
				n, err := op(context.Background(), clients[i], workers[i])
				if ctx.Err() != nil && time.Since(start) > b.duration {
					break
				}
				lat[i] = append(lat[i], time.Since(t0))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				items.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpu1, rss, threads := procStat(b.pid)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := benchResult{Mix: mix, Conns: conns, Paced: rate, Calls: len(all), Items: int(items.Load()), Errors: int(errs.Load()),
		CallsPerS: float64(len(all)) / elapsed, ItemsPerS: float64(items.Load()) / elapsed,
		P50: percentile(all, 0.50), P90: percentile(all, 0.90), P99: percentile(all, 0.99), P999: percentile(all, 0.999),
		CPU: 100 * (cpu1 - cpu0) / elapsed, RSSMiB: rss, Threads: threads}
	if len(all) > 0 {
		r.CPUPerCall = (cpu1 - cpu0) / float64(len(all)) * 1e6
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstErr = e
	}
	return r, nil
}

// runSoak runs the kcv mix at half its saturating throughput for d,
// sampling samd's RSS and threads every 10% of the time.
func (b *bench) runSoak(out io.Writer, rep *benchReport, d time.Duration, jsonOut string) error {
	step := b.duration
	sat, err := b.run("kcv", 8, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "kcv saturates at %.0f calls/s with 8 connections; soaking at %.0f/s for %s\n", sat.CallsPerS, sat.CallsPerS/2, d)
	fmt.Fprintf(out, "%8s %9s %8s %8s %8s\n", "seconds", "calls/s", "p99 ms", "RSS MiB", "threads")
	b.duration = d / 10
	begin := time.Now()
	for range 10 {
		r, err := b.run("kcv", 8, sat.CallsPerS/2)
		if err != nil {
			return err
		}
		s := soakSample{At: time.Since(begin).Seconds(), RSSMiB: r.RSSMiB, Threads: r.Threads, CallsPS: r.CallsPerS, P99: r.P99}
		rep.Soak = append(rep.Soak, s)
		fmt.Fprintf(out, "%8.0f %9.0f %8.2f %8.1f %8d\n", s.At, s.CallsPS, s.P99, s.RSSMiB, s.Threads)
	}
	b.duration = step
	if jsonOut != "" {
		j, _ := json.MarshalIndent(rep, "", "  ")
		return os.WriteFile(jsonOut, j, 0o644)
	}
	return nil
}

// measureCeiling measures the token itself: AES-CMAC and ECDSA P-256
// signatures through PKCS#11 with n sessions, in this process, on the
// same token samd uses.
func measureCeiling(cfg *config.Config, n int, d time.Duration) (ceiling, error) {
	for k, v := range cfg.HSM.Env {
		os.Setenv(k, v)
	}
	uri, err := config.ParsePKCS11URI(cfg.HSM.URI)
	if err != nil {
		return ceiling{}, err
	}
	pin, err := readPIN(cfg, uri)
	if err != nil {
		return ceiling{}, err
	}
	store, err := pkcs11.Open(context.Background(), pkcs11.Config{ModulePath: uri.ModulePath, TokenLabel: uri.Token, TokenSerial: uri.Serial,
		PIN: pin, Sessions: n, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return ceiling{}, err
	}
	defer store.Close()
	ref, _ := keys.NewRef("desfire/dev/app-master-aes128", 1)
	master, err := store.Key(ref)
	if err != nil {
		return ceiling{}, err
	}
	caRef, _ := keys.NewRef("pki/dev/scheme-ca", 1)
	caKey, err := store.Key(caRef)
	if err != nil {
		return ceiling{}, err
	}
	signer, err := store.Signer(caKey)
	if err != nil {
		return ceiling{}, err
	}
	msg := append([]byte{0x01}, mustHex("04782E21801D803042F54E585020416275")...)
	digest := sha256.Sum256(msg)
	loop := func(f func() error) float64 {
		var count atomic.Int64
		deadline := time.Now().Add(d / 2)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if f() == nil {
						count.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(count.Load()) / (d / 2).Seconds()
	}
	ctx := context.Background()
	c := ceiling{Sessions: n}
	c.CMAC = loop(func() error { m, err := store.CMAC(ctx, master, msg); clear(m); return err })
	c.ECDSA = loop(func() error { _, err := signer.SignContext(ctx, digest[:], crypto.SHA256); return err })
	return c, nil
}

// svgChart draws p99 latency against throughput, one line per mix.
func svgChart(rep *benchReport) string {
	const w, h, m = 760, 420, 60
	var maxX, maxY float64
	series := map[string][][2]float64{}
	var names []string
	for _, r := range rep.Results {
		if r.Paced > 0 {
			continue
		}
		if _, ok := series[r.Mix]; !ok {
			names = append(names, r.Mix)
		}
		series[r.Mix] = append(series[r.Mix], [2]float64{r.ItemsPerS, r.P99})
		maxX, maxY = max(maxX, r.ItemsPerS), max(maxY, r.P99)
	}
	if maxX == 0 || maxY == 0 {
		return `<svg xmlns="http://www.w3.org/2000/svg"/>`
	}
	colors := []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="white"/>`, w, h)
	fmt.Fprintf(&sb, `<text x="%d" y="20">samd: p99 latency versus throughput (%s)</text>`, m, rep.Machine)
	fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, m, h-m, w-20, h-m, m, h-m, m, 30)
	fmt.Fprintf(&sb, `<text x="%d" y="%d">items/s (max %.0f)</text><text x="5" y="40">p99 ms (max %.1f)</text>`, w/2, h-20, maxX, maxY)
	px := func(x float64) float64 { return m + x/maxX*float64(w-m-20) }
	py := func(y float64) float64 { return float64(h-m) - y/maxY*float64(h-m-30) }
	for i, name := range names {
		col := colors[i%len(colors)]
		var pts []string
		for _, p := range series[name] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, col, strings.Join(pts, " "))
		fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="%s">%s</text>`, w-140, 50+16*i, col, name)
	}
	sb.WriteString(`</svg>`)
	return sb.String()
}
