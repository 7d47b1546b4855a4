// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// The topology. The exporter runs in the probe namespace and observes the
// A ends of the traffic pairs (kfa*); it exports over a link the glob does
// not match (kxp) to the collectors' namespace, where kflow's collector
// (one process on UDP, one on TCP) and nfcapd listen. A third namespace
// sends junk at the collectors over its own link.
var (
	exportP  = netip.MustParseAddr("198.19.250.1")
	exportC  = netip.MustParseAddr("198.19.250.2")
	junkJ    = netip.MustParseAddr("198.19.251.1")
	junkC    = netip.MustParseAddr("198.19.251.2")
	tcpAlias = netip.MustParseAddr("198.19.252.3") // the TCP collector: a route of its own, removed to make it unreachable
)

const (
	udpPort        = 4739 // kflow collector, IPFIX over UDP
	tcpPort        = 4740 // kflow collector, IPFIX over TCP
	nfcapdPort     = 9995 // nfcapd, NetFlow v9
	chDatabase     = "kflow_soak"
	exporterMetric = "127.0.0.1:9300"
	udpMetric      = "127.0.0.1:9301"
	tcpMetric      = "127.0.0.1:9302"
)

// Env is the harness's namespaces, links, directories and daemons.
type Env struct {
	kflow    string
	dir      string // everything the run writes
	pinDir   string
	P, C, J  *testenv.NS
	pairs    []*testenv.Pair
	tmpfs    string // the TCP collector's directory, a small tmpfs
	cleanups []func()

	exporter       *Daemon
	udpCol, tcpCol *Daemon
	nfcapd         *Daemon
	// nfcapdRcvbuf is the receive buffer nfcapd's socket got.
	nfcapdRcvbuf int
	// ch is the ClickHouse server the UDP collector ships into (inside
	// C), nil without -clickhouse.
	ch                *chtest.Server
	withCH            bool
	exporterArgs      []string
	attachCount       int // "attached" log lines of exporters before the current one
	mapEntries        int
	exporterRestarted int
}

// vlanPair also carries VLAN-tagged frames (written on a packet socket:
// the kernel needs no VLAN support for that).
const vlanPair = 1

// Daemon is a running kflow or nfcapd process and how to start it again.
type Daemon struct {
	Name string
	ns   *testenv.NS
	bin  string
	args []string
	proc *testenv.Proc
	// logs keeps the output of every incarnation.
	logs []string
	// incarnation counts starts.
	incarnation int
}

