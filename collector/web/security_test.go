// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kflow-dev/kflow/collector/query"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func htpasswd(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "htpasswd", "# users\n"+user+":"+string(h)+"\n")
}

func TestAuth(t *testing.T) {
	dir, _ := fixture(t)
	const token = "0123456789abcdef-token"
	a, err := LoadAuth(htpasswd(t, "alice", "s3cret"), writeFile(t, "token", token+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, dir, Config{Auth: a})
	basic := func(u, p string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	for _, tt := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong password", basic("alice", "guess"), http.StatusUnauthorized},
		{"unknown user", basic("mallory", "s3cret"), http.StatusUnauthorized},
		{"password", basic("alice", "s3cret"), http.StatusOK},
		{"password again (remembered)", basic("alice", "s3cret"), http.StatusOK},
		{"wrong token", "Bearer 0123456789abcdef-nope", http.StatusUnauthorized},
		{"token", "Bearer " + token, http.StatusOK},
	} {
		rec := get(t, s, "/api/v1/meta", "Authorization", tt.auth)
		if rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.want)
		}
		if tt.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: no basic challenge: %q", tt.name, rec.Header().Get("WWW-Authenticate"))
		}
	}
	// Only bcrypt hashes; tokens long enough; something given.
	for _, tt := range []struct{ htpasswd, token, want string }{
		{writeFile(t, "h", "bob:$apr1$abc$def\n"), "", "only bcrypt"},
		{writeFile(t, "h", "nocolon\n"), "", "USER:HASH"},
		{"", writeFile(t, "t", "short\n"), "shorter than 16"},
		{"", "", "give an htpasswd file or a token file"},
	} {
		if _, err := LoadAuth(tt.htpasswd, tt.token); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadAuth: %v, want %q", err, tt.want)
		}
	}
}

// TestListenLoopback: loopback by default; beyond it only when allowed
// and with authentication.
func TestListenLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		l, err := Listen(ListenConfig{Addr: addr})
		if err != nil {
			if strings.Contains(addr, "::1") && strings.Contains(err.Error(), "assign requested address") {
				continue // no IPv6 loopback here
			}
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if !IsLoopback(l.Addr()) {
			t.Errorf("%s bound %s", addr, l.Addr())
		}
		l.Close()
	}
	pw := htpasswd(t, "alice", "s3cret")
	for _, tt := range []struct {
		c    ListenConfig
		want string
	}{
		{ListenConfig{Addr: "0.0.0.0:0"}, "beyond loopback"},
		{ListenConfig{Addr: ":0", AllowRemote: true}, "needs authentication"},
		{ListenConfig{Addr: "127.0.0.1:0", CertFile: "x.pem"}, "both a certificate and a key"},
	} {
		if l, err := Listen(tt.c); err == nil || !strings.Contains(err.Error(), tt.want) {
			if l != nil {
				l.Close()
			}
			t.Errorf("%+v: %v, want %q", tt.c, err, tt.want)
		}
	}
	l, err := Listen(ListenConfig{Addr: "0.0.0.0:0", AllowRemote: true, HtpasswdFile: pw})
	if err != nil || l.Auth == nil {
		t.Fatalf("remote with authentication: %v", err)
	}
	l.Close()
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kflow test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with a certificate the page is served over TLS only, with
// HSTS.
func TestTLS(t *testing.T) {
	dir, _ := fixture(t)
	certFile, keyFile, pool := selfSigned(t)
	l, err := Listen(ListenConfig{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, dir, Config{Auth: l.Auth})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, s) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Minute}
	resp, err := c.Get("https://" + l.Addr().String() + "/api/v1/meta")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("https: status %d, TLS %v, HSTS %q", resp.StatusCode, resp.TLS != nil, resp.Header.Get("Strict-Transport-Security"))
	}
	plain := &http.Client{Timeout: time.Minute}
	if resp, err := plain.Get("http://" + l.Addr().String() + "/api/v1/meta"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered: %s", body)
		}
	}
}

