// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/cilium/ebpf/link"
)

// One row run: nfcapd, the XDP_PASS helper unless the exporter brings its
// own XDP program, the exporter, then the three traffic phases (the
// tcpreplay mix, the trafgen load, the xdpgen load), then everything is
// exported, collected and compared with the ground truth.

// Config is what the whole run needs.
type Config struct {
	Kflow    string
	Runs     int
	MixPPS   int
	TrafgenN uint64
	XDPGenN  uint64
	// XDPGenSkipped says why the xdpgen load was left out (XDPGenN 0).
	XDPGenSkipped string
	LoadFlows     int
	MixPcap       string
	MixTruth      Truth
	MixStats      MixStats
	Logf          func(string, ...any)
	Verbose       bool
	CollectorN    int
	// NoQueries skips the query rows after the collector rows.
	NoQueries bool
	// KeepFiles, when set, is where the last collector run's files of
	// kflow's collector and nfcapd are moved at the end.
	KeepFiles string
}

// loads returns the load phases the run has: trafgen's, and xdpgen's
// unless it was left out.
func (cfg *Config) loads() []string {
	if cfg.XDPGenN == 0 {
		return []string{phaseTrafgen}
	}
	return []string{phaseTrafgen, phaseXDPGen}
}

// LoadMetrics are one load phase's figures.
type LoadMetrics struct {
	Rate     float64       // offered packets per second
	Packets  uint64        // packets that reached A's end
	Window   time.Duration // the phase and its settling tail
	SysBusy  time.Duration // whole-system busy CPU during the window
	ProcCPU  time.Duration // exporter process tree CPU during the window
	PerFlow  bool          // the per-flow truth is known
	Received uint64
}

// RowRun is one run of one row.
type RowRun struct {
	Probe   string
	Match   map[string]Match // by phase
	Loads   map[string]LoadMetrics
	CPU     time.Duration // exporter CPU over the whole run
	Packets uint64        // packets offered over the whole run
	PeakRSS uint64
	Records int
	Other   Counts // flows nfcapd holds that belong to no phase
	Err     error
}

var tcpreplaySent = regexp.MustCompile(`Actual: (\d+) packets`)