func (e *Env) close() {
	for _, d := range []*Daemon{e.exporter, e.udpCol, e.tcpCol, e.nfcapd} {
		if d != nil && d.proc != nil && !d.proc.Exited() {
			d.proc.Kill()
		}
	}
	if e.ch != nil {
		e.ch.Kill()
	}
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// newEnv creates the namespaces and links. pairs is the number of
// observed veth pairs.
func newEnv(kflow, dir string, pairs, mapEntries int) (*Env, error) {
	e := &Env{kflow: kflow, dir: dir, mapEntries: mapEntries}
	id := os.Getpid() % 100000
	// The pins live on a bpffs of the harness's own, outside /sys: "ip
	// netns exec" mounts a fresh sysfs in a private mount namespace, where
	// a bpffs kflow mounted on /sys/fs/bpf would vanish with the process
	// (and the next exporter would have nothing to adopt).
	bpffs := filepath.Join(dir, "bpffs")
	if err := os.MkdirAll(bpffs, 0o700); err != nil {
		return e, err
	}
	if err := unix.Mount("bpf", bpffs, "bpf", 0, "mode=0700"); err != nil {
		return e, fmt.Errorf("mount bpffs on %s: %w", bpffs, err)
	}
	e.cleanups = append(e.cleanups, func() { _ = unix.Unmount(bpffs, unix.MNT_DETACH) })
	e.pinDir = filepath.Join(bpffs, "kflow")
	var err error
	ns := func(role string) (*testenv.NS, error) {
		n, c, err := testenv.NewNS(fmt.Sprintf("kflow-soak-%s-%d", role, id))
		if err == nil {
			e.cleanups = append(e.cleanups, c)
		}
		return n, err
	}
	if e.P, err = ns("p"); err != nil {
		return e, err
	}
	if e.C, err = ns("c"); err != nil {
		return e, err
	}
	if e.J, err = ns("j"); err != nil {
		return e, err
	}
	for i := 0; i < pairs; i++ {
		p, c, err := testenv.NewPairIn(e.P, "soak")
		if err != nil {
			return e, err
		}
		e.cleanups = append(e.cleanups, c)
		e.pairs = append(e.pairs, p)
	}
	links := []*testenv.Pair{
		{A: e.P, B: e.C, AIf: "kxp", BIf: "kxc", A4: exportP, B4: exportC,
			A6: netip.MustParseAddr("fd00:19:250::1"), B6: netip.MustParseAddr("fd00:19:250::2")},
		{A: e.J, B: e.C, AIf: "kjj", BIf: "kjc", A4: junkJ, B4: junkC,
			A6: netip.MustParseAddr("fd00:19:251::1"), B6: netip.MustParseAddr("fd00:19:251::2")},
	}
	for _, l := range links {
		if err := l.Setup(); err != nil {
			return e, err
		}
	}
	if err := e.tcpRoute(true); err != nil {
		return e, err
	}
	// The junk namespace reaches the collectors' export address through
	// their namespace.
	err = e.J.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName("kjj")
		if err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: exportC.AsSlice(), Mask: net.CIDRMask(32, 32)},
			Gw: junkC.AsSlice()})
	})
	if err != nil {
		return e, fmt.Errorf("junk route: %w", err)
	}
	err = e.C.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(tcpAlias.String() + "/32")
		return h.AddrAdd(lo, a)
	})
	if err != nil {
		return e, fmt.Errorf("tcp collector address: %w", err)
	}
	for _, d := range []string{"udp", "nfcapd", "tcp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return e, err
		}
	}
	e.tmpfs = filepath.Join(dir, "tcp")
	if err := unix.Mount("tmpfs", e.tmpfs, "tmpfs", 0, "size=48m"); err != nil {
		return e, fmt.Errorf("mount tmpfs on %s: %w", e.tmpfs, err)
	}
	e.cleanups = append(e.cleanups, func() { _ = unix.Unmount(e.tmpfs, unix.MNT_DETACH) })
	return e, nil
}

// tcpRoute adds (or removes) the probe's route to the TCP collector's
// address: without it the collector is unreachable (sends fail at once
// with "network unreachable", a connection in progress times out).
func (e *Env) tcpRoute(add bool) error {
	return e.P.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName("kxp")
		if err != nil {
			return err
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: tcpAlias.AsSlice(), Mask: net.CIDRMask(32, 32)},
			Gw: exportC.AsSlice()}
		if add {
			return h.RouteAdd(r)
		}
		return h.RouteDel(r)
	})
}

// soakFilter keeps the packets between the harness's unicast addresses.
const soakFilter = "(src net 198.18.0.0/15 or src net fd00::/8) and (dst net 198.18.0.0/15 or dst net fd00::/8)"

