// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/collector/query"
)

// Limits bound every query.
type Limits struct {
	// MaxWindow is the longest time window a query may ask (default 31
	// days).
	MaxWindow time.Duration
	// MaxRows bounds the rows of a page of flows and the entries of a
	// statistic (default 1000), and MaxOffset how deep a listing may page
	// (default 100,000).
	MaxRows, MaxOffset int
	// MaxLines bounds a series' top N (default 50).
	MaxLines int
	// Timeout ends a query that runs longer (default 30 s).
	Timeout time.Duration
	// Concurrent is the number of queries run at once (default 2); the
	// others wait for a slot, as long as their client does.
	Concurrent int
	// Poll is how often the events stream looks for new flows (default 5 s).
	Poll time.Duration
}

func (l *Limits) defaults() {
	if l.MaxWindow == 0 {
		l.MaxWindow = 31 * 24 * time.Hour
	}
	if l.MaxRows == 0 {
		l.MaxRows = 1000
	}
	if l.MaxOffset == 0 {
		l.MaxOffset = 100_000
	}
	if l.MaxLines == 0 {
		l.MaxLines = 50
	}
	if l.Timeout == 0 {
		l.Timeout = 30 * time.Second
	}
	if l.Concurrent == 0 {
		l.Concurrent = 2
	}
	if l.Poll == 0 {
		l.Poll = 5 * time.Second
	}
}

// Config configures a Server.
type Config struct {
	// Backend answers the queries.
	Backend query.Backend
	// Paths are the flow files and directories the events stream watches
	// for new flows (those of the Backend).
	Paths  []string
	Prefix string
	// Assets are the page's files (index.html at the root); nil serves the
	// API only.
	Assets fs.FS
	Limits Limits
	// Auth, when set, is required of every request.
	Auth *Auth
	// Version is reported by /api/v1/meta.
	Version string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the page and the API. It is an http.Handler.
type Server struct {
	cfg   Config
	slots chan struct{}
	mux   *http.ServeMux
	gz    sync.Map // asset name → gzipped bytes
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("web: no query backend")
	}
	cfg.Limits.defaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, slots: make(chan struct{}, cfg.Limits.Concurrent), mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// ContentSecurityPolicy is sent with every response: scripts, styles and
// connections from kflow itself only, no inline script or style, no
// framing, no plugins.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP serves a request: security headers, authentication, then the
// route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if s.cfg.Auth != nil && !s.cfg.Auth.Allow(r) {
		s.cfg.Auth.Challenge(w)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, errors.New("read-only: only GET and HEAD"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	api := map[string]http.HandlerFunc{
		"meta":    s.meta,
		"summary": s.summary,
		"stats":   s.stats,
		"series":  s.series,
		"sankey":  s.sankey,
		"flows":   s.flows,
		"filter":  s.filter,
		"events":  s.events,
	}
	for name, h := range api {
		s.mux.HandleFunc("/api/v1/"+name, h)
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errors.New("no such endpoint: see /api/v1/meta"))
	})
	s.mux.HandleFunc("/", s.asset)
}

// asset serves the page's files; paths without a file are the page's own
// routes and get index.html.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Assets == nil {
		http.NotFound(w, r)
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	st, err := fs.Stat(s.cfg.Assets, name)
	if err != nil || st.IsDir() {
		name = "index.html"
	}
	if strings.HasPrefix(name, "assets/") {
		// Built files carry a content hash in their name.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		if gz, err := s.gzipped(name); err == nil {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Add("Vary", "Accept-Encoding")
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(gz))
			return
		}
	}
	http.ServeFileFS(w, r, s.cfg.Assets, name)
}

// gzipped returns an asset compressed, compressing it on first use.
func (s *Server) gzipped(name string) ([]byte, error) {
	if v, ok := s.gz.Load(name); ok {
		return v.([]byte), nil
	}
	b, err := fs.ReadFile(s.cfg.Assets, name)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	s.gz.Store(name, buf.Bytes())
	return buf.Bytes(), nil
}
