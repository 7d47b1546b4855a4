// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/link"
)

// The rows: each starts one exporter observing A's veth end and
// exporting to nfcapd on A's loopback, and knows how to make it export
// everything it holds and stop.

// Probe is one row of the comparison.
type Probe struct {
	Name string
	// OwnXDP: the exporter attaches its own XDP program to A's end (the
	// harness attaches the XDP_PASS helper otherwise).
	OwnXDP bool
	// Pcap: a libpcap probe, which needs FlushPcap to see the last packets.
	Pcap bool
	// Tool is the program to find in PATH (empty: none).
	Tool  string
	start func(e *Env, dir, collector string) (*Proc, func() error, error)
	// attach, in the floor rows (no exporter, no start), attaches the
	// harness's own program whose cost the row measures.
	attach func(g *XDPGen, e *Env) (link.Link, error)
}

// Probes returns the rows in table order.
func Probes(kflow string) []Probe {
	return []Probe{
		{Name: "no exporter (baseline)"},
		{Name: "kflow (TCX)", Tool: kflow, start: kflowStart(kflow, "tcx")},
		{Name: "kflow (XDP)", Tool: kflow, start: kflowStart(kflow, "xdp"), OwnXDP: true},
		{Name: floorTCXName, attach: (*XDPGen).AttachTCXNext},
		{Name: floorXDPName, attach: (*XDPGen).AttachHeaders, OwnXDP: true},
		{Name: "softflowd", Tool: "softflowd", start: softflowdStart, Pcap: true},
		{Name: "fprobe", Tool: "fprobe", start: fprobeStart, Pcap: true},
		{Name: "pmacctd + nfprobe", Tool: "pmacctd", start: pmacctdStart, Pcap: true},
	}
}

// The floor rows: what a flow meter pays at the hook before counting
// anything (see xdpgen.c). Not exporters: no exactness, no targets.
const (
	floorTCXName = "floor: empty TCX program"
	floorXDPName = "floor: XDP program reading the headers"
)

func isFloor(name string) bool { return name == floorTCXName || name == floorXDPName }

func kflowStart(bin, hook string) func(e *Env, dir, collector string) (*Proc, func() error, error) {
	return func(e *Env, dir, collector string) (*Proc, func() error, error) {
		ready := filepath.Join(dir, "kflow.ready")
		p, err := e.Start(e.A, bin, "exporter", "run", "-c", "ipfix://"+collector, "-i", e.AIf, "--hook", hook,
			"--pin-dir", "", "--ready-file", ready, "--log-level", "warn")
		if err != nil {
			return nil, nil, err
		}
		if !waitFor(20*time.Second, func() bool { _, err := os.Stat(ready); return err == nil || p.Exited() }) || p.Exited() {
			p.kill()
			return nil, nil, fmt.Errorf("kflow exporter not ready: %s", lastLines(p.Output(), 5))
		}
		// SIGTERM: detach, drain one last time, export every flow.
		stop := func() error { return p.Stop(syscall.SIGTERM, 30*time.Second) }
		return p, stop, nil
	}
}

// The libpcap probes get the same 16 MiB capture buffer.
const pcapBuffer = 16 << 20

func softflowdStart(e *Env, dir, collector string) (*Proc, func() error, error) {
	sock := filepath.Join(dir, "softflowd.ctl")
	p, err := e.Start(e.A, "softflowd", "-d", "-N", "-i", e.AIf, "-n", collector, "-v", "10", "-6",
		"-c", sock, "-p", filepath.Join(dir, "softflowd.pid"), "-m", "65536", "-B", strconv.Itoa(pcapBuffer))
	if err != nil {
		return nil, nil, err
	}
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil || p.Exited() }) || p.Exited() {
		p.kill()
		return nil, nil, fmt.Errorf("softflowd control socket did not appear: %s", lastLines(p.Output(), 5))
	}
	time.Sleep(300 * time.Millisecond) // pcap open and filter
	stop := func() error {
		// expire-all exports every flow; shutdown exits.
		if out, err := e.Run(e.A, 10*time.Second, "softflowctl", "-c", sock, "expire-all"); err != nil {
			return fmt.Errorf("softflowctl expire-all: %w: %s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
		_, _ = e.Run(e.A, 10*time.Second, "softflowctl", "-c", sock, "shutdown")
		if err := p.Wait(10 * time.Second); err != nil && !p.Exited() {
			p.kill()
			return err
		}
		return nil // softflowd exits with status 1 after a shutdown command
	}
	return p, stop, nil
}

func fprobeStart(e *Env, dir, collector string) (*Proc, func() error, error) {
	// -l 2: log to stdout, stay in the foreground; -p: no promiscuous
	// mode; -S 0: whole packets (the default 256 would do too).
	p, err := e.Start(e.A, "fprobe", "-l", "2", "-p", "-i", e.AIf, "-d", "5", "-e", "60", "-s", "1",
		"-S", "256", "-B", strconv.Itoa(pcapBuffer>>10), collector)
	if err != nil {
		return nil, nil, err
	}
	time.Sleep(time.Second) // pcap open
	if p.Exited() {
		return nil, nil, fmt.Errorf("fprobe exited: %s", lastLines(p.Output(), 5))
	}
	// fprobe 1.1 emits its whole flow cache on SIGTERM.
	stop := func() error { return p.Stop(syscall.SIGTERM, 20*time.Second) }
	return p, stop, nil
}

func pmacctdStart(e *Env, dir, collector string) (*Proc, func() error, error) {
	conf := filepath.Join(dir, "pmacctd.conf")
	cfg := strings.Join([]string{
		"daemonize: false",
		"pcap_interface: " + e.AIf,
		"promisc: false",
		"plugins: nfprobe",
		"nfprobe_receiver: " + collector,
		"nfprobe_version: 10",
		"aggregate: src_host, dst_host, src_port, dst_port, proto, tos",
		"nfprobe_timeouts: tcp=5:tcp.rst=5:tcp.fin=5:udp=5:icmp=5:general=5:expint=1",
		"nfprobe_maxflows: 65536",
		"plugin_buffer_size: 10240",
		"plugin_pipe_size: 10240000",
		"pidfile: " + filepath.Join(dir, "pmacctd.pid"),
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, nil, err
	}
	p, err := e.Start(e.A, "pmacctd", "-f", conf)
	if err != nil {
		return nil, nil, err
	}
	time.Sleep(time.Second) // plugin start, pcap open
	if p.Exited() {
		return nil, nil, fmt.Errorf("pmacctd exited: %s", lastLines(p.Output(), 5))
	}
	// SIGINT: a clean shutdown, in which the nfprobe plugin exports every
	// flow it holds (the mix comes out exact without waiting for the
	// timeouts).
	stop := func() error { return p.Stop(syscall.SIGINT, 20*time.Second) }
	return p, stop, nil
}
