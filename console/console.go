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
// (csrf.go). No secret is ever in a page: a key component typed into a
// form is sent once to the API and never written back, and wrapped key
// material appears only as the digests the API answers with.
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
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
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
func (c *Console) serve(w http.ResponseWriter, r *http.Request, name string, load func(*Console, *http.Request, *view) error) {
	c.show(w, r, name, load, nil)
}

// show is serve, and after an action the API refused or that failed
// (actionErr), the page once more with the action's answer: the page is
// read anew, shown as far as the officer may read it.
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
		v.Error, status = message(err), httpStatus(err)
	}
	switch {
	case actionErr != nil:
		v.Error, status = message(actionErr), httpStatus(actionErr)
	case r.URL.Query().Get("done") != "":
		v.Flash = flashes[r.URL.Query().Get("done")]
	}
	c.render(w, status, name, v)
}

// fail answers a request the API refused with no page at all, and any
// other failure with the page's frame and the error.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	if refused(err) || clientCert(r) == nil {
		c.render(w, httpStatus(err), "refused", &view{Title: "No page", Error: message(err)})
		return
	}
	v.Error = message(err)
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

// message is what a page shows of an API error: its stable code and
// message, as `samd admin` prints them.
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
// refusal is answered here (and logged) and false returned.
func (c *Console) change(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	err := sameOrigin(r)
	cert := clientCert(r)
	if err == nil && cert == nil {
		err = fmt.Errorf("console: no client certificate")
	}
	if err == nil {
		if perr := r.ParseForm(); perr != nil {
			err = fmt.Errorf("console: the form could not be read")
		} else if !c.key.valid(r.PostForm.Get("csrf"), cert, c.cfg.Now()) {
			err = fmt.Errorf("console: the form's token is missing or stale: reload the page and try again")
		}
	}
	if err != nil {
		c.cfg.Logger.Warn("console: change refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "err", err)
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
