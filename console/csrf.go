package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"time"

	"github.com/samd-io/samd/errkind"
)

// tokenWindow is how long one CSRF token is minted for; a token is
// accepted in its window and the next, so a page stays usable for at
// least this long.
const tokenWindow = time.Hour

// csrfKey is the key CSRF tokens are MACed under: random, held in memory
// only, new at every start (a restart makes officers reload their pages).
type csrfKey [32]byte

// token is the CSRF token of a page served to the holder of the client
// certificate certDER in the window holding now: HMAC-SHA256 under the
// key of "samd-console-csrf-v1", the certificate's SHA-256 and the
// window's number. Another officer's certificate, another process or
// another hour makes another token; nothing in it is secret to the
// officer, and a page of another origin cannot read it.
func (k *csrfKey) token(certDER []byte, now time.Time) string {
	return k.mint(certDER, now.Unix()/int64(tokenWindow/time.Second))
}

func (k *csrfKey) mint(certDER []byte, window int64) string {
	cert := sha256.Sum256(certDER)
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("samd-console-csrf-v1"))
	m.Write(cert[:])
	var w [8]byte
	binary.BigEndian.PutUint64(w[:], uint64(window))
	m.Write(w[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// valid reports whether tok is the token of certDER's holder in the
// window holding now or the one before, comparing in constant time.
func (k *csrfKey) valid(tok string, certDER []byte, now time.Time) bool {
	w := now.Unix() / int64(tokenWindow/time.Second)
	ok := false
	for _, win := range []int64{w, w - 1} {
		if hmac.Equal([]byte(tok), []byte(k.mint(certDER, win))) {
			ok = true
		}
	}
	return ok
}

// sameOrigin refuses a request that a page of another origin may have
// sent. A browser's Sec-Fetch-Site, which no page can set, must say
// same-origin; an Origin must be this listener's own (https://host),
// unless it is "null", which is what browsers send for a form of a page
// whose Referrer-Policy is no-referrer, as the console's are (Fetch,
// "append a request Origin header") — then Sec-Fetch-Site alone decides.
// A request with neither an Origin of its own nor Sec-Fetch-Site
// same-origin is refused. Its errors are fixed text: nothing of the
// request's headers reaches the page or the audit record.
func sameOrigin(r *http.Request) error {
	origin, site := r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")
	switch {
	case site != "" && site != "same-origin":
		return errkind.Errorf(errkind.Denied, "console: a change from another site's page is refused")
	case origin != "" && origin != "null" && origin != "https://"+r.Host:
		return errkind.Errorf(errkind.Denied, "console: a change from another origin is refused")
	case origin != "https://"+r.Host && site != "same-origin":
		return errkind.Errorf(errkind.Denied, "console: a change that neither Origin nor Sec-Fetch-Site shows to come from the console is refused")
	}
	return nil
}
