// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/collector/web"
	webui "github.com/kflow-dev/kflow/web"
)

// webFlags are the options of the flow explorer: kflow web's, and the
// daemons' --web-* ones.
type webFlags struct {
	prefix      string // of the option names: "" for kflow web, "web-" for the daemons
	listen      string
	allowRemote bool
	certFile    string
	keyFile     string
	htpasswd    string
	tokenFile   string
	timeout     time.Duration
	maxWindow   string
	workers     int
	clickhouse  string // answer from this ClickHouse database instead of the files
	url         string // set by start: where the page is
}

// register adds the options; the daemons name the address --web (off by
// default).
func (w *webFlags) register(fs *pflag.FlagSet, prefix string) {
	w.prefix = prefix
	if prefix == "" {
		fs.StringVar(&w.listen, "listen", "127.0.0.1:8080", "serve the flow explorer at `ADDR` (loopback unless --allow-remote)")
	} else {
		fs.StringVar(&w.listen, "web", "", "serve the flow explorer and its JSON API at `ADDR` (e.g. 127.0.0.1:8080; loopback unless --web-allow-remote)")
	}
	fs.BoolVar(&w.allowRemote, prefix+"allow-remote", false, "allow a listen address beyond loopback (needs --"+prefix+"htpasswd or --"+prefix+"token-file)")
	fs.StringVar(&w.certFile, prefix+"tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM)")
	fs.StringVar(&w.keyFile, prefix+"tls-key", "", "the TLS certificate's key `FILE` (PEM)")
	fs.StringVar(&w.htpasswd, prefix+"htpasswd", "", "require a user of this htpasswd `FILE` (bcrypt: htpasswd -B)")
	fs.StringVar(&w.tokenFile, prefix+"token-file", "", "accept the bearer token in this `FILE` (Authorization: Bearer ...)")
	fs.DurationVar(&w.timeout, prefix+"query-timeout", 30*time.Second, "end a query of the page that runs longer")
	fs.StringVar(&w.maxWindow, prefix+"max-window", "31d", "longest time window a query may ask")
	workers := 0
	if prefix != "" {
		workers = 1 // next to a daemon, leave it the other cores
	}
	fs.IntVar(&w.workers, prefix+"workers", workers, "decoding workers per query (0: one per core)")
	fs.StringVar(&w.clickhouse, prefix+"clickhouse", "", "answer from the ClickHouse database at `URL` (http://user:pass@host:8123/kflow; the Distributed tables of a cluster when it has them) instead of the flow files")
}

// backend is what answers the page's queries: the flow files under
// paths, or ClickHouse.
func (w *webFlags) backend(paths []string, filePrefix string) (query.Backend, string, error) {
	if w.clickhouse == "" {
		return &query.FileBackend{Paths: paths, Prefix: filePrefix, Workers: w.workers}, "files " + strings.Join(paths, ","), nil
	}
	b, err := chquery.Open(w.clickhouse)
	if err != nil {
		return nil, "", fmt.Errorf("%w: --%sclickhouse: %v", errUsage, w.prefix, err)
	}
	return b, "clickhouse " + b.String(), nil
}

// start serves the flow explorer over the flow files under paths until
// ctx ends; stop waits for it to end.
func (w *webFlags) start(ctx context.Context, log *slog.Logger, paths []string, filePrefix string) (stop func(), err error) {
	maxWindow, err := web.ParseDuration(w.maxWindow)
	if err != nil {
		return nil, fmt.Errorf("%w: --%smax-window: %v", errUsage, w.prefix, err)
	}
	backend, source, err := w.backend(paths, filePrefix)
	if err != nil {
		return nil, err
	}
	ln, err := web.Listen(web.ListenConfig{Addr: w.listen, AllowRemote: w.allowRemote, CertFile: w.certFile, KeyFile: w.keyFile,
		HtpasswdFile: w.htpasswd, TokenFile: w.tokenFile, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	srv, err := web.New(web.Config{
		Backend: backend,
		Paths:   paths, Prefix: filePrefix, Assets: webui.Assets(), Auth: ln.Auth, Version: version,
		Limits: web.Limits{MaxWindow: maxWindow, Timeout: w.timeout},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	scheme := "http"
	if ln.TLS() {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String() + "/"
	log.Info("serving the flow explorer", "url", url, "answers from", source, "auth", ln.Auth != nil)
	if !web.IsLoopback(ln.Addr()) && !ln.TLS() {
		log.Warn("the flow explorer listens beyond loopback without TLS: passwords and flows cross the network in clear")
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ln.Serve(ctx, srv); err != nil {
			log.Error("flow explorer", "err", err)
		}
	}()
	w.url = url
	return func() { cancel(); <-done }, nil
}

func webCmd() *command {
	var (
		w     webFlags
		read  []string
		pfx   string
		ready string
	)
	return &command{
		name:    "web",
		summary: "serve the flow explorer (a web page and its JSON API) over flow files or ClickHouse",
		usage:   "[-R DIR]... [--clickhouse URL] [--listen ADDR] [DIR|FILE...]",
		flags: func(fs *pflag.FlagSet) {
			fs.StringArrayVarP(&read, "read", "R", nil, "serve the flow files under `DIR` (repeatable; as arguments too)")
			fs.StringVar(&pfx, "prefix", flowfile.DefaultPrefix, "in directories, read files named with this prefix")
			fs.StringVar(&ready, "ready-file", "", "write the page's URL to this `FILE` once listening")
			w.register(fs, "")
		},
		run: func(e *env, args []string) error {
			paths := append(append([]string(nil), read...), args...)
			if len(paths) == 0 && w.clickhouse == "" {
				return fmt.Errorf("%w: no flow files given (kflow web -R DIR, or --clickhouse URL)", errUsage)
			}
			if _, err := query.Files(query.Select{Paths: paths, Prefix: pfx}); err != nil {
				return err
			}
			stop, err := w.start(e.ctx, e.log, paths, pfx)
			if err != nil {
				return err
			}
			defer stop()
			if ready != "" {
				if err := writeReadyFile(ready, []string{w.url}); err != nil {
					return err
				}
			}
			<-e.ctx.Done()
			return nil
		},
	}
}

// serveNext serves the flow explorer next to a daemon's flow files under
// dir when --web is given (stop does nothing otherwise); files is false
// for an exporter that writes no files (it sends to collectors).
func (w *webFlags) serveNext(ctx context.Context, log *slog.Logger, dir, filePrefix string, files bool) (stop func(), err error) {
	switch {
	case w.listen == "":
		return func() {}, nil
	case !files:
		return nil, fmt.Errorf("%w: --web serves the flow files the exporter writes: it needs the embedded collector (no --collector)", errUsage)
	}
	return w.start(ctx, log, []string{dir}, filePrefix)
}