func runRow(ctx context.Context, e *Env, cfg *Config, gen *XDPGen, pr Probe, n int) (rr RowRun) {
	rr = RowRun{Probe: pr.Name, Match: map[string]Match{}, Loads: map[string]LoadMetrics{}}
	dir := filepath.Join(e.Dir, fmt.Sprintf("run%d-%s", n, sanitize(pr.Name)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		rr.Err = err
		return rr
	}
	defer os.RemoveAll(dir)
	nf, err := e.StartNfcapd(filepath.Join(dir, "nfcapd"))
	if err != nil {
		rr.Err = err
		return rr
	}
	nfStopped := false
	defer func() {
		if !nfStopped {
			_ = nf.Stop()
		}
	}()
	if !pr.OwnXDP {
		var l link.Link
		if l, err = gen.AttachPass(e); err != nil {
			rr.Err = err
			return rr
		}
		defer l.Close()
	}
	if pr.attach != nil {
		l, err := pr.attach(gen, e)
		if err != nil {
			rr.Err = err
			return rr
		}
		defer l.Close()
	}
	var proc *Proc
	stop := func() error { return nil }
	if pr.start != nil {
		if proc, stop, err = pr.start(e, dir, fmt.Sprintf("127.0.0.1:%d", nfcapdPort)); err != nil {
			rr.Err = err
			return rr
		}
		defer proc.kill()
	}
	usage := func() TreeUsage {
		if proc == nil {
			return TreeUsage{}
		}
		return readTree(proc.PID())
	}
	u0 := usage()

	// Phase 1: the mix, replayed at a moderate rate.
	rx0, err := e.RxPackets()
	if err != nil {
		rr.Err = err
		return rr
	}
	out, err := e.Run(e.B, time.Minute, "tcpreplay", "-i", e.BIf, "--pps="+strconv.Itoa(cfg.MixPPS), cfg.MixPcap)
	if err != nil {
		rr.Err = err
		return rr
	}
	rx1, _ := e.RxPackets()
	if m := tcpreplaySent.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(cfg.MixStats.Packets) || rx1-rx0 != uint64(cfg.MixStats.Packets) {
		rr.Err = fmt.Errorf("mix: tcpreplay sent %v, %d received, want %d: %s", m, rx1-rx0, cfg.MixStats.Packets, lastLines(out, 6))
		return rr
	}
	rr.Packets += uint64(cfg.MixStats.Packets)
	if ctx.Err() != nil {
		rr.Err = ctx.Err()
		return rr
	}

	// Phases 2 and 3: the loads.
	truths := map[string]LoadResult{}
	for _, ph := range cfg.loads() {
		s0, _ := readSysCPU()
		p0 := usage()
		t0 := time.Now()
		var lr LoadResult
		if ph == phaseTrafgen {
			lr, err = e.Trafgen(cfg.TrafgenN, cfg.LoadFlows)
		} else {
			lr, err = gen.Run(e, cfg.XDPGenN)
		}
		if err != nil {
			rr.Err = fmt.Errorf("%s: %w", ph, err)
			return rr
		}
		settle(usage)
		s1, _ := readSysCPU()
		p1 := usage()
		truths[ph] = lr
		rr.Packets += lr.Sent
		rr.Loads[ph] = LoadMetrics{Rate: lr.Rate(), Packets: lr.Received, Window: time.Since(t0),
			SysBusy: s1.Busy - s0.Busy, ProcCPU: p1.CPU - p0.CPU, PerFlow: lr.PerFlow, Received: lr.Received}
		if ctx.Err() != nil {
			rr.Err = ctx.Err()
			return rr
		}
	}

	if pr.Pcap {
		if err := e.FlushPcap(20000); err != nil {
			rr.Err = err
			return rr
		}
		settle(usage)
	}
	u1 := usage()
	rr.CPU, rr.PeakRSS = u1.CPU-u0.CPU, u1.Peak
	if err := stop(); err != nil {
		cfg.Logf("%s: stop: %v", pr.Name, err)
	}
	time.Sleep(500 * time.Millisecond) // the last export datagrams
	nfStopped = true
	if err := nf.Stop(); err != nil {
		rr.Err = err
		return rr
	}
	got, records, err := ReadNfdump(nf.Dir)
	if err != nil {
		rr.Err = err
		return rr
	}
	rr.Records = records
	phases := splitPhases(got)
	rr.Other = phases["other"].Total()
	if pr.start == nil {
		return rr
	}
	rr.Match[phaseMix] = Compare(cfg.MixTruth, phases[phaseMix], true)
	for ph, lr := range truths {
		rr.Match[ph] = Compare(lr.Truth, phases[ph], lr.PerFlow)
	}
	if cfg.Verbose {
		n := 0
		for k, c := range phases["other"] {
			if n++; n <= 3 {
				cfg.Logf("%s: flow outside every phase: %v: %+v", pr.Name, k, c)
			}
		}
		for ph, m := range rr.Match {
			if m.FirstMismatch != "" {
				cfg.Logf("%s %s: %s", pr.Name, ph, m.FirstMismatch)
			}
		}
	}
	return rr
}

// settle waits until the exporter's CPU time stops growing (it has caught
// up with what its capture buffer held): at most one clock tick over a
// quarter second, waiting at least that and at most 10 s.
func settle(usage func() TreeUsage) {
	prev := usage().CPU
	for range 40 {
		time.Sleep(250 * time.Millisecond)
		cur := usage().CPU
		if cur-prev <= time.Second/userHZ {
			return
		}
		prev = cur
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

var errInterrupted = errors.New("interrupted")
