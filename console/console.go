// Package console is the officers' console: web pages on the admin
// listener for dual control, keys, the scheme PKI, negative lists, the
// audit log and samd's health (issue 21).
//
// # Trust
//
// The console is a transport, like package server, and holds no authority
// of its own. It is served on the admin listener, behind the same mTLS:
// the officer's browser presents the officer's client certificate, and
// there is no password and no session of the console's own. Every read and
// every action is a call of samd's API made in-process through the
// server's own handler (server.Server.Local) with the TLS state of the
// browser's connection, so the server's identity, authorisation table,
// officer registry, policy and audit chain decide and record it exactly as
// for `samd admin` (the audit record names via "console"). The console
// never reads a store or calls the authority itself. A caller the API
// refuses (no certificate, a terminal's, an officer outside the registry)
// gets no page: only the refusal.
//
// # Browser security
//
// Every answer carries a strict Content Security Policy (no inline script
// or style, nothing from another origin, no framing), nosniff and
// no-referrer, and pages with data are not cached. Only POST changes
// anything, and a POST must come from the console's own origin (Origin,
// Sec-Fetch-Site) and carry the page's CSRF token, a MAC bound to the
// officer's certificate and the hour under a key held in memory
// (csrf.go); a change refused for either is recorded in samd's audit log
// (Config.Refused). A GET that another site's page makes without a
// top-level navigation is refused before any API call, and a link from
// another site shows the page without reading its query (fetchedFrom):
// the officer's client certificate is presented to whatever page asks.
// A GET page shows an API error only as its stable code and a fixed
// sentence (getMessage), never text of the request. No secret is ever in
// a page: a key component typed into a form is sent once to the API and
// never written back, and wrapped key material appears only as the
// digests the API answers with.
//
// # Pages
//
// The navigation is the table pages; each page is a handler that fills a
// view from API reads and a template of the same name. Proposal
// parameters are shown generically from their canonical JSON, with check
// values and digests marked (params.go), so a new operation needs no
// page of its own.
package console

import (
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/server"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served on the admin listener.
const Prefix = "/console/"

// Via is the name the console's API calls carry into the audit record.
const Via = "console"

// maxForm bounds a form's body.
const maxForm = 64 << 10

// Config configures a Console.
type Config struct {
	// API serves samd's API in-process with the caller's TLS state:
	// server.Server.Local(console.Via).
	API http.Handler
	// Refused records in samd's audit log a change the console refused
	// before any API call (not from its own origin, or without the
	// page's token): r is the browser's request, whose verified client
	// certificate names the caller; method names the console's action
	// ("console:" and its path pattern); reason is the console's fixed
	// text. cmd/samd passes server.Server.Refused; nil records nothing
	// (tests of the console alone).
	Refused func(r *http.Request, method, reason string) error
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Console serves the officers' console.
type Console struct {
	cfg   Config
	api   *api
	key   csrfKey
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// page is one page in the navigation, in this order: its path under
// Prefix and its template's name, its title, and the handler that fills
// its view from API reads. A page is added by adding an entry, its
// handler and its template.
type page struct {
	path, title string
	load        func(c *Console, r *http.Request, v *view) error
}

var pages = []page{
	{"proposals", "Proposals", (*Console).proposals},
	{"keys", "Keys", (*Console).keys},
	{"pki", "PKI", (*Console).pki},
	{"lists", "Negative lists", (*Console).lists},
	{"audit", "Audit", (*Console).audit},
	{"health", "Health", (*Console).health},
}

// views are the templates that are not in the navigation.
var views = []string{"proposal", "propose", "revoke", "refused"}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, fmt.Errorf("console: API is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, api: newAPI(cfg.API), pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	if _, err := rand.Read(c.key[:]); err != nil {
		return nil, err
	}
	base, err := template.New("layout.html").Funcs(c.funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names := views
	for _, p := range pages {
		names = append(names, p.path)
	}
	for _, name := range names {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	c.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=3600")
		files.ServeHTTP(w, r)
	})))
	c.mux.HandleFunc("GET "+Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+pages[0].path, http.StatusSeeOther)
	})
	for _, p := range pages {
		c.mux.HandleFunc("GET "+Prefix+p.path, func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, p.path, p.load) })
	}
	c.mux.HandleFunc("GET "+Prefix+"proposals/{id}", func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, "proposal", (*Console).proposal) })
	c.mux.HandleFunc("POST "+Prefix+"proposals/{id}/{vote}", c.vote)
	c.mux.HandleFunc("GET "+Prefix+"propose", func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, "propose", (*Console).proposeForm) })
	c.mux.HandleFunc("POST "+Prefix+"propose", c.propose)
	c.mux.HandleFunc("GET "+Prefix+"pki/revoke", func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, "revoke", (*Console).revokeForm) })
	c.mux.HandleFunc("POST "+Prefix+"pki/revoke", c.revoke)
	c.mux.HandleFunc("POST "+Prefix+"lists/{change}", c.changeList)
}

