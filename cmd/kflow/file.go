// SPDX-License-Identifier: Apache-2.0

package main

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

func fileCmd() *command {
	return &command{
		name:    "file",
		summary: "inspect flow files written by the collector",
		def:     "stat",
		sub:     []*command{fileStatCmd(), fileDumpCmd(), fileQueryCmd()},
	}
}

// fileArgs are the options shared by file commands.
type fileArgs struct {
	prefix string
	utc    bool
}

func (f *fileArgs) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.prefix, "prefix", flowfile.DefaultPrefix, "in directories, read files named with this prefix")
	fs.BoolVar(&f.utc, "utc", false, "print times in UTC instead of local time")
}

func (f *fileArgs) loc() *time.Location {
	if f.utc {
		return time.UTC
	}
	return time.Local
}

// expandFiles turns FILE|DIR arguments into flow files: a directory
// stands for every flow file under it (any layout), oldest slot first.
func (f *fileArgs) expandFiles(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: no FILE or DIR given", errUsage)
	}
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		type named struct {
			path string
			n    flowfile.Name
		}
		var found []named
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if n, ok := flowfile.ParseName(f.prefix, d.Name(), time.UTC); ok {
				found = append(found, named{p, n})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", a, err)
		}
		slices.SortFunc(found, func(x, y named) int {
			if c := x.n.Slot.Compare(y.n.Slot); c != 0 {
				return c
			}
			return cmp.Compare(x.path, y.path)
		})
		for _, n := range found {
			out = append(out, n.path)
		}
	}
	return out, nil
}

// Summaries as JSON.

