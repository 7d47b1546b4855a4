// SPDX-License-Identifier: Apache-2.0

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/exporter/agent"
	"github.com/kflow-dev/kflow/exporter/cgroup"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// defaultExporterAddr is where the commands look for a running exporter.
const defaultExporterAddr = "127.0.0.1:9273"

// flowSource reads live flows: from a running exporter's /flows, or from
// the pinned kernel map (what was counted since the last drain).
type flowSource struct {
	addr   string
	kernel bool
	pinDir string
}

func (s *flowSource) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.addr, "exporter", defaultExporterAddr, "read the flow cache of the exporter serving --metrics-address at `ADDR`")
	fs.BoolVar(&s.kernel, "kernel", false, "read the pinned kernel flow map instead: what was counted since the exporter's last drain")
	fs.StringVar(&s.pinDir, "pin-dir", bpf.DefaultPinDir, "bpffs `DIR` with the exporter's pins (for --kernel)")
}

func (s *flowSource) read(ctx context.Context) ([]flow.Record, string, error) {
	if s.kernel {
		recs, err := readKernelFlows(s.pinDir)
		if r, cerr := cgroup.New(cgroup.Config{}); cerr == nil {
			for i := range recs {
				recs[i].Cgroup = r.Path(recs[i].CgroupID)
			}
		}
		return recs, "kernel map (since the last drain)", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	recs, err := agent.FetchFlows(ctx, s.addr)
	var ue *url.Error
	if errors.As(err, &ue) {
		return nil, "", fmt.Errorf("no exporter answers at %s (start it with --metrics-address %s, or use --kernel): %w", s.addr, s.addr, err)
	}
	if err != nil {
		return nil, "", err
	}
	return recs, "exporter flow cache at " + s.addr, nil
}

// ifNames returns the names of interfaces by index: the exporter's own
// (what it observes), or this host's for --kernel; numbers stay numbers
// when a name is unknown (an older exporter, another namespace).
func (s *flowSource) ifNames(ctx context.Context) func(uint32) string {
	if s.kernel {
		return func(i uint32) string {
			if ifc, err := net.InterfaceByIndex(int(i)); err == nil {
				return ifc.Name
			}
			return ""
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	names, _ := agent.FetchInterfaces(ctx, s.addr)
	return func(i uint32) string { return names[i] }
}

// flowListFormat is nfdump's line format with the interfaces and the
// local socket's application (cgroup: container, unit).
const flowListFormat = "fmt:%ts %td %pr %sap -> %dap %in %out %pkt %byt %fl %app"

// readKernelFlows reads the active pinned flow caches and flow maps (IPv4,
// then IPv6), lookups only. A flow counted both in the cache and in a map
// comes twice: what each holds.
func readKernelFlows(pinDir string) ([]flow.Record, error) {
	var recs []flow.Record
	for _, slot := range []string{bpf.MapCache4Slot, bpf.MapFlow4Slot, bpf.MapCache6Slot, bpf.MapFlowSlot} {
		m, _, err := bpf.OpenActiveFlowMap(pinDir, slot)
		if err != nil {
			return nil, err
		}
		// Kernel timestamps are in the datapath's clock (ticks or boot
		// nanoseconds): left out here; the exporter's cache has wall times.
		err = bpf.DumpFlows(m, func(e *bpf.FlowEntry) error {
			recs = append(recs, e.Record())
			return nil
		})
		m.Close()
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// sortFlows orders flows by a key, largest first.
func sortFlows(recs []flow.Record, by string) error {
	var less func(a, b *flow.Record) bool
	switch by {
	case "bytes":
		less = func(a, b *flow.Record) bool { return a.Octets > b.Octets }
	case "packets":
		less = func(a, b *flow.Record) bool { return a.Packets > b.Packets }
	case "start":
		less = func(a, b *flow.Record) bool { return a.Start.Before(b.Start) }
	case "last":
		less = func(a, b *flow.Record) bool { return a.End.After(b.End) }
	default:
		return fmt.Errorf("%w: --sort %q: want bytes, packets, start or last", errUsage, by)
	}
	sort.SliceStable(recs, func(i, j int) bool { return less(&recs[i], &recs[j]) })
	return nil
}

func flowCmd() *command {
	return &command{
		name:    "flow",
		summary: "the flows a running exporter is counting now",
		def:     "list",
		sub:     []*command{flowListCmd(), flowTopCmd()},
	}
}

func flowListCmd() *command {
	var src flowSource
	var by string
	var limit int
	return &command{
		name:    "list",
		aliases: []string{"show"},
		summary: "list live flows with their counters since their last record",
		usage:   "[--exporter ADDR | --kernel] [--sort bytes|packets|start|last] [-n N]",
		flags: func(fs *pflag.FlagSet) {
			src.register(fs)
			fs.StringVarP(&by, "sort", "s", "bytes", "sort by bytes, packets, start or last")
			fs.IntVarP(&limit, "limit", "n", 0, "print at most N flows (0: all)")
		},
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			recs, from, err := src.read(e.ctx)
			if err != nil {
				return err
			}
			if err := sortFlows(recs, by); err != nil {
				return err
			}
			if limit > 0 && len(recs) > limit {
				recs = recs[:limit]
			}
			if e.json {
				out := make([]flow.JSON, len(recs))
				for i := range recs {
					out[i] = flow.NewJSON(&recs[i])
				}
				return e.printJSON(out)
			}
			fmt.Fprintf(e.stdout, "# %d flows from the %s\n", len(recs), from)
			return querycli.PrintRecords(e.stdout, recs, flowListFormat, time.Local, src.ifNames(e.ctx))
		},
	}
}

// rateKey identifies a flow between two snapshots.
type rateKey struct {
	src, dst   netip.Addr
	sp, dp     uint16
	proto      uint8
	inIf, oIf  uint32
	dir        flow.Direction
	icmp       uint16
	vlan, ivln uint16
}

func keyOf(r *flow.Record) rateKey {
	return rateKey{r.Src, r.Dst, r.SrcPort, r.DstPort, r.Proto, r.InIf, r.OutIf, r.Direction, r.ICMPTypeCode(), r.VLAN, r.InnerVLAN}
}

type flowRate struct {
	rec           flow.Record
	pps, bps      float64
	dpkts, dbytes uint64
}

func flowTopCmd() *command {
	var src flowSource
	var interval time.Duration
	var count, limit int
	return &command{
		name:    "top",
		summary: "a refreshing view of the heaviest flows and interfaces, like top",
		usage:   "[--exporter ADDR | --kernel] [-d INTERVAL] [-n N] [--iterations N]",
		flags: func(fs *pflag.FlagSet) {
			src.register(fs)
			fs.DurationVarP(&interval, "delay", "d", 2*time.Second, "refresh every `INTERVAL`")
			fs.IntVarP(&limit, "limit", "n", 20, "show the N heaviest flows")
			fs.IntVar(&count, "iterations", 0, "stop after N refreshes (0: until interrupted)")
		},
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			if interval < 100*time.Millisecond {
				return fmt.Errorf("%w: --delay %v: at least 100ms", errUsage, interval)
			}
			tty := false
			if f, ok := e.stdout.(*os.File); ok {
				tty = term.IsTerminal(int(f.Fd()))
			}
			prev := map[rateKey]flow.Record{}
			var prevAt time.Time
			ifName := src.ifNames(e.ctx)
			for i := 0; count == 0 || i < count; i++ {
				recs, from, err := src.read(e.ctx)
				if err != nil {
					return err
				}
				now := time.Now()
				rates := topRates(recs, prev, now.Sub(prevAt), !prevAt.IsZero())
				prev = map[rateKey]flow.Record{}
				for i := range recs {
					prev[keyOf(&recs[i])] = recs[i]
				}
				prevAt = now
				if e.json {
					if err := printTopJSON(e, now, rates, limit); err != nil {
						return err
					}
				} else {
					printTop(e.stdout, tty, now, from, rates, limit, ifName)
				}
				if count != 0 && i == count-1 {
					break
				}
				select {
				case <-e.ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
			return nil
		},
	}
}

// topRates computes each flow's rate since the previous snapshot. A flow
// whose counters went down was exported meanwhile: its new counters are
// all since then.
func topRates(recs []flow.Record, prev map[rateKey]flow.Record, dt time.Duration, havePrev bool) []flowRate {
	out := make([]flowRate, 0, len(recs))
	for i := range recs {
		r := recs[i]
		fr := flowRate{rec: r, dpkts: r.Packets, dbytes: r.Octets}
		if p, ok := prev[keyOf(&r)]; ok && r.Packets >= p.Packets && r.Octets >= p.Octets {
			fr.dpkts, fr.dbytes = r.Packets-p.Packets, r.Octets-p.Octets
		}
		if havePrev && dt > 0 {
			fr.pps = float64(fr.dpkts) / dt.Seconds()
			fr.bps = float64(fr.dbytes) * 8 / dt.Seconds()
		}
		out = append(out, fr)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].bps != out[j].bps {
			return out[i].bps > out[j].bps
		}
		return out[i].rec.Octets > out[j].rec.Octets
	})
	return out
}

func humanRate(v float64, unit string) string {
	for _, p := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= p.f {
			return fmt.Sprintf("%.1f %s%s", v/p.f, p.s, unit)
		}
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func printTop(w io.Writer, tty bool, now time.Time, from string, rates []flowRate, limit int, ifName func(uint32) string) {
	if tty {
		fmt.Fprint(w, "\x1b[H\x1b[2J")
	}
	type ifTot struct{ pps, bps float64 }
	ifs := map[string]*ifTot{}
	var tot ifTot
	for _, r := range rates {
		idx := r.rec.InIf
		if r.rec.Direction == flow.Egress {
			idx = r.rec.OutIf
		}
		name := fmt.Sprintf("if %d", idx)
		if n := ifName(idx); n != "" {
			name = n
		}
		k := name + " " + r.rec.Direction.String()
		if ifs[k] == nil {
			ifs[k] = &ifTot{}
		}
		ifs[k].pps += r.pps
		ifs[k].bps += r.bps
		tot.pps += r.pps
		tot.bps += r.bps
	}
	fmt.Fprintf(w, "kflow flow top - %s - %d flows from the %s - %s, %s\n", now.Format("15:04:05"), len(rates), from,
		humanRate(tot.bps, "bit/s"), humanRate(tot.pps, "pkt/s"))
	var keys []string
	for k := range ifs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-20s %14s %14s\n", k, humanRate(ifs[k].bps, "bit/s"), humanRate(ifs[k].pps, "pkt/s"))
	}
	fmt.Fprintf(w, "\n%-5s %-46s    %-46s %14s %14s %10s  %s\n", "Proto", "Source", "Destination", "bit/s", "pkt/s", "Bytes", "Application")
	for i, r := range rates {
		if i == limit {
			break
		}
		sport, dport := querycli.Ports(&r.rec)
		fmt.Fprintf(w, "%-5s %-46s -> %-46s %14s %14s %10d  %s\n", flow.ProtoName(r.rec.Proto),
			hostPort(r.rec.Src, sport), hostPort(r.rec.Dst, dport),
			humanRate(r.bps, "bit/s"), humanRate(r.pps, "pkt/s"), r.rec.Octets, cmp.Or(r.rec.CgroupNames().AppName(r.rec.Cgroup), "-"))
	}
	if !tty {
		fmt.Fprintln(w)
	}
}

type topJSON struct {
	Time  time.Time     `json:"time"`
	Flows []topFlowJSON `json:"flows"`
}

type topFlowJSON struct {
	flow.JSON
	BitsPerSecond    float64 `json:"bits_per_second"`
	PacketsPerSecond float64 `json:"packets_per_second"`
}

func printTopJSON(e *env, now time.Time, rates []flowRate, limit int) error {
	out := topJSON{Time: now.UTC(), Flows: []topFlowJSON{}}
	for i, r := range rates {
		if i == limit {
			break
		}
		out.Flows = append(out.Flows, topFlowJSON{JSON: flow.NewJSON(&r.rec), BitsPerSecond: r.bps, PacketsPerSecond: r.pps})
	}
	return e.printJSON(out)
}

// hostPort prints ADDR:PORT ([ADDR]:PORT for IPv6) outside nfdump's
// layouts.
func hostPort(a netip.Addr, port string) string {
	if a.Is6() {
		return "[" + a.String() + "]:" + port
	}
	return a.String() + ":" + port
}