// Handler serves the console under Prefix, and hands every other
// request to next (the admin listener's API handler). A browser's visit
// to the listener's root is sent to the console.
func (c *Console) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, Prefix) || r.URL.Path == "/favicon.ico" || r.URL.Path == "/" && r.Method == http.MethodGet:
			secure(w.Header())
			switch r.URL.Path {
			case "/":
				http.Redirect(w, r, Prefix, http.StatusSeeOther)
			case "/favicon.ico":
				http.NotFound(w, r)
			default:
				c.mux.ServeHTTP(w, r)
			}
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// csp is the Content Security Policy of every answer: the console's own
// style sheet and images, no script but its own files (it has none), no
// inline code of any kind, forms only to itself, never framed.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every answer of the console carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// view is what a page's template renders.
type view struct {
	Title   string
	Page    string
	Nav     []navItem
	Officer string
	Status  *samdv1.StatusResponse
	CSRF    string
	Flash   string
	Error   string
	Now     time.Time
	Data    any
}

type navItem struct {
	Path, Title string
	Current     bool
}

func (c *Console) newView(r *http.Request, name string) *view {
	v := &view{Page: name, Now: c.cfg.Now()}
	for _, p := range pages {
		v.Nav = append(v.Nav, navItem{Path: p.path, Title: p.title, Current: p.path == name || name == "proposal" && p.path == "proposals"})
		if p.path == name {
			v.Title = p.title
		}
	}
	if cert := clientCert(r); cert != nil {
		v.CSRF = c.key.token(cert, v.Now)
		if p, err := identity.FromClientCertificate(r.TLS.VerifiedChains[0][0]); err == nil {
			v.Officer = p.Operator + "/" + p.Device
		}
	}
	return v
}

// clientCert is the verified client certificate of the browser's
// connection (DER), nil without one.
func clientCert(r *http.Request) []byte {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0].Raw
}

// refused reports whether the API refused the caller itself.
func refused(err error) bool {
	code := connect.CodeOf(err)
	return code == connect.CodeUnauthenticated || code == connect.CodePermissionDenied
}

// serve renders a page: the caller is first asked of the API (Status,
// whose answer every page shows at its top); a caller it refuses gets no
// page. Then load fills the view from the page's own API reads.
//
// Before any API call, the request's Fetch Metadata decides (fetchedFrom):
// what another site's page embeds or fetches gets a fixed refusal and
// no API call, and a link followed from another site gets the page's
// plain state — its URL's query is not read, and a proposal is not
// looked up — with a notice to open it from the console.
func (c *Console) serve(w http.ResponseWriter, r *http.Request, name string, load func(*Console, *http.Request, *view) error) {
	switch fetchedFrom(r) {
	case fromEmbed:
		c.render(w, http.StatusForbidden, "refused", &view{Title: "No page", Error: errEmbedded})
		return
	case fromLink:
		r = r.Clone(r.Context())
		r.URL.RawQuery = ""
		if name == "proposal" {
			load = (*Console).linked
		}
		c.show(w, r, name, load, errLinked)
		return
	}
	c.show(w, r, name, load, nil)
}

// errEmbedded is the whole answer to a request that another site's page
// made without the officer navigating to the console.
const errEmbedded = "The console answers only pages of its own, and links the officer follows: this request came from another site's page."

// errLinked tells show that serve is answering a link from another site,
// whose page carries linkedNotice.
var errLinked = errors.New("console: a link from another site")

// linkedNotice is the notice on a page opened by a link from another site.
const linkedNotice = "This page was opened from another site's link: it is shown without what the link asked for. Open what you need from the console's own pages."

