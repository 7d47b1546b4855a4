// SPDX-License-Identifier: Apache-2.0

// Command benchcmp runs kflow and the tools it replaces side by side on
// the same traffic, inside throwaway network namespaces, and writes the
// figures as a markdown page (make bench-compare; run as root).
//
// Rows: no exporter, kflow with TCX and with XDP, softflowd, fprobe and
// pmacctd's nfprobe plugin, all exporting to nfcapd; then nfcapd against
// kflow's collector on the same export stream, and nfdump against kflow's
// file commands on the same flows. It never touches the host's own
// interfaces: the traffic runs between two namespaces joined by a veth
// pair, with addresses from 198.18.0.0/15 and fd00::/8.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		kflow     = flag.String("kflow", "bin/kflow", "path of the kflow binary")
		runs      = flag.Int("runs", 3, "runs of every row (the tables show medians and min-max)")
		out       = flag.String("out", "docs/benchmarks.md", "markdown page whose generated region to rewrite (empty: stdout only)")
		mixPPS    = flag.Int("mix-pps", 20000, "packets per second of the tcpreplay mix")
		trafgenN  = flag.Uint64("trafgen-packets", 1_000_000, "frames of the trafgen load")
		xdpgenN   = flag.Uint64("xdpgen-packets", 4_000_000, "frames of the xdpgen load (0 leaves the load out)")
		flows     = flag.Int("load-flows", 64, "flows of each load (UDP source ports)")
		collFlows = flag.Int("collector-flows", 1_000_000, "flows of the collector and query benchmark")
		rows      = flag.String("rows", "", "comma-separated row name prefixes to run (default all)")
		verbose   = flag.Bool("v", false, "log mismatches")
		colls     = flag.Bool("collectors", true, "run the collector and query rows (-rows none: only them)")
		queries   = flag.Bool("queries", true, "run the query rows after the collector rows (-rows none -queries=false: the collector rows alone)")
		noise     = flag.String("note", "", "a note on the run's conditions, printed under the tables")
		keep      = flag.String("keep-files", "", "move the last collector run's flow files to this directory (kflow/ and nfcapd/), to ask them more questions by hand")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "benchcmp: %s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	cfg := &Config{Kflow: *kflow, Runs: *runs, MixPPS: *mixPPS, TrafgenN: *trafgenN, XDPGenN: *xdpgenN,
		LoadFlows: *flows, Logf: logf, Verbose: *verbose, CollectorN: *collFlows, NoQueries: !*queries, KeepFiles: *keep}
	if err := run(ctx, cfg, *rows, *out, *noise, *colls); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *Config, rowFilter, out, note string, collectors bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the harness creates network namespaces and loads BPF programs")
	}
	bin, err := filepath.Abs(cfg.Kflow)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("kflow binary: %w (make build)", err)
	}
	cfg.Kflow = bin
	if out != "" {
		// Before minutes of measuring: the page must have its region.
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		if _, err := splice(string(b), ""); err != nil {
			return fmt.Errorf("%s: %w", out, err)
		}
	}
	for _, tool := range []string{"nfcapd", "nfdump", "tcpreplay", "trafgen", "softflowd", "softflowctl", "fprobe", "pmacctd", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: %w (tools/install-deps.sh installs it)", tool, err)
		}
	}
	cleanLeftovers(cfg.Logf)
	e, cleanup, err := NewEnv()
	defer cleanup()
	if err != nil {
		return err
	}
	cfg.Logf("namespaces %s and %s, %s observed; work directory %s", e.A.Name, e.B.Name, e.AIf, e.Dir)

	cfg.MixPcap = filepath.Join(e.Dir, "mix.pcap")
	f, err := os.Create(cfg.MixPcap)
	if err != nil {
		return err
	}
	cfg.MixTruth, cfg.MixStats, err = GenerateMix(f, defaultMix)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("generate mix: %w", err)
	}
	tot := cfg.MixTruth.Total()
	cfg.Logf("mix: %d flows, %d packets (%d shorter than 60 bytes), %d bytes", len(cfg.MixTruth), tot.Packets, cfg.MixStats.Runts, tot.Bytes)

	gen, err := NewXDPGen(cfg.LoadFlows)
	if err != nil {
		return err
	}
	defer gen.Close()
	if cfg.XDPGenN == 0 {
		cfg.XDPGenSkipped = "-xdpgen-packets 0"
	} else if err := gen.Probe(e); err != nil {
		cfg.XDPGenN, cfg.XDPGenSkipped = 0, err.Error()
		cfg.Logf("the xdpgen load is left out, the trafgen load stands in for it: %v", err)
	}

	var probes []Probe
	for _, p := range Probes(bin) {
		if rowFilter == "" || matchesAny(p.Name, rowFilter) {
			probes = append(probes, p)
		}
	}
	rep := &Report{Config: cfg, Started: time.Now(), Note: note, LoadStart: loadAvg(),
		Command: commandLine(os.Args[1:]), WorkDir: e.Dir}
	for i := range cfg.Runs {
		for _, p := range probes {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %v", errInterrupted, ctx.Err())
			}
			cfg.Logf("run %d/%d: %s", i+1, cfg.Runs, p.Name)
			rr := runRow(ctx, e, cfg, gen, p, i)
			logRow(cfg, rr)
			rep.Rows = append(rep.Rows, rr)
		}
	}
	if ctx.Err() == nil && collectors {
		rep.Collectors, rep.Queries, rep.QueryNote = collectorBench(ctx, e, cfg)
	}
	if ctx.Err() != nil {
		// An interrupted run's figures are partial: keep the page as it was.
		return fmt.Errorf("%w: %v", errInterrupted, ctx.Err())
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.LoadEnd = loadAvg()
	md := rep.Markdown()
	fmt.Print(md)
	if out != "" {
		if err := writeGenerated(out, md); err != nil {
			return err
		}
		cfg.Logf("wrote the generated region of %s", out)
	}
	return nil
}

