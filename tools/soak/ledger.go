// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// Window is one stretch of traffic with at most one fault, ended by a
// quiet moment in which every counter is read.
type Window struct {
	Index      int
	Fault      *Fault
	Start, End time.Duration
	Truth      testenv.Truth
	Calls      int
	Before     *Snapshot
	After      *Snapshot
}

// Snapshot is every daemon's counters at a quiet moment: no traffic, the
// exporter's cache empty, the collectors flushed.
type Snapshot struct {
	At       time.Duration
	Wall     time.Time
	Exporter Metrics
	// ExporterIncarnation tells counters of different processes apart
	// (the per-collector counters start at zero in a new exporter).
	ExporterIncarnation int
	UDP, TCP            Metrics
	// UDPIncarnation and TCPIncarnation tell the collectors' processes
	// apart (their counters start at zero in a new process).
	UDPIncarnation, TCPIncarnation int
	Procs                          map[string]ProcSample
	LoadAvg                        string
	// NfcapdDrops are the datagrams the kernel dropped at nfcapd's
	// socket so far (its receive buffer full): /proc/net/udp's drops.
	NfcapdDrops uint64
}

// snapshot waits for a quiet moment after window w and reads every
// counter. The waits are hang guards: the run fails if one runs out.
func (r *Run) snapshot(w int) (*Snapshot, error) {
	e := r.env
	pc, cc := httpIn(e.P), httpIn(e.C)
	var em Metrics
	quiet := testenv.WaitFor(60*time.Second, func() bool {
		m, err := scrape(pc, exporterMetric)
		if err != nil {
			return false
		}
		em = m
		return m.Sum("kflow_exporter_active_flows") == 0 && m.Sum("kflow_exporter_map_entries") == 0
	})
	if !quiet {
		return nil, fmt.Errorf("the exporter's cache did not empty within 60s after the traffic stopped")
	}
	// Two more drains (the unkeyed counters), then the collectors' flush.
	time.Sleep(time.Second)
	s := &Snapshot{At: time.Since(r.start), Wall: time.Now(), ExporterIncarnation: e.exporter.incarnation, Procs: map[string]ProcSample{},
		UDPIncarnation: e.udpCol.incarnation, TCPIncarnation: e.tcpCol.incarnation}
	var err error
	if s.Exporter, err = scrape(pc, exporterMetric); err != nil {
		s.Exporter = em
	}
	if s.UDP, err = scrape(cc, udpMetric); err != nil {
		return nil, fmt.Errorf("collector-udp metrics: %w", err)
	}
	if s.TCP, err = scrape(cc, tcpMetric); err != nil {
		return nil, fmt.Errorf("collector-tcp metrics: %w", err)
	}
	for _, d := range []*Daemon{e.exporter, e.udpCol, e.tcpCol, e.nfcapd} {
		if ps, err := sampleProc(d.proc.PID()); err == nil {
			s.Procs[d.Name] = ps
		}
	}
	if s.NfcapdDrops, err = testenv.Drops(e.C, nfcapdPort); err != nil {
		return nil, fmt.Errorf("nfcapd's socket drops: %w", err)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		s.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	r.logf(w, "quiet: counters read (load %s)", s.LoadAvg)
	return s, nil
}

// Row is the ledger of one witness in one window (or in total).
type Row struct {
	Sent, Recorded, Ignored uint64
	// Lost are packets lost by a counted cause: counter name to packets.
	Lost map[string]uint64
	// Unaccounted is Sent - Recorded - Ignored - lost; it must be 0.
	Unaccounted int64
	Flows       int // flows sent
	ExactFlows  int // flows recorded with exactly their packets and octets
	// Examples are a few flows not recorded exactly, for the log.
	Examples []string
	// Datagrams are the datagrams the witness's socket dropped.
	Datagrams uint64
}

func (row *Row) add(o Row) {
	row.Sent += o.Sent
	row.Recorded += o.Recorded
	row.Ignored += o.Ignored
	row.Unaccounted += o.Unaccounted
	row.Flows += o.Flows
	row.ExactFlows += o.ExactFlows
	row.Datagrams += o.Datagrams
	if row.Lost == nil {
		row.Lost = map[string]uint64{}
	}
	for k, v := range o.Lost {
		row.Lost[k] += v
	}
}

// Ledger is the run's account of every packet.
type Ledger struct {
	Witnesses []*Witness
	// Rows[w][i] is witness i in window w; Total[i] sums them.
	Rows  [][]Row
	Total []Row
	// Other are records of traffic the harness did not send (IPv6
	// neighbour discovery, multicast listener reports), per witness.
	Other    []uint64
	Problems []string
	// NfcapdSeqFailures is what nfcapd says it missed: the sequence
	// failures in its files (nfdump -I), export packets that never
	// reached it. -1 when nfdump could not say.
	NfcapdSeqFailures int64
}

// OK reports whether every packet is accounted and nothing else failed.
func (l *Ledger) OK() bool { return len(l.Problems) == 0 }

// delta is after-before for a counter of the exporter, whose
// per-collector counters restart at zero in each new process: across a
// restart the new process's count is the window's (the fault windows that
// restart the exporter lose nothing these counters count).
func delta(before, after *Snapshot, get func(Metrics) uint64) uint64 {
	a := get(after.Exporter)
	if after.ExporterIncarnation != before.ExporterIncarnation {
		return a
	}
	return a - get(before.Exporter)
}

func (r *Run) ledger() (*Ledger, error) {
	e := r.env
	l := &Ledger{Witnesses: []*Witness{
		{Name: "kflow collector, IPFIX/UDP", Target: "ipfix://", collector: udpSide},
		{Name: "kflow collector, IPFIX/TCP", Target: "ipfix+tcp://", collector: tcpSide},
		{Name: "nfcapd, NetFlow v9/UDP", Target: "nfv9://", NoDirection: true, socketDrops: true},
	}}
	var err error
	if l.Witnesses[0].Records, l.Witnesses[0].Files, l.Witnesses[0].Entries, err = readKflowDir(filepath.Join(e.dir, "udp")); err != nil {
		return nil, err
	}
	if l.Witnesses[1].Records, l.Witnesses[1].Files, l.Witnesses[1].Entries, err = readKflowDir(e.tmpfs); err != nil {
		return nil, err
	}
	if l.Witnesses[2].Records, l.Witnesses[2].Files, err = readNfcapdDir(filepath.Join(e.dir, "nfcapd")); err != nil {
		return nil, err
	}
	l.NfcapdSeqFailures = nfcapdSeqFailures(filepath.Join(e.dir, "nfcapd"))
	if e.ch != nil {
		// The collector shipped everything before it exited (the
		// shipper's Finish); the server is up again after any kill.
		w := &Witness{Name: "ClickHouse, shipped by the UDP collector", Target: "ipfix://", collector: udpSide}
		if w.Records, w.Entries, err = readClickHouse(e.ch); err != nil {
			return nil, err
		}
		if n, ex := sameRecords(w.Records, l.Witnesses[0].Records); n > 0 {
			l.Problems = append(l.Problems, fmt.Sprintf("%s: %d flows differ from the UDP collector's files they were shipped from; for example %s", w.Name, n, ex))
		}
		l.Witnesses = append(l.Witnesses, w)
	}
	for _, w := range l.Witnesses {
		for _, f := range w.Files {
			if f.Err != "" || f.Corrupt > 0 {
				l.Problems = append(l.Problems, fmt.Sprintf("%s: file %s: %d corrupt blocks, %s", w.Name, f.Path, f.Corrupt, f.Err))
			}
		}
	}
	// Which window sent each flow.
	owner := map[testenv.FlowKey]int{}
	for _, win := range r.windows {
		for k := range win.Truth {
			owner[k] = win.Index
			owner[noDir(k)] = win.Index
		}
	}
	l.Rows = make([][]Row, len(r.windows))
	l.Total = make([]Row, len(l.Witnesses))
	l.Other = make([]uint64, len(l.Witnesses))
	for wi, w := range l.Witnesses {
		recorded := make([]uint64, len(r.windows))
		fileRecs, filePkts := w.perWindow(r.windows, owner)
		got := testenv.Truth{}
		for k, c := range w.Records {
			win, ok := owner[k]
			if !ok {
				l.Other[wi] += c.Packets
				continue
			}
			recorded[win] += c.Packets
			got[k] = addCounts(got[k], c)
		}
		for _, win := range r.windows {
			if len(l.Rows[win.Index]) == 0 {
				l.Rows[win.Index] = make([]Row, len(l.Witnesses))
			}
			row := Row{Sent: totalPackets(win.Truth), Recorded: recorded[win.Index], Flows: len(win.Truth), Lost: map[string]uint64{}}
			for k, c := range win.Truth {
				key := k
				if w.NoDirection {
					key = noDir(k)
				}
				if g := got[key]; g.Packets == c.Packets && g.Octets == c.Octets {
					row.ExactFlows++
				} else if len(row.Examples) < 3 {
					row.Examples = append(row.Examples, fmt.Sprintf("%v: sent %d packets %d octets, recorded %d packets %d octets", k, c.Packets, c.Octets, g.Packets, g.Octets))
				}
			}
			row.Ignored = win.After.Exporter.Sum("kflow_exporter_ignored_packets_total") - win.Before.Exporter.Sum("kflow_exporter_ignored_packets_total")
			target := `collector="` + w.Target
			if n := delta(win.Before, win.After, func(m Metrics) uint64 {
				return m.Sum("kflow_exporter_collector_packets_lost_total", target)
			}); n > 0 {
				row.Lost["kflow_exporter_collector_packets_lost_total"] = n
			}
			// What a killed exporter drained but never sent, from the
			// pinned ledger: counted since the maps were created, across
			// exporters.
			if n := win.After.Exporter.Sum(unexportedMetric, target) - win.Before.Exporter.Sum(unexportedMetric, target); n > 0 {
				row.Lost[unexportedMetric] = n
			}
			// What the collector could not store: refused while its disk
			// was full, or lost when a file could not be finished.
			if w.collector != nil {
				for _, name := range []string{"kflow_collector_store_error_packets_total", "kflow_collector_file_packets_lost_total"} {
					if n := collectorDelta(win.Before, win.After, w.collector, name); n > 0 {
						row.Lost[name] = n
					}
				}
			}
			if w.collector != nil {
				name, n, note := collectorLoss(win, w, target, fileRecs[win.Index], filePkts[win.Index])
				if n > 0 {
					row.Lost[name] = n
				}
				if note != "" {
					l.Problems = append(l.Problems, fmt.Sprintf("%s: window %d: %s", w.Name, win.Index, note))
				}
			}
			var lost uint64
			for _, v := range row.Lost {
				lost += v
			}
			row.Unaccounted = int64(row.Sent) - int64(row.Recorded) - int64(row.Ignored) - int64(lost)
			// nfcapd counts no records it missed; the kernel counts the
			// datagrams its socket dropped. A shortfall in a window
			// where that count rose is booked to it (by cause: the
			// counter is in datagrams, not packets).
			if d := win.After.NfcapdDrops - win.Before.NfcapdDrops; w.socketDrops && d > 0 {
				row.Datagrams = d
				if row.Unaccounted > 0 {
					row.Lost[socketDropsCause] = uint64(row.Unaccounted)
					row.Unaccounted = 0
				}
			}
			l.Rows[win.Index][wi] = row
			l.Total[wi].add(row)
		}
		if l.Total[wi].Unaccounted != 0 {
			l.Problems = append(l.Problems, fmt.Sprintf("%s: %d packets unaccounted", w.Name, l.Total[wi].Unaccounted))
		}
		for _, win := range r.windows {
			if row := l.Rows[win.Index][wi]; row.Unaccounted != 0 {
				l.Problems = append(l.Problems, fmt.Sprintf("%s: window %d (%s): %d packets unaccounted; for example %s",
					w.Name, win.Index, faultName(win.Fault), row.Unaccounted, strings.Join(row.Examples, "; ")))
			}
		}
	}
	l.Problems = append(l.Problems, r.growth()...)
	return l, nil
}

// perWindow counts the witness's records and their packets per window:
// the window's own flows, and other traffic by its start time.
func (w *Witness) perWindow(windows []*Window, owner map[testenv.FlowKey]int) (recs, pkts []uint64) {
	recs, pkts = make([]uint64, len(windows)), make([]uint64, len(windows))
	for _, e := range w.Entries {
		win, ok := owner[e.Key]
		if !ok {
			win = -1
			for _, x := range windows {
				if !e.Start.Before(x.Before.Wall) && e.Start.Before(x.After.Wall) {
					win = x.Index
				}
			}
			if win < 0 {
				continue
			}
		}
		recs[win]++
		pkts[win] += e.Packets
	}
	return recs, pkts
}

// collectorLoss books what the exporter sent a kflow collector but its
// files lack, when the collector's own sequence counters account for it
// record by record: the records the exporter sent in the window (its
// collector_records_sent_total) less those in the files must equal the
// records the collector says its exporter's sequence numbers skipped,
// within a run (sequence_lost_total) or across a restart
// (restart_lost_total). Then the packets those records held are the
// exporter's packets sent less the files' packets. Otherwise nothing is
// booked, and the difference stays unaccounted.
func collectorLoss(win *Window, w *Witness, target string, fileRecs, filePkts uint64) (name string, packets uint64, note string) {
	restart := collectorDelta(win.Before, win.After, w.collector, "kflow_collector_restart_lost_total")
	seq := collectorDelta(win.Before, win.After, w.collector, "kflow_collector_sequence_lost_total")
	counted := restart + seq
	sentRecs := delta(win.Before, win.After, func(m Metrics) uint64 { return m.Sum("kflow_exporter_collector_records_sent_total", target) })
	sentPkts := delta(win.Before, win.After, func(m Metrics) uint64 { return m.Sum("kflow_exporter_collector_packets_sent_total", target) })
	if counted == 0 {
		return "", 0, ""
	}
	// The sequence numbers also skip the records of messages the exporter
	// could not send (refused, counted lost by the exporter itself).
	refused := delta(win.Before, win.After, func(m Metrics) uint64 { return m.Sum("kflow_exporter_collector_records_lost_total", target) })
	if refused > counted {
		refused = counted
	}
	counted -= refused
	if sentRecs < fileRecs || sentRecs-fileRecs != counted || sentPkts < filePkts {
		return "", 0, fmt.Sprintf("the collector counts %d records lost (restart %d, sequence %d, less %d the exporter could not send), but the exporter sent %d records and the files hold %d: not booked",
			counted, restart, seq, refused, sentRecs, fileRecs)
	}
	switch {
	case seq == 0:
		name = "kflow_collector_restart_lost_total"
	case restart == 0:
		name = "kflow_collector_sequence_lost_total"
	default:
		name = "kflow_collector_restart_lost_total + sequence_lost_total"
	}
	return name, sentPkts - filePkts, ""
}

// collectorSide picks one collector's metrics and process from a snapshot.
type collectorSide func(s *Snapshot) (Metrics, int)

func udpSide(s *Snapshot) (Metrics, int) { return s.UDP, s.UDPIncarnation }
func tcpSide(s *Snapshot) (Metrics, int) { return s.TCP, s.TCPIncarnation }

// collectorDelta is after-before for a collector's counter; across a
// restart of the collector the new process's count is the window's (what
// the old process counted after the previous snapshot is not seen: it
// would show as unaccounted).
func collectorDelta(before, after *Snapshot, side collectorSide, name string) uint64 {
	b, bi := side(before)
	a, ai := side(after)
	if ai != bi {
		return a.Sum(name)
	}
	return a.Sum(name) - b.Sum(name)
}

// lossCauses are the documented causes the ledger books, for its prose.
var lossCauses = [][3]string{
	{"kflow_exporter_ignored_packets_total", "packets the datapath counted in no flow: flow map and ring buffer both full (exported as IPFIX IE 164)", "the burst past the map's and the ring buffer's room"},
	{"kflow_exporter_collector_packets_lost_total", "packets in records the exporter could not hand to a collector: messages refused (UDP port unreachable), collector unreachable (TCP), batches dropped for a slow collector, messages a TCP collector never acknowledged before the connection ended (TCP_INFO)", "the time the collector is away"},
	{unexportedMetric, "packets a killed exporter had drained from the kernel but not sent (its flow cache and queues), read by its successor from the pinned ledger", "each flow's packets since its last record (--active-timeout, --idle-timeout) and the queued batches"},
	{"kflow_collector_restart_lost_total", "packets of the records a killed UDP collector missed: sent while it was down, in its socket buffer, or received and not flushed; the collector counts the records from its exporters' sequence numbers and its --state-file, the ledger books their packets only when those records equal the exporter's records sent less the files' records exactly", "the time the collector is down, plus one --flush-interval"},
	{"kflow_collector_store_error_packets_total", "packets in records the collector refused while its disk was full, past the records it keeps in memory (4 blocks)", "the time the disk is full"},
	{"kflow_collector_file_packets_lost_total", "packets in records a file could not take when it was finished", "the records held when the disk filled"},
	{socketDropsCause, "packets of the NetFlow v9 datagrams the kernel dropped at nfcapd's socket, its receive buffer full (nfcapd reads one datagram at a time, and the harness forces its buffer past rmem_max); booked only in a window where the drops counter rose, as the window's whole shortfall: the counter counts datagrams, not packets", "the datagrams dropped"},
}

// socketDropsCause books an outside witness's shortfall to the datagrams
// its socket dropped.
const socketDropsCause = "nfcapd's socket drops (/proc/net/udp)"

// unexportedMetric counts the packets a killed exporter had drained but
// not sent to a collector (its flow cache and queues).
const unexportedMetric = "kflow_exporter_collector_packets_unexported_total"

func faultName(f *Fault) string {
	if f == nil {
		return "none"
	}
	return f.Name
}

// growth checks the daemons' memory and descriptors at the quiet moments
// of each process's life: after its first windows they must not grow
// (descriptors: not at all, beyond a few sockets; memory: not past twice
// the first figure plus 64 MiB, which a leak of one window's flows would
// cross over the run).
func (r *Run) growth() []string {
	var problems []string
	for _, name := range []string{"exporter", "collector-udp", "collector-tcp", "nfcapd"} {
		var first *ProcSample
		var firstPID int
		for _, win := range r.windows {
			s, ok := win.After.Procs[name]
			if !ok {
				continue
			}
			pid := r.pidAt(name, win)
			if first == nil || pid != firstPID {
				first, firstPID = &s, pid
				continue
			}
			if s.FDs > first.FDs+8 {
				problems = append(problems, fmt.Sprintf("%s: %d descriptors after window %d, %d after its first window", name, s.FDs, win.Index, first.FDs))
			}
			if s.RSS > 2*first.RSS+64<<20 {
				problems = append(problems, fmt.Sprintf("%s: %d MiB resident after window %d, %d MiB after its first window", name, s.RSS>>20, win.Index, first.RSS>>20))
			}
		}
	}
	return problems
}

// pidAt identifies the process that was sampled after a window: the
// incarnation for the exporter and collectors changes with restarts.
func (r *Run) pidAt(name string, win *Window) int {
	switch name {
	case "exporter":
		return win.After.ExporterIncarnation
	}
	// Collectors restart in collector-kill (UDP) and
	// collector-unreachable (TCP) windows.
	restarts := map[string]string{"collector-udp": "collector-kill", "collector-tcp": "collector-unreachable"}
	n := 0
	for _, w := range r.windows[:win.Index+1] {
		if w.Fault != nil && w.Fault.Name == restarts[name] {
			n++
		}
	}
	return n
}

// markdown renders the ledger for docs/soak.md.
func (l *Ledger) markdown(r *Run) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	version, _ := exec.Command(r.opts.Kflow, "version").Output()
	host, _ := os.Hostname()
	_ = host
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	p("# Soak ledger\n\n")
	p("Generated by `tools/soak` (`make soak`); the prose around the tables is in the tool.\n\n")
	p("| | |\n| --- | --- |\n")
	p("| command | `go run ./tools/soak %s` |\n", strings.Join(r.opts.Args, " "))
	p("| seed | %d |\n", r.opts.Seed)
	p("| duration | %v of traffic in %d windows, %v in all |\n", r.opts.Duration, len(r.windows), time.Since(r.start).Round(time.Second))
	p("| machine | %d CPUs, Linux %s, %s |\n", runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.GOARCH)
	p("| kflow | %s |\n", strings.TrimSpace(string(version)))
	p("| load average during the run (1 min, at each quiet moment) | %s |\n", loadRange(r))
	p("| result | %s |\n\n", map[bool]string{true: "**every packet accounted**", false: "**FAILED**"}[l.OK()])
	if !l.OK() {
		p("Problems:\n\n")
		for _, s := range l.Problems {
			p("- %s\n", s)
		}
		p("\n")
	}
	p("## Total\n\n")
	p("| witness | packets sent | in flow records | in the ignored counters | lost, counted | unaccounted | flows exact / sent | other traffic recorded |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for i, w := range l.Witnesses {
		t := l.Total[i]
		p("| %s | %d | %d | %d | %s | %d | %d / %d | %d |\n", w.Name, t.Sent, t.Recorded, t.Ignored, lostText(t.Lost), t.Unaccounted, t.ExactFlows, t.Flows, l.Other[i])
	}
	if l.NfcapdSeqFailures >= 0 {
		restarts := 0
		for _, win := range r.windows {
			if n := faultName(win.Fault); n == "exporter-kill" || n == "exporter-upgrade" {
				restarts++
			}
		}
		p("\nnfcapd's own count of sequence failures in its files (`nfdump -I`): %d. Each of the run's %d exporter restarts is expected to "+
			"make one (a new exporter numbers its NetFlow v9 packets from the start again); more would be export packets "+
			"nfcapd missed, which the ledger cannot turn into flow packets.\n", l.NfcapdSeqFailures, restarts)
	}
	for i, w := range l.Witnesses {
		if !w.socketDrops {
			continue
		}
		var wins []string
		for _, win := range r.windows {
			if d := l.Rows[win.Index][i].Datagrams; d > 0 {
				wins = append(wins, fmt.Sprintf("%d (%d)", win.Index, d))
			}
		}
		p("\nnfcapd's socket had a receive buffer of %d bytes (set by the harness with SO_RCVBUFFORCE); the kernel dropped %d datagrams at it "+
			"(/proc/net/udp)", r.env.nfcapdRcvbuf, l.Total[i].Datagrams)
		if len(wins) > 0 {
			p(", in windows %s", strings.Join(wins, ", "))
		}
		p(".\n")
	}
	p("\n## Per window\n\n")
	p("| window | fault | time | witness | sent | recorded | ignored | lost, counted | unaccounted |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, win := range r.windows {
		for i, w := range l.Witnesses {
			row := l.Rows[win.Index][i]
			p("| %d | %s | %.0f–%.0f s | %s | %d | %d | %d | %s | %d |\n", win.Index, faultName(win.Fault),
				win.Start.Seconds(), win.End.Seconds(), w.Name, row.Sent, row.Recorded, row.Ignored, lostText(row.Lost), row.Unaccounted)
		}
	}
	p("\n## Causes of loss, and the counter that shows each\n\n| counter | what it counts | bounded by |\n| --- | --- | --- |\n")
	for _, c := range lossCauses {
		p("| `%s` | %s | %s |\n", c[0], c[1], c[2])
	}
	p("\n## Faults\n\n| fault | what the harness does |\n| --- | --- |\n")
	for _, f := range faults {
		p("| %s | %s |\n", f.Name, f.What)
	}
	p("\n## Log\n\n```\n")
	for _, ev := range r.events {
		p("%8.2fs  w%-2d %s\n", ev.At.Seconds(), ev.Window, ev.Text)
	}
	p("```\n\n## Daemons at each quiet moment\n\n| window | ")
	names := []string{"exporter", "collector-udp", "collector-tcp", "nfcapd"}
	for _, n := range names {
		p("%s RSS MiB / fds | ", n)
	}
	p("\n| --- |%s\n", strings.Repeat(" --- |", len(names)))
	for _, win := range r.windows {
		p("| %d | ", win.Index)
		for _, n := range names {
			s := win.After.Procs[n]
			p("%.1f / %d | ", float64(s.RSS)/(1<<20), s.FDs)
		}
		p("\n")
	}
	p("\n## Flow files\n\n| witness | files | records | ends |\n| --- | --- | --- | --- |\n")
	for _, w := range l.Witnesses {
		recs := 0
		ends := map[string]int{}
		for _, f := range w.Files {
			recs += f.Records
			ends[f.End]++
		}
		var es []string
		for _, k := range sortedKeys(ends) {
			es = append(es, fmt.Sprintf("%d %s", ends[k], k))
		}
		p("| %s | %d | %d | %s |\n", w.Name, len(w.Files), recs, strings.Join(es, ", "))
	}
	return b.String()
}

func lostText(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%d (`%s`)", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func loadRange(r *Run) string {
	var parts []string
	for _, w := range r.windows {
		if f := strings.Fields(w.After.LoadAvg); len(f) > 0 {
			parts = append(parts, f[0])
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	lo, hi := parts[0], parts[0]
	for _, s := range parts {
		if len(s) < len(lo) || (len(s) == len(lo) && s < lo) {
			lo = s
		}
		if len(s) > len(hi) || (len(s) == len(hi) && s > hi) {
			hi = s
		}
	}
	return lo + " to " + hi
}