// linked stands for a page whose subject is in its URL (a proposal),
// opened by a link from another site: nothing is looked up.
func (c *Console) linked(*http.Request, *view) error { return nil }

// origin is where a GET came from, by its Fetch Metadata.
type origin int

const (
	// fromConsole: the console's own pages (Sec-Fetch-Site same-origin),
	// the officer's own navigation (none: a typed address or a
	// bookmark), or a client that sends no Fetch Metadata (not a
	// browser, or a browser from before it).
	fromConsole origin = iota
	// fromLink: a top-level navigation from another site's page (a link
	// followed, Sec-Fetch-Mode navigate, Sec-Fetch-Dest document).
	fromLink
	// fromEmbed: anything else another site's page makes the browser
	// send (an image, a frame, a fetch).
	fromEmbed
)

// fetchedFrom classifies a GET by its Sec-Fetch-* headers, which no page
// can set (Fetch Metadata Request Headers, W3C). TLS client
// authentication is per connection, not a cookie: the browser presents
// the officer's certificate to whatever page sends the request, and
// SameSite rules do not apply, so the console decides here. same-site is
// another origin too (another port of the same host).
func fetchedFrom(r *http.Request) origin {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		if r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document" {
			return fromLink
		}
		return fromEmbed
	}
	return fromConsole
}

// show is serve, and after an action the API refused or that failed
// (actionErr), the page once more with the action's answer: the page is
// read anew, shown as far as the officer may read it. actionErr errLinked
// is serve's notice for a page opened from another site.
func (c *Console) show(w http.ResponseWriter, r *http.Request, name string, load func(*Console, *http.Request, *view) error, actionErr error) {
	v := c.newView(r, name)
	st, err := call(c.api.officers.Status(as(r), connect.NewRequest(&samdv1.StatusRequest{})))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	v.Status = st
	status := http.StatusOK
	if err := load(c, r, v); err != nil {
		v.Error, status = c.message(r, err), httpStatus(err)
	}
	switch {
	case actionErr == errLinked:
		v.Flash = linkedNotice
	case actionErr != nil:
		v.Error, status = c.message(r, actionErr), httpStatus(actionErr)
	case r.URL.Query().Get("done") != "":
		v.Flash = flashes[r.URL.Query().Get("done")]
	}
	c.render(w, status, name, v)
}

// fail answers a request the API refused with no page at all, and any
// other failure with the page's frame and the error.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	if refused(err) || clientCert(r) == nil {
		c.render(w, httpStatus(err), "refused", &view{Title: "No page", Error: c.message(r, err)})
		return
	}
	v.Error = c.message(r, err)
	c.render(w, httpStatus(err), v.Page, v)
}