// startDaemons starts the collectors, nfcapd and the exporter.
func (e *Env) startDaemons() error {
	col := func(name, listen, dir, metrics string) *Daemon {
		return &Daemon{Name: name, ns: e.C, bin: e.kflow, args: []string{"collector", "run", "--no-default-listen",
			"-l", listen, "-d", dir, "-t", "60", "--flush-interval", "200ms", "--metrics-address", metrics,
			"--state-file", filepath.Join(e.dir, name+".state.json"),
			"--log-format", "json", "--stats-interval", "0"}}
	}
	e.udpCol = col("collector-udp", fmt.Sprintf("udp://%s:%d", exportC, udpPort), filepath.Join(e.dir, "udp"), udpMetric)
	if e.withCH {
		var err error
		if e.ch, err = chtest.StartWith(filepath.Join(e.dir, "clickhouse"), chtest.Options{NS: e.C}); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
		e.udpCol.args = append(e.udpCol.args, "--clickhouse", e.ch.URL(chDatabase))
	}
	e.tcpCol = col("collector-tcp", fmt.Sprintf("tcp://%s:%d", tcpAlias, tcpPort), e.tmpfs, tcpMetric)
	e.nfcapd = &Daemon{Name: "nfcapd", ns: e.C, bin: "nfcapd", args: []string{"-w", filepath.Join(e.dir, "nfcapd"),
		"-b", exportC.String(), "-p", strconv.Itoa(nfcapdPort), "-t", "3600", "-B", "16777216"}}
	for _, d := range []*Daemon{e.udpCol, e.tcpCol} {
		if err := d.startReady(e.dir); err != nil {
			return err
		}
	}
	if err := e.nfcapd.start(); err != nil {
		return err
	}
	if !testenv.WaitFor(10*time.Second, func() bool {
		out, _ := e.C.Exec("ss", "-Hlun", "sport", "= :"+strconv.Itoa(nfcapdPort))
		return len(strings.TrimSpace(string(out))) > 0 || e.nfcapd.proc.Exited()
	}) || e.nfcapd.proc.Exited() {
		return fmt.Errorf("nfcapd did not start: %s", e.nfcapd.proc.Output())
	}
	granted, err := forceRcvbuf(e.nfcapd.proc.PID(), nfcapdRcvbuf)
	if err != nil {
		return fmt.Errorf("nfcapd's receive buffer: %w", err)
	}
	e.nfcapdRcvbuf = granted
	e.exporter = &Daemon{Name: "exporter", ns: e.P, bin: e.kflow, args: []string{"exporter", "run", "-i", "kfa*",
		"-c", fmt.Sprintf("ipfix://%s:%d", exportC, udpPort),
		"-c", fmt.Sprintf("ipfix+tcp://%s:%d", tcpAlias, tcpPort),
		"-c", fmt.Sprintf("nfv9://%s:%d", exportC, nfcapdPort),
		// Only the harness's traffic: neighbour discovery and listener
		// reports (link-local or multicast) are left out by the capture
		// filter, so every flow has a ground truth and every lost
		// record is one of the harness's.
		"--filter", soakFilter,
		"--pin-dir", e.pinDir, "--drain-interval", "250ms", "--idle-timeout", "1s", "--end-grace", "500ms",
		"--active-timeout", "10s", "--template-refresh", "5s",
		"--map-entries", strconv.Itoa(e.mapEntries), "--ring-buffer-bytes", "65536",
		"--metrics-address", exporterMetric, "--log-format", "json"}}
	return e.exporter.startReady(e.dir)
}

// start starts the daemon (again).
func (d *Daemon) start() error {
	d.incarnation++
	p, err := testenv.StartInE(d.ns, d.bin, d.args...)
	if err != nil {
		return err
	}
	d.proc = p
	return nil
}

// startReady starts a kflow daemon with a ready file and waits for it.
func (d *Daemon) startReady(dir string) error {
	ready := filepath.Join(dir, fmt.Sprintf("%s.%d.ready", d.Name, d.incarnation+1))
	base := d.args
	d.args = append(append([]string(nil), base...), "--ready-file", ready)
	err := d.start()
	d.args = base
	if err != nil {
		return err
	}
	if err := testenv.WaitFile(ready, 60*time.Second, d.proc); err != nil {
		return fmt.Errorf("%s: %w: %s", d.Name, err, tail(d.proc.Output(), 10))
	}
	return nil
}

// stop ends the daemon with sig and keeps its output.
func (d *Daemon) stop(sig syscall.Signal) error {
	var err error
	if sig == syscall.SIGKILL {
		d.proc.Kill()
	} else {
		err = d.proc.Stop(sig, 60*time.Second)
		var ee *exec.ExitError
		if errors.As(err, &ee) && sig == syscall.SIGTERM && ee.ExitCode() == -1 {
			err = nil // nfcapd ends by the signal
		}
	}
	d.logs = append(d.logs, d.proc.Output())
	return err
}

// output is every incarnation's output so far.
func (d *Daemon) output() string {
	s := strings.Join(d.logs, "")
	if d.proc != nil && !d.proc.Exited() {
		s += d.proc.Output()
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// httpIn is an HTTP client whose connections are made inside ns (where
// the daemon's metrics listen on loopback).
func httpIn(ns *testenv.NS) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() (err error) {
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}
