// SPDX-License-Identifier: Apache-2.0

// Command kflow is an eBPF flow exporter and collector with a bpftool-style
// command line: kflow [OPTIONS] OBJECT COMMAND [ARGS].
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