func (c *Console) render(w http.ResponseWriter, status int, name string, v *view) {
	if v.Title == "" {
		v.Title = titles[name]
	}
	var b strings.Builder
	if err := c.pages[name].ExecuteTemplate(&b, "layout", v); err != nil {
		c.cfg.Logger.Error("console: template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// titles are the titles of the views outside the navigation.
var titles = map[string]string{"proposal": "Proposal", "propose": "Propose", "revoke": "Revoke a certificate", "refused": "No page"}

// flashes are the messages a redirect after a change may show, by name:
// only these, so that no text from a URL reaches a page.
var flashes = map[string]string{
	"approved":  "Your approval is recorded.",
	"rejected":  "Your rejection is recorded; the proposal is closed.",
	"component": "Your component was checked against its KCV and sealed in the HSM; it counts as your approval.",
	"proposed":  "Proposed; your approval counts. The other officers see it on their proposals page.",
	"revoked":   "Revoked: samd's listeners refuse the certificate at once; the CRL follows.",
	"listed":    "Stored: the entry waits for the list's next version, which samd builds and signs in the background.",
	"unlisted":  "Stored: the entry leaves the list at its next version, which samd builds and signs in the background.",
}

// message is what a page shows of an API error. The answer to the
// officer's own change (a POST, from the console's origin with its
// token) shows the API's message, as `samd admin` prints it. A GET page
// shows only the stable code and a fixed sentence for it (getMessage):
// API messages may repeat what the request asked — an id, a serial, an
// owner — and a GET's URL may be anyone's link, so no text of it reaches
// the page.
func (c *Console) message(r *http.Request, err error) string {
	if r.Method == http.MethodPost {
		return message(err)
	}
	return getMessage(err)
}

// codeSentences are the fixed sentences a GET page shows for each stable
// error code (errkind's names, as server/errors.go sends them in
// Samd-Error-Code).
var codeSentences = map[string]string{
	errkind.InvalidInput.String():    "samd refused the page's search as malformed: check the form's fields.",
	errkind.NotFound.String():        "samd has no such record.",
	errkind.Denied.String():          "samd does not let you read this: an operator's officer reads its own operator's records only.",
	errkind.Unauthenticated.String(): "samd did not accept your client certificate.",
	errkind.Limit.String():           "a limit was reached: try again later.",
	errkind.Busy.String():            "samd is busy: try again later.",
	errkind.Unavailable.String():     "the HSM is unavailable: try again later.",
	errkind.PINRefused.String():      "the HSM is unavailable: try again later.",
	errkind.Internal.String():        "samd failed to answer; its log has the detail under the request's id.",
}

// getMessage is an API error as a GET page shows it: the stable code, a
// fixed sentence for it, and the request's id (samd's own, for its log).
func getMessage(err error) string {
	code := errkind.Internal.String()
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Meta().Get(server.ErrorCodeHeader) != "" {
		code = ce.Meta().Get(server.ErrorCodeHeader)
	}
	sentence, ok := codeSentences[code]
	if !ok {
		code, sentence = errkind.Internal.String(), codeSentences[errkind.Internal.String()]
	}
	msg := code + ": " + sentence
	if ce != nil {
		if id := ce.Meta().Get(server.RequestIDHeader); requestID.MatchString(id) {
			msg += " (request " + id + ")"
		}
	}
	return msg
}

// requestID is the form of samd's request ids (server.newRequestID).
var requestID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// message is an API error's stable code and message, as `samd admin`
// prints them.
func message(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	msg := ce.Message()
	if id := ce.Meta().Get(server.RequestIDHeader); id != "" {
		msg += " (request " + id + ")"
	}
	return msg
}

// httpStatus is the HTTP status of a page that shows an API error.
func httpStatus(err error) int {
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// change checks a state-changing request before anything is done: it
// comes from the console's own origin, from a browser with a verified
// client certificate, and carries that certificate's CSRF token. A
// refusal is answered here, logged, and recorded in samd's audit log
// (Config.Refused: outcome and code denied, the caller from the
// certificate, via console, the method "console:" and the action's path
// pattern, the refusal's fixed text as the reason), and false returned.
func (c *Console) change(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	err := sameOrigin(r)
	cert := clientCert(r)
	if err == nil && cert == nil {
		err = errors.New("console: no client certificate")
	}
	if err == nil {
		if perr := r.ParseForm(); perr != nil {
			err = errors.New("console: the form could not be read")
		} else if !c.key.valid(r.PostForm.Get("csrf"), cert, c.cfg.Now()) {
			err = errors.New("console: the form's token is missing or stale: reload the page and try again")
		}
	}
	if err != nil {
		c.cfg.Logger.Warn("console: change refused", "path", r.URL.Path, "err", err)
		if c.cfg.Refused != nil {
			if aerr := c.cfg.Refused(r, "console:"+strings.TrimPrefix(r.Pattern, http.MethodPost+" "), err.Error()); aerr != nil {
				c.cfg.Logger.Error("console: the refusal's audit record", "path", r.URL.Path, "err", aerr)
			}
		}
		c.render(w, http.StatusForbidden, "refused", &view{Title: "Refused", Error: err.Error()})
		return false
	}
	return true
}

// funcs are the templates' helpers.
func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		// when writes an RFC 3339 time for a person, in UTC.
		"when": func(s string) string {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return s
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		// short cuts a long text to n characters.
		"short": func(s string, n int) string {
			if r := []rune(s); len(r) > n {
				return string(r[:n]) + "…"
			}
			return s
		},
		"join": strings.Join,
		// redact shows wrapped key material as its digest (params.go).
		"redact": redact,
		// base is the last element of an audit chain's name (a log file's
		// path).
		"base": path.Base,
		// method is a method's name without samd's package.
		"method": func(m string) string { return strings.TrimPrefix(m, "/samd.v1.") },
	}
}
