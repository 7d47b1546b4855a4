// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Load generators. Both send 60-byte IPv4 UDP frames (46 L3 bytes) from B
// into A over a fixed number of flows (source ports base..base+flows-1),
// with ground truth by construction.

const (
	phaseMix     = "mix"
	phaseTrafgen = "trafgen"
	phaseXDPGen  = "xdpgen"

	loadFrameLen = 60
	loadL3Len    = loadFrameLen - 14
	loadDstPort  = 9
)

var (
	trafgenSrc    = netip.MustParseAddr("198.19.1.1")
	trafgenDst    = netip.MustParseAddr("198.19.1.2")
	trafgenPrefix = netip.MustParsePrefix("198.19.1.0/24")
	xdpgenSrc     = netip.MustParseAddr("198.19.2.1")
	xdpgenDst     = netip.MustParseAddr("198.19.2.2")
	xdpgenPrefix  = netip.MustParsePrefix("198.19.2.0/24")
)

// LoadResult is one load phase: what the generator sent and how fast.
type LoadResult struct {
	Sent     uint64        // frames the generator handed to B's veth end
	Elapsed  time.Duration // generator wall time
	Truth    Truth         // per flow when the split is known, else totals under one key
	PerFlow  bool
	Received uint64 // A's veth end rx_packets delta
}