// TestHeaders: every response carries the CSP and its companions; the
// API is read-only; assets are served (gzipped when asked), unknown
// paths get the page.
func TestHeaders(t *testing.T) {
	dir, _ := fixture(t)
	page := "<!doctype html><title>kflow</title><script type=module src=/assets/app-1.js></script>"
	assets := fstest.MapFS{"index.html": {Data: []byte(page)}, "assets/app-1.js": {Data: []byte(strings.Repeat("console.log(1);", 100))}}
	s := newServer(t, dir, Config{Assets: assets})
	for _, url := range []string{"/", "/visualize?v=1", "/assets/app-1.js", "/api/v1/meta", "/api/v1/flows"} {
		rec := get(t, s, url)
		h := rec.Header()
		if h.Get("Content-Security-Policy") != ContentSecurityPolicy || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", url, h)
		}
		for _, unsafe := range []string{"unsafe-inline", "unsafe-eval", "*"} {
			if strings.Contains(ContentSecurityPolicy, unsafe) {
				t.Errorf("the CSP allows %s", unsafe)
			}
		}
	}
	if rec := get(t, s, "/visualize"); rec.Body.String() != page || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("a route of the page: %q", rec.Body)
	}
	rec := get(t, s, "/assets/app-1.js", "Accept-Encoding", "gzip")
	if rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("asset headers %v", rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != string(assets["assets/app-1.js"].Data) {
		t.Error("gzipped asset differs")
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(m, "/api/v1/meta", strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d", m, rec.Code)
		}
	}
}

// TestHostile: markup in a filter or a parameter comes back as inert
// text: encoding/json escapes <, > and &, so no response holds markup.
func TestHostile(t *testing.T) {
	dir, _ := fixture(t)
	s := newServer(t, dir, Config{})
	const evil = `<img src=x onerror="alert(1)">`
	for _, url := range []string{
		"/api/v1/filter?filter=" + urlQuery("proto tcp and "+evil),
		"/api/v1/flows?last=1h&filter=" + urlQuery(evil),
		"/api/v1/series?last=1h&dims=" + urlQuery(evil),
		"/api/v1/stats?last=1h&stat=" + urlQuery(evil),
		"/api/v1/flows?last=1h&order=" + urlQuery(evil),
	} {
		rec := get(t, s, url)
		body := rec.Body.Bytes()
		want := http.StatusBadRequest
		if strings.Contains(url, "/filter?") {
			want = http.StatusOK // a check: the error is the answer
		}
		if rec.Code != want || bytes.ContainsAny(body, "<>") {
			t.Errorf("%s: status %d, body %s", url, rec.Code, body)
		}
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error.Message+e.Error.Filter, "<img") {
			t.Errorf("%s: the message lost the text: %v %+v", url, err, e)
		}
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer(" ", "+", "<", "%3C", ">", "%3E", `"`, "%22", "=", "%3D", "(", "%28", ")", "%29")
	return r.Replace(s)
}

// blocking is a backend that waits for its context.
type blocking struct{ ended chan error }

func (b *blocking) Query(ctx context.Context, _ *query.Request) (*query.Result, error) {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, ctx.Err()
}

// TestBounded: a query ends at the timeout (504), and when its client
// goes away.
func TestBounded(t *testing.T) {
	b := &blocking{ended: make(chan error, 1)}
	s, err := New(Config{Backend: b, Limits: Limits{Timeout: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	rec := get(t, s, "/api/v1/series?last=1h")
	if rec.Code != http.StatusGatewayTimeout || !errors.Is(<-b.ended, context.DeadlineExceeded) {
		t.Errorf("timeout: status %d %s", rec.Code, rec.Body)
	}
	s, _ = New(Config{Backend: b, Limits: Limits{Timeout: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/api/v1/flows?last=1h", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		s.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	cancel()
	if err := <-b.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("client gone: the query ended with %v", err)
	}
	<-done
}

// TestEvents: the stream says at once what the newest files are, and
// again when flows are written.
func TestEvents(t *testing.T) {
	dir, _ := fixture(t)
	s := newServer(t, dir, Config{Limits: Limits{Poll: 10 * time.Millisecond}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	next := func() FilesJSON {
		t.Helper()
		var line string
		buf := make([]byte, 1)
		var b strings.Builder
		for !strings.HasSuffix(b.String(), "\n\n") {
			if _, err := resp.Body.Read(buf); err != nil {
				t.Fatalf("stream: %v after %q", err, b.String())
			}
			b.WriteByte(buf[0])
		}
		for _, l := range strings.Split(b.String(), "\n") {
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				line = d
			}
		}
		var f FilesJSON
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("event %q: %v", b.String(), err)
		}
		return f
	}
	first := next()
	if first.Files == 0 {
		t.Fatalf("first event: %+v", first)
	}
	// New flows: a file of the current slot grows.
	p := filepath.Join(dir, "kflow.202503140955")
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if second := next(); second.Size != first.Size+1 {
		t.Errorf("after a write: %+v, before %+v", second, first)
	}
}
