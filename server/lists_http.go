package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/samd-io/samd/authority/listing"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/state"
)

// ListsHandler serves negative lists over plain HTTP beside the CRLs (a
// list is signed, so it needs no TLS; README "Negative lists"), to
// anyone:
//
//	/lists/<owner>/<kind>/latest        the newest version's number (text)
//	/lists/<owner>/<kind>/<N>.bin       version N, the newest, whole
//	/lists/<owner>/<kind>/<M>-<N>.bin   the delta from M to N, the newest
//	… .p7s                              the detached CMS signature (DER)
//
// A version that is not the newest, or a delta samd does not keep, is
// not found: fetch latest, then the delta from the version held, else
// the whole list. Documents stream from the rows; one that cannot be
// streamed whole is cut off (its Content-Length is not met). A
// document's and a signature's ETag is the document's SHA-256 (a
// published version never changes): a request whose If-None-Match holds
// it is answered 304 Not Modified without reading the rows.
func ListsHandler(l *listing.Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lists/{owner}/{kind}/{file}", func(w http.ResponseWriter, r *http.Request) {
		kind, err := lists.ParseKind(r.PathValue("kind"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		key := state.ListKey{Owner: r.PathValue("owner"), Kind: kind.String()}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
		defer cancel()
		file := r.PathValue("file")
		if file == "latest" {
			d, err := l.Version(ctx, key, 0)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "max-age=10")
			w.Write([]byte(strconv.FormatUint(d.Header.Version, 10) + "\n"))
			return
		}
		d, sig := listDocument(ctx, l, key, file)
		if d != nil {
			etag := `"` + d.SHA256 + `"`
			if sig {
				etag = `"` + d.SHA256 + `.p7s"`
			}
			w.Header().Set("ETag", etag)
			if etagMatch(r.Header.Get("If-None-Match"), etag) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		switch {
		case d == nil:
			http.NotFound(w, r)
		case sig:
			w.Header().Set("Content-Type", "application/pkcs7-signature")
			w.Header().Set("Content-Length", strconv.Itoa(len(d.Signature)))
			w.Write(d.Signature)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(d.Size, 10))
			if err := d.Write(ctx, w); err != nil {
				panic(http.ErrAbortHandler) // the client sees a short body
			}
		}
	})
	return mux
}

// listDocument finds the document a file name names: <N> or <M>-<N>,
// with .bin (the document) or .p7s (its signature).
func listDocument(ctx context.Context, l *listing.Service, key state.ListKey, file string) (*listing.Document, bool) {
	name, sig := strings.CutSuffix(file, ".p7s")
	if !sig {
		var ok bool
		if name, ok = strings.CutSuffix(file, ".bin"); !ok {
			return nil, false
		}
	}
	base, version, delta := strings.Cut(name, "-")
	if !delta {
		base, version = "", base
	}
	n, err := strconv.ParseUint(version, 10, 64)
	if err != nil || n == 0 {
		return nil, false
	}
	if !delta {
		d, err := l.Version(ctx, key, n)
		if err != nil {
			return nil, false
		}
		return d, sig
	}
	m, err := strconv.ParseUint(base, 10, 64)
	if err != nil {
		return nil, false
	}
	d, err := l.Delta(ctx, key, m, n)
	if err != nil {
		return nil, false
	}
	return d, sig
}

// etagMatch reports whether an If-None-Match header names the entity tag
// (RFC 9110 §13.1.2: "*", or a list of tags compared weakly).
func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// DistributionPerAddress is how many requests one network address may
// have running at once on the plain-HTTP distribution listener (CRLs,
// lists): anyone may ask there, and a list is streamed from the database.
const DistributionPerAddress = 8

// LimitPerAddress lets each remote address (the host of
// Request.RemoteAddr) have at most n requests running through h at once;
// one more is answered 503 with Retry-After and not served.
func LimitPerAddress(h http.Handler, n int) http.Handler {
	var mu sync.Mutex
	running := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			addr = r.RemoteAddr
		}
		mu.Lock()
		full := running[addr] >= n
		if !full {
			running[addr]++
		}
		mu.Unlock()
		if full {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests from this address at once", http.StatusServiceUnavailable)
			return
		}
		defer func() {
			mu.Lock()
			if running[addr]--; running[addr] == 0 {
				delete(running, addr)
			}
			mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}