// Rate is the offered rate in packets per second.
func (r LoadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// splitTruth is the truth of n frames starting at frame number first over
// flows ports from base: frame i carries port base + i%flows.
func splitTruth(src, dst netip.Addr, base uint16, flows int, first, n uint64) Truth {
	t := Truth{}
	for f := range flows {
		// Frames i in [first, first+n) with i % flows == f.
		count := countMod(first, first+n, uint64(flows), uint64(f))
		if count > 0 {
			t.Add(Key{Src: src, Dst: dst, Proto: 17, SrcPort: base + uint16(f), DstPort: loadDstPort}, count, count*loadL3Len)
		}
	}
	return t
}

// countMod counts i in [lo, hi) with i % m == r.
func countMod(lo, hi, m, r uint64) uint64 {
	below := func(x uint64) uint64 { // i in [0, x) with i % m == r
		if x <= r {
			return 0
		}
		return (x-r-1)/m + 1
	}
	return below(hi) - below(lo)
}

// trafgenConfig is trafgen's packet configuration: the source port
// counts up from base through base+flows-1 and wraps, one step a frame.
func trafgenConfig(base uint16, flows int) string {
	return fmt.Sprintf(`{
  eth(da=%s, sa=%s, type=0x0800),
  ipv4(saddr=%s, daddr=%s, proto=17, ttl=64, df),
  udp(sport=dinc(%d, %d, 1), dport=%d),
  fill(0x00, %d)
}
`, genDstMAC, genSrcMAC, trafgenSrc, trafgenDst, base, int(base)+flows-1, loadDstPort, loadFrameLen-42)
}

var trafgenRate = regexp.MustCompile(`(\d+) packets outgoing`)

// Trafgen sends n frames with trafgen (one process, TX_RING) from B.
func (e *Env) Trafgen(n uint64, flows int) (LoadResult, error) {
	const base = 10000
	cfg := filepath.Join(e.Dir, "trafgen.cfg")
	if err := os.WriteFile(cfg, []byte(trafgenConfig(base, flows)), 0o644); err != nil {
		return LoadResult{}, err
	}
	rx0, err := e.RxPackets()
	if err != nil {
		return LoadResult{}, err
	}
	start := time.Now()
	// -A: leave the system's socket memory settings alone; -Q: leave IRQ
	// affinities alone; -P 1: one process.
	out, err := e.Run(e.B, 2*time.Minute, "trafgen", "-o", e.BIf, "-i", cfg, "-n", strconv.FormatUint(n, 10), "-P", "1", "--no-sock-mem", "--notouch-irq")
	elapsed := time.Since(start)
	if err != nil {
		return LoadResult{}, err
	}
	sent := n
	if m := trafgenRate.FindStringSubmatch(out); m != nil {
		sent, _ = strconv.ParseUint(m[1], 10, 64)
	}
	rx1, err := e.RxPackets()
	if err != nil {
		return LoadResult{}, err
	}
	r := LoadResult{Sent: sent, Elapsed: elapsed, Received: rx1 - rx0}
	r.PerFlow = r.Received == n && sent == n
	if r.PerFlow {
		r.Truth = splitTruth(trafgenSrc, trafgenDst, base, flows, 0, n)
	} else {
		r.Truth = Truth{}
		r.Truth.Add(Key{Src: trafgenSrc, Dst: trafgenDst, Proto: 17}, r.Received, r.Received*loadL3Len)
	}
	return r, nil
}

// XDPGen is the BPF_PROG_RUN live-frames generator (xdpgen.c).
type XDPGen struct {
	objs  xdpgenObjects
	flows int
	base  uint16
}

const xdpgenBase = 20000

// NewXDPGen loads the generator for flows flows.
func NewXDPGen(flows int) (*XDPGen, error) {
	spec, err := loadXdpgen()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["cfg_flows"].Set(uint32(flows)); err != nil {
		return nil, err
	}
	if err := spec.Variables["cfg_base_port"].Set(uint16(xdpgenBase)); err != nil {
		return nil, err
	}
	g := &XDPGen{flows: flows, base: xdpgenBase}
	if err := spec.LoadAndAssign(&g.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdpgen: %w", err)
	}
	return g, nil
}

// Close releases the programs.
func (g *XDPGen) Close() { g.objs.Close() }

// AttachPass attaches the XDP_PASS program to A's veth end (native mode),
// which a veth needs before it accepts XDP frames from its peer. Closing
// the link detaches it.
func (g *XDPGen) AttachPass(e *Env) (link.Link, error) {
	return g.attachXDP(e, g.objs.XdpgenPass, "pass")
}

// AttachHeaders attaches the header-reading XDP program to A's veth end
// in place of the XDP_PASS one (a floor row).
func (g *XDPGen) AttachHeaders(e *Env) (link.Link, error) {
	return g.attachXDP(e, g.objs.XdpgenHeaders, "headers")
}

func (g *XDPGen) attachXDP(e *Env, prog *ebpf.Program, what string) (link.Link, error) {
	var l link.Link
	err := e.A.Do(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: e.AIndex, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach xdp %s on %s: %w", what, e.AIf, err)
	}
	return l, nil
}

// AttachTCXNext attaches the empty TCX ingress program to A's veth end
// (a floor row).
func (g *XDPGen) AttachTCXNext(e *Env) (link.Link, error) {
	var l link.Link
	err := e.A.Do(func() (err error) {
		l, err = link.AttachTCX(link.TCXOptions{Program: g.objs.XdpgenTcxNext, Attach: ebpf.AttachTCXIngress, Interface: e.AIndex})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach tcx on %s: %w", e.AIf, err)
	}
	return l, nil
}

// xdpMd is struct xdp_md, the context handed to BPF_PROG_RUN.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

func (g *XDPGen) runs() (uint64, error) {
	var v uint64
	err := g.objs.Runs.Get(&v)
	return v, err
}

// Probe checks that the kernel runs the generator with live frames: one
// frame of a local experimental EtherType out of B's veth end, before A
// has the XDP program it needs to take XDP frames, so A drops it and no
// row can count it. Some kernels and sandboxes refuse live-frame test
// runs (EPERM) while they allow every other use of BPF.
func (g *XDPGen) Probe(e *Env) error {
	frame := make([]byte, loadFrameLen)
	copy(frame[0:], genDstMAC)
	copy(frame[6:], genSrcMAC)
	binary.BigEndian.PutUint16(frame[12:], 0x88b5)
	err := e.B.Do(func() error {
		_, err := g.objs.XdpgenTx.Run(&ebpf.RunOptions{
			Data:    frame,
			Context: xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(e.BIndex)},
			Repeat:  1,
			Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("the kernel refused a live-frame test run (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18 or later, CAP_BPF and CAP_NET_ADMIN): %w", err)
	}
	return nil
}

// Run transmits n frames out of B's veth end (into A) from one CPU, the
// last one, pinned.
func (g *XDPGen) Run(e *Env, n uint64) (LoadResult, error) {
	frame := make([]byte, loadFrameLen)
	copy(frame[0:], genDstMAC)
	copy(frame[6:], genSrcMAC)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	ip := frame[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], loadL3Len)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	s, d := xdpgenSrc.As4(), xdpgenDst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := frame[34:42]
	binary.BigEndian.PutUint16(udp[0:], g.base)
	binary.BigEndian.PutUint16(udp[2:], loadDstPort)
	binary.BigEndian.PutUint16(udp[4:], loadL3Len-20)
	// UDP checksum 0: none (IPv4); the program rewrites the source port.

	if n > 1<<31 {
		return LoadResult{}, errors.New("xdpgen: too many frames for one run")
	}
	rx0, err := e.RxPackets()
	if err != nil {
		return LoadResult{}, err
	}
	r0, err := g.runs()
	if err != nil {
		return LoadResult{}, err
	}
	var elapsed time.Duration
	err = e.B.Do(func() error {
		// Do's thread is locked and discarded afterwards: pinning it
		// affects nothing else.
		var set unix.CPUSet
		set.Set(runtime.NumCPU() - 1)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin generator: %w", err)
		}
		start := time.Now()
		_, err := g.objs.XdpgenTx.Run(&ebpf.RunOptions{
			Data:      frame,
			Context:   xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(e.BIndex)},
			Repeat:    uint32(n),
			Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
			BatchSize: 64,
		})
		elapsed = time.Since(start)
		return err
	})
	if err != nil {
		return LoadResult{}, fmt.Errorf("xdpgen run: %w", err)
	}
	r1, err := g.runs()
	if err != nil {
		return LoadResult{}, err
	}
	// The frames reach A in its NAPI poll, on this CPU, before the run
	// returns; give a straggling poll a moment anyway.
	var rx1 uint64
	for range 20 {
		if rx1, err = e.RxPackets(); err != nil {
			return LoadResult{}, err
		}
		if rx1-rx0 >= r1-r0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := LoadResult{Sent: r1 - r0, Elapsed: elapsed, Received: rx1 - rx0}
	r.PerFlow = r.Received == r.Sent
	if r.PerFlow {
		r.Truth = splitTruth(xdpgenSrc, xdpgenDst, g.base, g.flows, r0, r.Sent)
	} else {
		r.Truth = Truth{}
		r.Truth.Add(Key{Src: xdpgenSrc, Dst: xdpgenDst, Proto: 17}, r.Received, r.Received*loadL3Len)
	}
	return r, nil
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
