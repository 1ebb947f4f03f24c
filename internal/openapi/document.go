package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/munnerz/goautoneg"
)

// document is one served OpenAPI document: its JSON, gzipped, and, built on
// first request, its protobuf form, gzipped too. The ETag is kube-openapi's,
// the SHA-512 of the JSON, shared by both forms (responses vary by Accept).
type document struct {
	etag     string
	modified time.Time
	json     []byte

	toProto   func([]byte) ([]byte, error)
	protoOnce sync.Once
	proto     []byte
	protoErr  error
}

func newDocument(data []byte, toProto func([]byte) ([]byte, error)) (*document, error) {
	gz, err := compress(data)
	if err != nil {
		return nil, err
	}
	return &document{
		etag:     fmt.Sprintf("%X", sha512.Sum512(data)),
		modified: time.Now(),
		json:     gz,
		toProto:  toProto,
	}, nil
}

func compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}

func decompress(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// protobuf returns the gzipped protobuf form.
func (d *document) protobuf() ([]byte, error) {
	d.protoOnce.Do(func() {
		data, err := decompress(d.json)
		if err == nil {
			data, err = d.toProto(data)
		}
		if err == nil {
			d.proto, err = compress(data)
		}
		d.protoErr = err
		releaseMemory()
	})
	return d.proto, d.protoErr
}

// representation is one content type a document is served as.
type representation struct {
	typ, subtype string
	contentType  string
	protobuf     bool
}

type representations []representation

// negotiate returns the representation the Accept header prefers, as
// kube-openapi's handlers choose it, or false.
func (reps representations) negotiate(r *http.Request) (representation, bool) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	for _, clause := range goautoneg.ParseAccept(accept) {
		for _, rep := range reps {
			if (clause.Type == rep.typ || clause.Type == "*") && (clause.SubType == rep.subtype || clause.SubType == "*") {
				return rep, true
			}
		}
	}
	return representation{}, false
}

// serve writes the document in the negotiated representation, gzipped when
// the client accepts it (Go's HTTP client, hence client-go and kubectl,
// does), with its ETag; conditional requests get a 304.
func (d *document) serve(w http.ResponseWriter, r *http.Request, reps representations) {
	w.Header().Add("Vary", "Accept")
	rep, ok := reps.negotiate(r)
	if !ok {
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	d.write(w, r, rep)
}

// serveHashed serves a v3 document at a URL that may carry the hash of the
// version the client wants (?hash=, from the index): a stale hash redirects
// to the current URL; the current one makes the response cacheable forever.
func (d *document) serveHashed(w http.ResponseWriter, r *http.Request, reps representations, currentURL string) {
	w.Header().Add("Vary", "Accept")
	rep, ok := reps.negotiate(r)
	if !ok {
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	if hash := r.URL.Query().Get("hash"); hash != "" {
		if hash != d.etag {
			http.Redirect(w, r, currentURL, http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Cache-Control", "public, immutable")
		w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).Format(time.RFC1123))
	}
	d.write(w, r, rep)
}

func (d *document) write(w http.ResponseWriter, r *http.Request, rep representation) {
	body := d.json
	if rep.protobuf {
		var err error
		if body, err = d.protobuf(); err != nil {
			serveError(w, err)
			return
		}
	}
	w.Header().Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
	} else {
		var err error
		if body, err = decompress(body); err != nil {
			serveError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", rep.contentType)
	w.Header().Set("Etag", strconv.Quote(d.etag))
	http.ServeContent(w, r, "", d.modified, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(h, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
				continue
			}
			q := strings.ReplaceAll(params, " ", "")
			if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
				return false
			}
			return true
		}
	}
	return false
}
