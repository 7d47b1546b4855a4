// SPDX-License-Identifier: Apache-2.0

// Command soak runs kflow's whole pipeline under faults for a while and
// writes a ledger that accounts for every packet sent: in flow records at
// each collector, in the exported ignored counters, or lost by a
// documented cause that a counter shows. It creates its own network
// namespaces (198.18.0.0/15, fd00::/8 only) and never touches the host's
// interfaces. Run it as root: make soak (SOAK_DURATION=60s).
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
)

func main() {
	kflow := flag.String("kflow", "bin/kflow", "path of the kflow binary")
	duration := flag.Duration("duration", 10*time.Minute, "how long the traffic and faults run")
	seed := flag.Uint64("seed", 0, "seed of the traffic mix and the fault schedule (0: from the clock)")
	out := flag.String("out", "", "write the ledger (Markdown) to this file, e.g. docs/soak.md")
	pairs := flag.Int("pairs", 4, "observed veth pairs (at least 3)")
	mapEntries := flag.Int("map-entries", 8192, "the exporter's --map-entries (small, so a burst overflows it)")
	keep := flag.Bool("keep", false, "keep the run's directory (flow files, logs)")
	only := flag.String("faults", "", "schedule only these faults (comma-separated names), to chase one")
	withCH := flag.Bool("clickhouse", true, "the UDP collector ships into a ClickHouse server (Debian's clickhouse-server, started in the collectors' namespace), a fourth witness")
	flag.Parse()
	if !*withCH {
		var keep []Fault
		for _, f := range faults {
			if f.Name != "clickhouse-down" {
				keep = append(keep, f)
			}
		}
		faults = keep
	} else if _, err := os.Stat(chtest.Binary); err != nil {
		fmt.Fprintf(os.Stderr, "soak: %s: %v: install it (tools/install-deps.sh) or run with -clickhouse=false\n", chtest.Binary, err)
		os.Exit(2)
	}
	if *only != "" {
		var keep []Fault
		for _, name := range strings.Split(*only, ",") {
			found := false
			for _, f := range faults {
				if f.Name == name {
					keep, found = append(keep, f), true
				}
			}
			if !found {
				fmt.Fprintf(os.Stderr, "soak: -faults: no fault %q\n", name)
				os.Exit(2)
			}
		}
		faults = keep
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, Options{Kflow: *kflow, Duration: *duration, Seed: *seed, Out: *out, Pairs: *pairs,
		MapEntries: *mapEntries, Keep: *keep, ClickHouse: *withCH, Args: os.Args[1:]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "soak: FAILED: see the ledger")
		os.Exit(1)
	}
}

// Options are the run's settings.
type Options struct {
	Kflow      string
	Duration   time.Duration
	Seed       uint64
	Out        string
	Pairs      int
	MapEntries int
	Keep       bool
	ClickHouse bool
	Args       []string
}

// Run is one soak run.
type Run struct {
	opts    Options
	env     *Env
	traffic *Traffic
	start   time.Time
	windows []*Window
	events  []Event
}

// Event is a logged step, at its time since the start.
type Event struct {
	At     time.Duration
	Window int
	Text   string
}

func (r *Run) logf(w int, format string, args ...any) {
	ev := Event{At: time.Since(r.start), Window: w, Text: fmt.Sprintf(format, args...)}
	r.events = append(r.events, ev)
	fmt.Printf("%8.2fs  w%-2d %s\n", ev.At.Seconds(), w, ev.Text)
}