type countersJSON struct {
	Flows   uint64 `json:"flows"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type exporterJSON struct {
	Addr   string `json:"addr"`
	Domain uint32 `json:"observation_domain"`
	countersJSON
	SequenceFailures uint64 `json:"sequence_failures"`
}

type summaryJSON struct {
	Blocks           uint64         `json:"blocks"`
	Total            countersJSON   `json:"total"`
	TCP              countersJSON   `json:"tcp"`
	UDP              countersJSON   `json:"udp"`
	ICMP             countersJSON   `json:"icmp"`
	Other            countersJSON   `json:"other"`
	FirstSeen        *time.Time     `json:"first_seen,omitempty"`
	LastSeen         *time.Time     `json:"last_seen,omitempty"`
	SequenceFailures uint64         `json:"sequence_failures"`
	Exporters        []exporterJSON `json:"exporters"`
}

type fileStatJSON struct {
	Path    string      `json:"path"`
	Ident   string      `json:"ident"`
	Created time.Time   `json:"created"`
	End     string      `json:"end"` // clean, truncated
	Corrupt int         `json:"corrupt_blocks"`
	Summary summaryJSON `json:"summary"`
}

func cj(c flowfile.Counters) countersJSON { return countersJSON{c.Flows, c.Packets, c.Octets} }

func toSummaryJSON(s flowfile.Summary) summaryJSON {
	out := summaryJSON{Blocks: s.Blocks, Total: cj(s.Total), TCP: cj(s.TCP), UDP: cj(s.UDP), ICMP: cj(s.ICMP),
		Other: cj(s.Other), SequenceFailures: s.SequenceFailures, Exporters: []exporterJSON{}}
	if !s.FirstSeen.IsZero() {
		t := s.FirstSeen.UTC()
		out.FirstSeen = &t
	}
	if !s.LastSeen.IsZero() {
		t := s.LastSeen.UTC()
		out.LastSeen = &t
	}
	for _, e := range s.Exporters {
		a := "local"
		if e.Addr.IsValid() {
			a = e.Addr.String()
		}
		out.Exporters = append(out.Exporters, exporterJSON{a, e.ObservationDomain, cj(e.Counters), e.SequenceFailures})
	}
	return out
}

// summarize accumulates records into a Summary, for files without one.
type summarize struct {
	s   flowfile.Summary
	exp map[[2]any]*flowfile.ExporterStats
}

func addCounters(c *flowfile.Counters, r *flow.Record) {
	c.Flows++
	c.Packets += r.Packets
	c.Octets += r.Octets
}

func (z *summarize) add(r *flow.Record) {
	s := &z.s
	addCounters(&s.Total, r)
	switch r.Proto {
	case flow.ProtoTCP:
		addCounters(&s.TCP, r)
	case flow.ProtoUDP:
		addCounters(&s.UDP, r)
	case flow.ProtoICMP, flow.ProtoICMPv6:
		addCounters(&s.ICMP, r)
	default:
		addCounters(&s.Other, r)
	}
	if !r.Start.IsZero() && (s.FirstSeen.IsZero() || r.Start.Before(s.FirstSeen)) {
		s.FirstSeen = r.Start
	}
	if !r.End.IsZero() && (s.LastSeen.IsZero() || r.End.After(s.LastSeen)) {
		s.LastSeen = r.End
	}
	k := [2]any{r.Exporter, r.ObservationDomain}
	e := z.exp[k]
	if e == nil {
		e = &flowfile.ExporterStats{Addr: r.Exporter, ObservationDomain: r.ObservationDomain}
		z.exp[k] = e
	}
	addCounters(&e.Counters, r)
}

// merge adds a file's summary to z.
func (z *summarize) merge(o flowfile.Summary) {
	s := &z.s
	s.Blocks += o.Blocks
	for _, p := range [][2]*flowfile.Counters{{&s.Total, &o.Total}, {&s.TCP, &o.TCP}, {&s.UDP, &o.UDP}, {&s.ICMP, &o.ICMP}, {&s.Other, &o.Other}} {
		p[0].Flows += p[1].Flows
		p[0].Packets += p[1].Packets
		p[0].Octets += p[1].Octets
	}
	if !o.FirstSeen.IsZero() && (s.FirstSeen.IsZero() || o.FirstSeen.Before(s.FirstSeen)) {
		s.FirstSeen = o.FirstSeen
	}
	if !o.LastSeen.IsZero() && (s.LastSeen.IsZero() || o.LastSeen.After(s.LastSeen)) {
		s.LastSeen = o.LastSeen
	}
	s.SequenceFailures += o.SequenceFailures
	for _, x := range o.Exporters {
		k := [2]any{x.Addr, x.ObservationDomain}
		e := z.exp[k]
		if e == nil {
			e = &flowfile.ExporterStats{Addr: x.Addr, ObservationDomain: x.ObservationDomain}
			z.exp[k] = e
		}
		e.Flows += x.Flows
		e.Packets += x.Packets
		e.Octets += x.Octets
		e.SequenceFailures += x.SequenceFailures
	}
}

func (z *summarize) summary() flowfile.Summary {
	s := z.s
	s.Exporters = nil
	for _, e := range z.exp {
		s.Exporters = append(s.Exporters, *e)
	}
	slices.SortFunc(s.Exporters, func(a, b flowfile.ExporterStats) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.ObservationDomain, b.ObservationDomain)
	})
	return s
}

func newSummarize() *summarize { return &summarize{exp: map[[2]any]*flowfile.ExporterStats{}} }

// statFile returns a file's summary: the stored one of a clean file, else
// one computed from its readable records.
func statFile(path string) (fileStatJSON, flowfile.Summary, error) {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{SkipCorrupt: true})
	if err != nil {
		return fileStatJSON{}, flowfile.Summary{}, err
	}
	defer r.Close()
	h := r.Header()
	out := fileStatJSON{Path: path, Ident: h.Ident, Created: h.Created.UTC()}
	sum, ok := r.Summary()
	if !ok {
		z := newSummarize()
		for r.Next() {
			z.add(r.Record())
		}
		if err := r.Err(); err != nil {
			return out, flowfile.Summary{}, fmt.Errorf("%s: %w", path, err)
		}
		sum = z.summary()
		sum.Blocks = uint64(r.End().Blocks - r.End().Corrupt)
	}
	out.End = "clean"
	if !ok {
		out.End = "truncated"
	}
	out.Corrupt = len(r.Corrupt())
	out.Summary = toSummaryJSON(sum)
	return out, sum, nil
}

func fileStatCmd() *command {
	f := &fileArgs{}
	return &command{
		name:    "stat",
		aliases: []string{"show"},
		summary: "print what flow files hold: flows, packets and bytes per protocol, first and last seen, exporters (like nfdump -I)",
		usage:   "FILE|DIR...",
		flags:   f.register,
		run: func(e *env, args []string) error {
			paths, err := f.expandFiles(args)
			if err != nil {
				return err
			}
			total := newSummarize()
			var files []fileStatJSON
			truncated := 0
			for _, p := range paths {
				fj, sum, err := statFile(p)
				if err != nil {
					return err
				}
				if fj.End != "clean" {
					truncated++
				}
				files = append(files, fj)
				total.merge(sum)
			}
			ts := total.summary()
			if e.json {
				return e.printJSON(struct {
					Files []fileStatJSON `json:"files"`
					Total summaryJSON    `json:"total"`
				}{files, toSummaryJSON(ts)})
			}
			printStat(e.stdout, files, ts, truncated, f.loc())
			return nil
		},
	}
}

func printStat(w io.Writer, files []fileStatJSON, s flowfile.Summary, truncated int, loc *time.Location) {
	if len(files) == 1 {
		fmt.Fprintf(w, "File       : %s\n", files[0].Path)
		fmt.Fprintf(w, "Ident      : %s\n", files[0].Ident)
		fmt.Fprintf(w, "Created    : %s\n", files[0].Created.In(loc).Format("2006-01-02 15:04:05"))
		fmt.Fprintf(w, "End        : %s\n", files[0].End)
	} else {
		fmt.Fprintf(w, "Files      : %d\n", len(files))
		if truncated > 0 {
			fmt.Fprintf(w, "Truncated  : %d (counted from their readable blocks)\n", truncated)
		}
	}
	fmt.Fprintf(w, "Blocks     : %d\n", s.Blocks)
	for _, row := range []struct {
		name string
		get  func(flowfile.Counters) uint64
	}{
		{"Flows", func(c flowfile.Counters) uint64 { return c.Flows }},
		{"Packets", func(c flowfile.Counters) uint64 { return c.Packets }},
		{"Bytes", func(c flowfile.Counters) uint64 { return c.Octets }},
	} {
		fmt.Fprintf(w, "%-11s: %d\n", row.name, row.get(s.Total))
		for _, p := range []struct {
			n string
			c flowfile.Counters
		}{{"tcp", s.TCP}, {"udp", s.UDP}, {"icmp", s.ICMP}, {"other", s.Other}} {
			fmt.Fprintf(w, "%-11s: %d\n", row.name+"_"+p.n, row.get(p.c))
		}
	}
	fmt.Fprintf(w, "First      : %s\n", fmtTime(s.FirstSeen, loc))
	fmt.Fprintf(w, "Last       : %s\n", fmtTime(s.LastSeen, loc))
	fmt.Fprintf(w, "Sequence failures: %d\n", s.SequenceFailures)
	fmt.Fprintf(w, "Exporters  : %d\n", len(s.Exporters))
	for _, x := range s.Exporters {
		a := "local"
		if x.Addr.IsValid() {
			a = x.Addr.String()
		}
		fmt.Fprintf(w, "  %-39s domain %-10d flows %d packets %d bytes %d sequence failures %d\n",
			a, x.ObservationDomain, x.Flows, x.Packets, x.Octets, x.SequenceFailures)
	}
}

func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04:05.000")
}

// Records, one per line.

type recordJSON struct {
	First     *time.Time `json:"first,omitempty"`
	Last      *time.Time `json:"last,omitempty"`
	Proto     uint8      `json:"proto"`
	Src       string     `json:"src"`
	Dst       string     `json:"dst"`
	SrcPort   uint16     `json:"src_port"`
	DstPort   uint16     `json:"dst_port"`
	ICMPType  uint8      `json:"icmp_type,omitempty"`
	ICMPCode  uint8      `json:"icmp_code,omitempty"`
	Packets   uint64     `json:"packets"`
	Bytes     uint64     `json:"bytes"`
	TCPFlags  uint16     `json:"tcp_flags,omitempty"`
	TOS       uint8      `json:"tos,omitempty"`
	InIf      uint32     `json:"in_if,omitempty"`
	OutIf     uint32     `json:"out_if,omitempty"`
	Direction string     `json:"direction"`
	EndReason string     `json:"end_reason,omitempty"`
	VLAN      uint16     `json:"vlan,omitempty"`
	NextHop   string     `json:"next_hop,omitempty"`
	SrcAS     uint32     `json:"src_as,omitempty"`
	DstAS     uint32     `json:"dst_as,omitempty"`
	Sampling  uint32     `json:"sampling_interval,omitempty"`
	Exporter  string     `json:"exporter,omitempty"`
	Domain    uint32     `json:"observation_domain"`
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func toRecordJSON(r *flow.Record) recordJSON {
	j := recordJSON{Proto: r.Proto, Src: addrString(r.Src), Dst: addrString(r.Dst), SrcPort: r.SrcPort, DstPort: r.DstPort,
		ICMPType: r.ICMPType, ICMPCode: r.ICMPCode, Packets: r.Packets, Bytes: r.Octets, TCPFlags: r.TCPFlags, TOS: r.TOS,
		InIf: r.InIf, OutIf: r.OutIf, Direction: r.Direction.String(), VLAN: r.VLAN, NextHop: addrString(r.NextHop),
		SrcAS: r.SrcAS, DstAS: r.DstAS, Sampling: r.SamplingInterval, Exporter: addrString(r.Exporter), Domain: r.ObservationDomain}
	if r.EndReason != flow.EndUnknown {
		j.EndReason = r.EndReason.String()
	}
	if !r.Start.IsZero() {
		t := r.Start.UTC()
		j.First = &t
	}
	if !r.End.IsZero() {
		t := r.End.UTC()
		j.Last = &t
	}
	return j
}

func protoName(p uint8) string {
	switch p {
	case flow.ProtoTCP:
		return "TCP"
	case flow.ProtoUDP:
		return "UDP"
	case flow.ProtoICMP:
		return "ICMP"
	case flow.ProtoICMPv6:
		return "ICMP6"
	case flow.ProtoSCTP:
		return "SCTP"
	}
	return fmt.Sprint(p)
}

// endpoint formats addr:port as nfdump does (ICMP: type.code as the
// destination port).
func endpoint(a netip.Addr, port string) string {
	s := addrString(a)
	if a.Is6() {
		s = "[" + s + "]"
	}
	return s + ":" + port
}

func tcpFlags(f uint16) string {
	b := []byte("........")
	for i, c := range "CEUAPRSF" {
		if f&(0x80>>i) != 0 {
			b[i] = byte(c)
		}
	}
	return string(b)
}

func formatRecord(r *flow.Record, loc *time.Location) string {
	dur := 0.0
	if !r.Start.IsZero() && !r.End.IsZero() {
		dur = r.End.Sub(r.Start).Seconds()
	}
	dport := fmt.Sprint(r.DstPort)
	if r.IsICMP() {
		dport = fmt.Sprintf("%d.%d", r.ICMPType, r.ICMPCode)
	}
	flags := ""
	if r.Proto == flow.ProtoTCP {
		flags = tcpFlags(r.TCPFlags)
	}
	return fmt.Sprintf("%-23s %9.3f %-5s %30s -> %-30s %-8s %10d %12d %5d",
		fmtTime(r.Start, loc), dur, protoName(r.Proto), endpoint(r.Src, fmt.Sprint(r.SrcPort)), endpoint(r.Dst, dport),
		flags, r.Packets, r.Octets, 1)
}

func fileDumpCmd() *command {
	f := &fileArgs{}
	var limit int
	return &command{
		name:    "dump",
		summary: "print the flow records of flow files, one per line (JSON lines with -j)",
		usage:   "FILE|DIR...",
		flags: func(fs *pflag.FlagSet) {
			f.register(fs)
			fs.IntVarP(&limit, "count", "c", 0, "stop after `N` records (0: all)")
		},
		run: func(e *env, args []string) error {
			paths, err := f.expandFiles(args)
			if err != nil {
				return err
			}
			loc := f.loc()
			if !e.json {
				fmt.Fprintf(e.stdout, "%-23s %9s %-5s %30s    %-30s %-8s %10s %12s %5s\n",
					"Date first seen", "Duration", "Proto", "Src IP Addr:Port", "Dst IP Addr:Port", "Flags", "Packets", "Bytes", "Flows")
			}
			var n, packets, octets uint64
			var skipped []string
			for _, p := range paths {
				r, err := flowfile.Open(p, flowfile.ReaderOptions{SkipCorrupt: true})
				if err != nil {
					return err
				}
				for r.Next() && (limit == 0 || n < uint64(limit)) {
					rec := r.Record()
					n++
					packets += rec.Packets
					octets += rec.Octets
					if e.json {
						if err := e.printJSON(toRecordJSON(rec)); err != nil {
							r.Close()
							return err
						}
						continue
					}
					fmt.Fprintln(e.stdout, formatRecord(rec, loc))
				}
				err = r.Err()
				if c := len(r.Corrupt()); c > 0 {
					skipped = append(skipped, fmt.Sprintf("%s: %d corrupt blocks skipped", p, c))
				}
				r.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			for _, s := range skipped {
				e.log.Warn(s)
			}
			if !e.json {
				fmt.Fprintf(e.stdout, "Summary: total flows: %d, total bytes: %d, total packets: %d, files: %d\n", n, octets, packets, len(paths))
			}
			return nil
		},
	}
}
