// SPDX-License-Identifier: Apache-2.0

package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// ListenConfig says where and how the page is served.
type ListenConfig struct {
	// Addr is HOST:PORT; the host must be a loopback address (127.0.0.1,
	// ::1, localhost) unless AllowRemote is set.
	Addr        string
	AllowRemote bool
	// CertFile and KeyFile serve TLS (both or neither).
	CertFile, KeyFile string
	// HtpasswdFile and TokenFile require authentication; listening beyond
	// loopback requires one of them.
	HtpasswdFile, TokenFile string
	// ErrorLog receives the HTTP server's errors (failed TLS handshakes);
	// nil drops them.
	ErrorLog *log.Logger
}

// Listener is a bound listener and what serving on it needs.
type Listener struct {
	ln   net.Listener
	log  *log.Logger
	tls  *tls.Config
	Auth *Auth // nil: none
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// TLS reports whether the listener serves TLS.
func (l *Listener) TLS() bool { return l.tls != nil }

// Listen binds c.Addr after checking the configuration: a listener
// beyond loopback needs AllowRemote and authentication.
func Listen(c ListenConfig) (*Listener, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("web: TLS needs both a certificate and a key file")
	}
	l := &Listener{log: c.ErrorLog}
	if l.log == nil {
		l.log = log.New(io.Discard, "", 0)
	}
	if c.HtpasswdFile != "" || c.TokenFile != "" {
		a, err := LoadAuth(c.HtpasswdFile, c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		l.Auth = a
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("web: TLS: %w", err)
		}
		l.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("web: listen %s: %w", c.Addr, err)
	}
	if !IsLoopback(ln.Addr()) {
		switch {
		case !c.AllowRemote:
			ln.Close()
			return nil, fmt.Errorf("web: %s is beyond loopback: allow it explicitly (--web-allow-remote) with authentication", ln.Addr())
		case l.Auth == nil:
			ln.Close()
			return nil, fmt.Errorf("web: listening on %s beyond loopback needs authentication: an htpasswd file or a token file", ln.Addr())
		}
	}
	l.ln = ln
	return l, nil
}

// IsLoopback reports whether a bound address is on loopback only.
func IsLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Serve serves h on l until ctx ends, then shuts down (open event
// streams end with ctx). h is a *Server given the listener's Auth.
func (l *Listener) Serve(ctx context.Context, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: l.log, BaseContext: func(net.Listener) context.Context { return ctx }}
	ln := l.ln
	if l.tls != nil {
		srv.TLSConfig = l.tls
		ln = tls.NewListener(ln, l.tls)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-done
	return nil
}

// Close releases a listener that was not served.
func (l *Listener) Close() error { return l.ln.Close() }