func run(ctx context.Context, o Options) (bool, error) {
	if o.Pairs < 3 {
		return false, fmt.Errorf("-pairs %d: need at least 3 (request/response, VLAN, hotplug)", o.Pairs)
	}
	bin, err := filepath.Abs(o.Kflow)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(bin); err != nil {
		return false, fmt.Errorf("kflow binary: %w (run make build)", err)
	}
	o.Kflow = bin
	dir, err := os.MkdirTemp("", "kflow-soak-")
	if err != nil {
		return false, err
	}
	if o.Keep {
		fmt.Println("run directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	r := &Run{opts: o, start: time.Now()}
	r.env, err = newEnv(bin, dir, o.Pairs, o.MapEntries)
	defer r.env.close()
	if err != nil {
		return false, fmt.Errorf("set up namespaces (run as root): %w", err)
	}
	r.env.withCH = o.ClickHouse
	r.traffic = newTraffic(r.env, o.Seed)
	if err := r.env.startDaemons(); err != nil {
		return false, err
	}
	r.logf(0, "daemons ready: exporter on %d pairs, collectors udp/tcp, nfcapd with a %d-byte receive buffer (seed %d)", len(r.env.pairs), r.env.nfcapdRcvbuf, o.Seed)
	if err := r.loop(ctx); err != nil {
		r.stopAll()
		return false, err
	}
	err = r.stopAll()
	for _, d := range []*Daemon{r.env.exporter, r.env.udpCol, r.env.tcpCol, r.env.nfcapd} {
		_ = os.WriteFile(filepath.Join(dir, d.Name+".log"), []byte(d.output()), 0o644)
	}
	if err != nil {
		return false, err
	}
	l, err := r.ledger()
	if err != nil {
		return false, err
	}
	md := l.markdown(r)
	fmt.Println(md)
	if o.Out != "" {
		if err := os.WriteFile(o.Out, []byte(md), 0o644); err != nil {
			return false, err
		}
	}
	return l.OK(), nil
}

// schedule orders the windows: one fault each, every fault at least once,
// no-fault windows between, in an order drawn from the seed.
func schedule(seed uint64, windows int) []*Fault {
	rng := rand.New(rand.NewPCG(seed, 0x5c4ed))
	order := rng.Perm(len(faults))
	out := make([]*Fault, windows)
	// Window 0 is clean (a baseline); then every fault once, then more
	// faults drawn at random in the windows left, every other one clean.
	w := 1
	for _, i := range order {
		if w >= windows {
			break
		}
		out[w] = &faults[i]
		w++
	}
	for ; w < windows; w++ {
		if rng.IntN(2) == 0 {
			out[w] = &faults[rng.IntN(len(faults))]
		}
	}
	return out
}

// windowLen is the length of one window's traffic; the CI run (60 s)
// gets 1 + len(faults) windows.
func windowCount(d time.Duration) int {
	n := int(d / (6 * time.Second))
	if n < 1+len(faults) {
		n = 1 + len(faults)
	}
	return n
}

func (r *Run) loop(ctx context.Context) error {
	n := windowCount(r.opts.Duration)
	plan := schedule(r.opts.Seed, n)
	per := r.opts.Duration / time.Duration(n)
	rng := rand.New(rand.NewPCG(r.opts.Seed, 0xfa17))
	before, err := r.snapshot(-1)
	if err != nil {
		return err
	}
	for w := 0; w < n; w++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		win := &Window{Index: w, Fault: plan[w], Start: time.Since(r.start), Before: before}
		r.windows = append(r.windows, win)
		deadline := time.Now().Add(per)
		name := "none"
		if win.Fault != nil {
			name = win.Fault.Name
		}
		r.logf(w, "window %d: traffic for %v, fault %s", w, per.Round(time.Millisecond), name)
		faultDone := make(chan error, 1)
		if win.Fault != nil {
			offset := time.Duration(rng.Int64N(int64(per / 3)))
			frng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			go func(f *Fault) {
				time.Sleep(offset)
				faultDone <- f.do(r, frng, func(format string, args ...any) { r.logf(w, "%s: "+format, append([]any{f.Name}, args...)...) })
			}(win.Fault)
		} else {
			faultDone <- nil
		}
		b := r.traffic.run(w, deadline)
		if err := <-faultDone; err != nil {
			return fmt.Errorf("window %d: fault %s: %w", w, name, err)
		}
		if b.Err != nil {
			return fmt.Errorf("window %d: traffic: %w", w, b.Err)
		}
		win.Truth = b.Truth
		win.Calls = b.Calls
		r.logf(w, "traffic done: %d flows, %d packets in %d calls", len(b.Truth), totalPackets(b.Truth), b.Calls)
		after, err := r.snapshot(w)
		if err != nil {
			return fmt.Errorf("window %d: %w", w, err)
		}
		win.After = after
		win.End = time.Since(r.start)
		before = after
	}
	return nil
}

// stopAll ends the daemons cleanly (the exporter detaches, drains and
// exports everything; the collectors finish their files).
func (r *Run) stopAll() error {
	e := r.env
	var first error
	if e.exporter != nil && e.exporter.proc != nil && !e.exporter.proc.Exited() {
		if err := e.exporter.stop(syscall.SIGTERM); err != nil && first == nil {
			first = fmt.Errorf("exporter: %w: %s", err, tail(e.exporter.output(), 10))
		}
	}
	// The collectors get what the exporter sent last.
	time.Sleep(500 * time.Millisecond)
	for _, d := range []*Daemon{e.udpCol, e.tcpCol, e.nfcapd} {
		if d != nil && d.proc != nil && !d.proc.Exited() {
			if err := d.stop(syscall.SIGTERM); err != nil && first == nil {
				first = fmt.Errorf("%s: %w: %s", d.Name, err, tail(d.output(), 10))
			}
		}
	}
	return first
}
