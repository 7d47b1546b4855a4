// SPDX-License-Identifier: Apache-2.0

// Command kflow-query asks nfdump's questions of flow files, as "kflow
// file query" does, in a binary that holds nothing else: no eBPF, no web
// server, no ClickHouse client. It starts in about half the time of the
// whole kflow binary, which matters to scripts and front-ends that run
// one query per graph (kflow-query -R DIR -I, -s srcip/bytes, ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage: kflow-query [OPTIONS] [FILE|DIR...] [FILTER]

Filter flow files (kflow's and nfcapd's) and print records, top-N
statistics, aggregations or a summary, with nfdump's options, filter
language and output formats. The same as "kflow file query", without
--clickhouse (use kflow for that).

Options:
`

// run parses args, answers the question and returns the exit status:
// 0, 1 on an error, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &querycli.Env{Ctx: ctx, Stdout: stdout, Log: slog.New(slog.NewTextHandler(stderr, nil))}
	fs := pflag.NewFlagSet("kflow-query", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&e.JSON, "json", "j", false, "print JSON")
	fs.BoolVarP(&e.Pretty, "pretty", "p", false, "print indented JSON (implies --json)")
	help := fs.BoolP("help", "h", false, "show this help")
	showVersion := fs.BoolP("version", "V", false, "print the version")
	q := &querycli.Args{}
	q.Register(fs)
	err := fs.Parse(args)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %v (kflow-query --help)", querycli.ErrUsage, err)
	case *help:
		fmt.Fprint(stdout, usage+fs.FlagUsages())
		return 0
	case *showVersion:
		fmt.Fprintln(stdout, versionLine())
		return 0
	default:
		e.JSON = e.JSON || e.Pretty
		err = q.Run(e, fs.Args())
	}
	if err == nil {
		return 0
	}
	msg := err.Error()
	status := 1
	if errors.Is(err, querycli.ErrUsage) {
		msg, status = strings.TrimPrefix(msg, querycli.ErrUsage.Error()+": "), 2
	}
	fmt.Fprintf(stderr, "kflow-query: %s\n", msg)
	return status
}

func versionLine() string {
	v := "kflow-query " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += fmt.Sprintf(" (%.12s)", s.Value)
			}
		}
	}
	return v + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
