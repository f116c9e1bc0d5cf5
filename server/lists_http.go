package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
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
// streamed whole is cut off (its Content-Length is not met).
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