func matchesAny(name, filter string) bool {
	for _, f := range strings.Split(filter, ",") {
		if f != "" && strings.HasPrefix(strings.ToLower(name), strings.ToLower(f)) {
			return true
		}
	}
	return false
}

func logRow(cfg *Config, rr RowRun) {
	if rr.Err != nil {
		cfg.Logf("  error: %v", rr.Err)
		return
	}
	for _, ph := range append([]string{phaseMix}, cfg.loads()...) {
		m, ok := rr.Match[ph]
		l := rr.Loads[ph]
		s := ""
		if ok {
			s = fmt.Sprintf("flows %d/%d exact, packets %d/%d, bytes %d/%d", m.ExactFlows, m.Flows, m.Got.Packets, m.Want.Packets, m.Got.Bytes, m.Want.Bytes)
		}
		if ph != phaseMix {
			s += fmt.Sprintf(" rate %.3f Mpps, sys %.0f ns/pkt, exporter %.0f ns/pkt", l.Rate/1e6, nsPer(l.SysBusy, l.Packets), nsPer(l.ProcCPU, l.Packets))
		}
		cfg.Logf("  %s: %s", ph, s)
	}
	cfg.Logf("  exporter cpu %v, peak rss %d KiB, %d records, other %+v", rr.CPU, rr.PeakRSS>>10, rr.Records, rr.Other)
}

func nsPer(d time.Duration, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / float64(n)
}

// defaultMix is the correctness mix: about 1,500 flows over IPv4 and IPv6.
var defaultMix = MixConfig{Seed: 1, TCPConns: 200, UDPFlows: 300, ICMPFlows: 100}

// commandLine is how the run was started, as a shell would take it.
func commandLine(args []string) string {
	out := []string{"bin/benchcmp"}
	for _, a := range args {
		if strings.ContainsAny(a, " \t\"'$`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}
