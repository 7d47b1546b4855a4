// SPDX-License-Identifier: Apache-2.0

// Package agent is the exporter daemon: it loads and attaches the datapath,
// drains it on a timer into the flow cache, and hands expired records to
// every collector and to the local record sink.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/cache"
	"github.com/kflow-dev/kflow/exporter/cgroup"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ledger"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// Defaults for Config.
const (
	DefaultDrainInterval = time.Second
	DefaultQueueBatches  = 64
)

// Sink receives every exported record in-process (the embedded collector's
// flow-file writer). Write must not keep recs after it returns.
type Sink interface {
	Write(recs []flow.Record) error
	Close() error
}

// reportSink is a Sink that also keeps what the exporter says about
// itself, as a collector keeps an exporter's options records: its ignored
// counters, interface names and sampling (the embedded collector's flow
// files, where file stat and query -I read them).
type reportSink interface {
	Report(u *flowfile.ExporterReport)
}

// selfReport is what the exporter's options records would tell a
// collector after batch b, for the local sink.
func (a *Agent) selfReport(b batch) *flowfile.ExporterReport {
	a.mu.Lock()
	names, records := a.observed, a.stats.RecordsExported
	a.mu.Unlock()
	u := &flowfile.ExporterReport{Domain: a.cfg.ObservationDomain, HasStats: true, SystemInit: a.meteringInit,
		Records: records, IgnoredPackets: b.ignoredPackets, IgnoredOctets: b.ignoredOctets, Received: time.Now()}
	if len(names) > 0 {
		u.Interfaces = make(map[uint32]string, len(names))
		for _, n := range names {
			u.Interfaces[n.Index] = n.Name
		}
	}
	if s := a.cfg.Datapath.Sampling; s > 1 {
		u.SamplingInterval, u.SamplingAlgorithm = s, wire.SamplingRandom
		if a.cfg.Datapath.SamplingCount {
			u.SamplingAlgorithm = wire.SamplingDeterministic
		}
	}
	return u
}

// ErrBiflowFormat is returned by New for biflows with a NetFlow collector.
var ErrBiflowFormat = errors.New("biflow export needs IPFIX")

// Config configures the agent.
type Config struct {
	Datapath bpf.Config
	Hook     bpf.Hook
	// Interfaces are names or shell globs (eth*, ens[0-9]*); empty means
	// every interface that is up, except loopback.
	Interfaces []string
	// DrainInterval is how often the kernel maps are drained.
	DrainInterval time.Duration
	Cache         cache.Config
	Collectors    []transport.Target
	// Sink, if set, receives every record too (embedded collector).
	Sink              Sink
	ObservationDomain uint32
	// Biflow exports RFC 5103 biflows: the cache pairs the two directions
	// of each connection, and IPFIX records carry the responder's values
	// as reverse elements (IPFIX collectors only; New refuses NetFlow
	// ones). The local sink gets the directional records.
	Biflow bool
	// IPFIXSequenceAll numbers options data records too in IPFIX headers
	// (RFC 7011's wording) instead of flow records only (what nfdump checks).
	IPFIXSequenceAll bool
	MTU              int
	TemplateRefresh  time.Duration
	// QueueBatches bounds each collector's queue, in drains.
	QueueBatches int
	// ReadyFile is written once the datapath is attached and exporting.
	ReadyFile string
	// OnAttached, if set, runs once the interfaces present at start are
	// attached, before ReadyFile is written (to drop privileges).
	OnAttached func() error
	Logger     *slog.Logger
}

// IfaceKey names one observed interface and direction.
type IfaceKey struct {
	Ifindex   uint32
	Direction flow.Direction
}

// IfaceCounters are the packets and L3 octets counted on one interface
// and direction (in flows; unkeyed packets are in Stats.Datapath).
type IfaceCounters struct {
	Packets, Octets uint64
}

// Stats are the agent's counters since start.
type Stats struct {
	Drains       uint64
	LastDrain    time.Duration
	DrainSeconds float64 // total time spent draining
	MapEntries   int     // flows in the kernel maps (IPv4 and IPv6) at the last drain
	MapCapacity  uint32
	Interfaces   map[IfaceKey]IfaceCounters
	// Datapath are the totals of the unkeyed counters as of the last
	// drain, since the kernel maps were created: an exporter that adopted
	// pinned maps goes on from its predecessor's totals, as the metering
	// process (the kernel programs) went on (RFC 7011's ignored*TotalCount
	// counts since the metering process started).
	Datapath bpf.Stats
	// Filtered are the capture filter's totals per interface and
	// direction (with a filter).
	Filtered        []bpf.FilteredCount
	Cache           cache.Stats
	RecordsExported uint64 // records handed to collectors and the sink
	SinkErrors      uint64
	// SinkUnexported is what previous exporters drained but never wrote
	// to the local files (see CollectorStats.PacketsUnexported).
	SinkUnexported ledger.Counts
	Collectors     []CollectorStats
}

// Agent is a running exporter.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	dp    *bpf.Datapath
	cache *cache.Cache
	// ledger is the pinned account of what was drained and handed to
	// each collector (nil without pinning); sinkAcct is the local files'.
	ledger   *ledger.Ledger
	sinkAcct *ledger.Account
	workers  []*worker
	wg       sync.WaitGroup
	ifw      *ifaceWatcher
	keep     atomic.Bool
	// workersClosed is set once the collector queues are closed.
	workersClosed bool
	// snapshots carries Flows requests to the drain loop, which owns the
	// cache.
	snapshots chan chan []flow.Record

	mu    sync.Mutex // guards stats
	stats Stats
	// ifaceDeltas sums a drain's packets and octets per interface.
	ifaceDeltas map[IfaceKey]IfaceCounters
	// lastOut is how many records the last drain exported.
	lastOut   int
	expired   []flow.Record
	ifacesNew []wire.Interface
	observed  []wire.Interface
	start     time.Time
	// meteringInit is when the datapath's maps were created: their
	// counters (the ignored ones) count from then, across the exporters
	// that adopt them. The statistics the collectors get say it.
	meteringInit time.Time
	// cgroups names the records' cgroup ids (drain loop only); nil
	// without attribution or without a cgroup v2 mount.
	cgroups *cgroup.Resolver
}

// New loads the datapath and prepares the collectors; Run attaches and
// starts exporting.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.DrainInterval <= 0 {
		cfg.DrainInterval = DefaultDrainInterval
	}
	if cfg.QueueBatches <= 0 {
		cfg.QueueBatches = DefaultQueueBatches
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Collectors) == 0 && cfg.Sink == nil {
		return nil, errors.New("exporter: no collector and no local sink configured")
	}
	if cfg.Biflow {
		cfg.Cache.Biflow = true
		cfg.Datapath.MarkSynNoAck = true
	}
	cfg.Cache.Cgroups = cfg.Datapath.Cgroups
	c, err := cache.New(cfg.Cache)
	if err != nil {
		return nil, fmt.Errorf("flow cache: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, cache: c, start: time.Now(), snapshots: make(chan chan []flow.Record)}
	// Connections outlive ctx: the last records go out after it ends.
	connCtx := context.WithoutCancel(ctx)
	for _, t := range cfg.Collectors {
		w, err := newWorker(connCtx, t, &cfg, a.start)
		if err != nil {
			a.closeWorkers()
			return nil, err
		}
		a.workers = append(a.workers, w)
	}
	a.dp, err = bpf.Load(cfg.Datapath)
	if err != nil {
		a.closeWorkers()
		return nil, err
	}
	a.stats.Datapath = a.dp.DrainedTotal()
	if cfg.Datapath.Cgroups {
		if err := a.dp.CgroupsUnavailable(); err != nil {
			a.log.Warn("flows are not attributed to cgroups", "err", err)
		} else if a.cgroups, err = cgroup.New(cgroup.Config{}); err != nil {
			a.log.Warn("cgroup ids are exported without their paths", "err", err)
		}
	}
	if a.dp.Adopted() {
		a.log.Info("adopted pinned datapath maps: counting continued while no exporter ran", "pin_dir", cfg.Datapath.PinDir)
	}
	a.meteringInit = a.start
	if cfg.Datapath.PinDir != "" {
		if err := a.openLedger(); err != nil {
			a.closeWorkers()
			a.dp.Close()
			return nil, err
		}
		a.meteringInit = a.ledger.Started()
	}
	for _, w := range a.workers {
		w.enc.setMeteringInit(a.meteringInit)
	}
	return a, nil
}

// localAccount names the local files in the ledger.
const localAccount = "local flow files"

// openLedger opens the pinned ledger beside the datapath's pins, gives
// each collector its account and reports what a previous exporter that
// ended without its final export drained but never sent.
func (a *Agent) openLedger() error {
	var names []string
	for _, w := range a.workers {
		names = append(names, w.target.String())
	}
	if a.cfg.Sink != nil {
		names = append(names, localAccount)
	}
	l, err := ledger.Open(a.cfg.Datapath.PinDir, a.dp.Adopted(), names)
	if err != nil {
		return err
	}
	a.ledger = l
	accts := l.Accounts()
	for i, w := range a.workers {
		w.acct = accts[i]
	}
	if a.cfg.Sink != nil {
		a.sinkAcct = accts[len(accts)-1]
	}
	for _, acct := range accts {
		if f := acct.Found(); f.Packets != 0 || f.Octets != 0 {
			a.log.Warn("the previous exporter ended without exporting what it had drained (killed?): counted as unexported",
				"collector", acct.Name, "packets", f.Packets, "octets", f.Octets)
		}
	}
	return nil
}

// Close releases an agent that will not Run (Run releases it otherwise).
func (a *Agent) Close() error { return a.shutdown(false) }

// KeepAttached makes Run leave the programs attached and pinned when it
// returns, for a restart that adopts them (an upgrade).
func (a *Agent) KeepAttached() { a.keep.Store(true) }

// Run attaches the datapath and exports until ctx is done, then drains one
// last time, exports every cached flow (forced end) and detaches (unless
// KeepAttached was called).
func (a *Agent) Run(ctx context.Context) error {
	for _, w := range a.workers {
		a.wg.Add(1)
		go w.run(&a.wg)
	}
	var err error
	a.ifw, err = newIfaceWatcher(a.cfg.Interfaces, a.log)
	if err != nil {
		a.shutdown(false)
		return err
	}
	if err := a.ifw.start(ctx); err != nil {
		a.shutdown(false)
		return err
	}
	// Attach to what exists now before declaring readiness.
	a.applyIfaceEvents(a.ifw.initial())
	if len(a.dp.Attachments()) == 0 {
		a.log.Warn("no interface matches yet: waiting for one to appear", "interfaces", a.cfg.Interfaces)
	}
	if a.cfg.OnAttached != nil {
		if err := a.cfg.OnAttached(); err != nil {
			a.shutdown(true)
			return err
		}
	}
	if a.cfg.ReadyFile != "" {
		if err := os.WriteFile(a.cfg.ReadyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			a.shutdown(false)
			return fmt.Errorf("write ready file: %w", err)
		}
	}
	tick := time.NewTicker(a.cfg.DrainInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.shutdown(true)
		case evs := <-a.ifw.events:
			a.applyIfaceEvents(evs)
		case reply := <-a.snapshots:
			var recs []flow.Record
			a.cache.Each(func(r *flow.Record) { recs = append(recs, *r) })
			a.nameCgroups(recs)
			reply <- recs
		case now := <-tick.C:
			if err := a.drain(now, false); err != nil {
				a.log.Error("drain failed", "err", err)
			}
		}
	}
}

// drain moves the kernel's deltas into the cache and exports what expired.
// Each delta is merged as the drain hands it over, so that a drain's
// deltas are never held all at once, and those of a drain that fails
// halfway are in the cache all the same.
func (a *Agent) drain(now time.Time, final bool) error {
	t0 := time.Now()
	// The records go to the collectors' queues, so each drain has a
	// slice of its own; sized for as many as the last drain exported, it
	// rarely grows (growing a slice of a million records by appending
	// costs several times more than filling it).
	out := make([]flow.Record, 0, max(64, a.lastOut))
	emit := func(r *flow.Record) { out = append(out, *r) }
	defer func() { a.lastOut = len(out) }()
	if a.ifaceDeltas == nil {
		a.ifaceDeltas = map[IfaceKey]IfaceCounters{}
	}
	clear(a.ifaceDeltas)
	// The drained totals are written as the counts leave the kernel (a
	// flow cache, a batch of a flow map, ring buffer events), before the
	// flows reach the cache: a kill in the middle of a drain finds them
	// counted.
	st, derr := a.dp.DrainCounted(func(r *flow.Record) {
		k := IfaceKey{Ifindex: r.InIf, Direction: r.Direction}
		if r.Direction == flow.Egress {
			k.Ifindex = r.OutIf
		}
		c := a.ifaceDeltas[k]
		c.Packets += r.Packets
		c.Octets += r.Octets
		a.ifaceDeltas[k] = c
		if a.cgroups != nil && r.CgroupID != 0 {
			// Learn the path while the cgroup exists: a flow is
			// exported after its last packet, when its cgroup may be
			// gone.
			a.cgroups.Path(r.CgroupID)
		}
		a.cache.MergeOne(r, emit)
	}, func(packets, octets uint64) {
		a.noteDrained(&ledger.Counts{Packets: packets, Octets: octets})
	})
	var filtered []bpf.FilteredCount
	var ferr error
	if a.cfg.Datapath.Filter != "" {
		if filtered, ferr = a.dp.Filtered(); ferr == nil {
			filtered = withAttached(filtered, a.dp.Attachments())
		}
	}
	// Even after an error: the records merging forced out of the cache
	// are in out, and go out with what expired.
	if final {
		a.cache.Flush(emit)
	} else {
		a.cache.Expire(now, emit)
	}
	a.nameCgroups(out)
	a.mu.Lock()
	if a.stats.Interfaces == nil {
		a.stats.Interfaces = map[IfaceKey]IfaceCounters{}
	}
	for k, d := range a.ifaceDeltas {
		c := a.stats.Interfaces[k]
		c.Packets += d.Packets
		c.Octets += d.Octets
		a.stats.Interfaces[k] = c
	}
	a.stats.MapEntries = st.MapEntries
	a.stats.MapCapacity = a.dp.Config().MapEntries
	a.stats.Drains++
	a.stats.LastDrain = time.Since(t0)
	a.stats.DrainSeconds += a.stats.LastDrain.Seconds()
	a.stats.Datapath = a.dp.DrainedTotal()
	if filtered != nil {
		a.stats.Filtered = filtered
	}
	if a.cfg.Biflow {
		a.stats.RecordsExported += uint64(len(out) / 2) // a biflow per pair
	} else {
		a.stats.RecordsExported += uint64(len(out))
	}
	ign := a.stats.Datapath
	ifaces := a.ifacesNew
	a.ifacesNew = nil
	a.mu.Unlock()
	a.export(batch{recs: out, ignoredPackets: ign.IgnoredPackets, ignoredOctets: ign.IgnoredOctets, ifaces: ifaces,
		filtered: wireFiltered(filtered), final: final})
	return errors.Join(derr, ferr)
}

// noteDrained adds what was drained to the pinned ledger's totals.
func (a *Agent) noteDrained(c *ledger.Counts) {
	if a.ledger == nil || (c.Packets == 0 && c.Octets == 0) {
		return
	}
	if err := a.ledger.Drained(*c); err != nil {
		a.log.Warn("pinned ledger not updated: a kill now would lose uncounted packets", "err", err)
	}
	*c = ledger.Counts{}
}

// nameCgroups sets the cgroup path of records that have a cgroup id.
func (a *Agent) nameCgroups(recs []flow.Record) {
	if a.cgroups == nil {
		return
	}
	for i := range recs {
		if r := &recs[i]; r.CgroupID != 0 {
			r.Cgroup = a.cgroups.Path(r.CgroupID)
		}
	}
}

// withAttached adds a zero count for each attached interface and
// direction the filter has not left anything out of yet, so that metrics
// and collectors see the filter at work everywhere.
func withAttached(fs []bpf.FilteredCount, atts []*bpf.Attachment) []bpf.FilteredCount {
	out := slices.Clone(fs)
	for _, at := range atts {
		if !slices.ContainsFunc(out, func(f bpf.FilteredCount) bool {
			return f.Ifindex == uint32(at.Ifindex) && f.Direction == at.Direction
		}) {
			out = append(out, bpf.FilteredCount{Ifindex: uint32(at.Ifindex), Direction: at.Direction})
		}
	}
	slices.SortFunc(out, func(a, b bpf.FilteredCount) int {
		return cmp.Or(cmp.Compare(a.Ifindex, b.Ifindex), cmp.Compare(a.Direction, b.Direction))
	})
	return out
}

// wireFiltered turns the datapath's capture filter counts into the
// options records' form.
func wireFiltered(fs []bpf.FilteredCount) []wire.FilterCount {
	if fs == nil {
		return nil
	}
	out := make([]wire.FilterCount, len(fs))
	for i, f := range fs {
		out[i] = wire.FilterCount{Ifindex: f.Ifindex, Direction: f.Direction, Packets: f.Packets, Octets: f.Octets}
	}
	return out
}

// export hands a drain's records to the local sink and every collector.
// Both get a batch even when it is empty: the sink's files rotate (and
// retention runs) on time without traffic, and the collectors' encoders
// send templates and options records when a refresh is due by time.
func (a *Agent) export(b batch) {
	if a.cfg.Sink != nil {
		local := b.recs
		if a.cfg.Biflow {
			// The files hold directional records: a biflow's two
			// directions, the one that sent nothing left out.
			local = make([]flow.Record, 0, len(b.recs))
			for _, r := range b.recs {
				if r.Packets != 0 || r.Octets != 0 {
					local = append(local, r)
				}
			}
		}
		if err := a.cfg.Sink.Write(local); err != nil {
			a.mu.Lock()
			a.stats.SinkErrors++
			a.mu.Unlock()
			a.log.Error("write records to the local flow files", "records", len(local), "err", err)
		}
		if rs, ok := a.cfg.Sink.(reportSink); ok {
			rs.Report(a.selfReport(b))
		}
		if a.sinkAcct != nil {
			if c := counts(b.recs); c.Packets != 0 || c.Octets != 0 {
				if err := a.sinkAcct.Handed(c); err != nil {
					a.log.Warn("pinned ledger not updated: a kill now would lose uncounted packets", "err", err)
				}
			}
		}
	}
	if len(a.workers) > 0 {
		// Records of one address family in a row fill messages of one
		// length, which a UDP collector gets in one GSO send per run
		// (transport.Conn.SendBatch). The local files keep the cache's
		// order.
		b.recs = wire.GroupFamilies(b.recs, a.cfg.Biflow)
	}
	for _, w := range a.workers {
		w.offer(b)
	}
}

// shutdown ends the agent. With drain set it first detaches (so the last
// drain is exact), drains, flushes the cache and waits for the collectors.
func (a *Agent) shutdown(drain bool) error {
	keep := a.keep.Load()
	var errs []error
	if a.ifw != nil {
		a.ifw.stop()
	}
	if drain {
		if !keep {
			// Detach first: after this no packet is counted, so the final
			// drain sees everything.
			for _, at := range append([]*bpf.Attachment(nil), a.dp.Attachments()...) {
				errs = append(errs, a.dp.Detach(at.Ifindex))
			}
		}
		errs = append(errs, a.drain(time.Now(), true))
	}
	a.closeWorkers()
	if a.cfg.Sink != nil {
		errs = append(errs, a.cfg.Sink.Close())
	}
	if a.ledger != nil {
		if !keep {
			errs = append(errs, a.ledger.Unpin())
		}
		errs = append(errs, a.ledger.Close())
	}
	if keep {
		a.log.Info("leaving programs attached and maps pinned for the next exporter", "pin_dir", a.cfg.Datapath.PinDir)
		errs = append(errs, a.dp.Release())
	} else {
		errs = append(errs, a.dp.Close())
		if a.cfg.Datapath.PinDir != "" {
			errs = append(errs, a.dp.Unpin())
		}
	}
	return errors.Join(errs...)
}

// closeWorkers closes the collector queues and waits (bounded) for them to
// send what they hold.
func (a *Agent) closeWorkers() {
	if a.workersClosed {
		return
	}
	a.workersClosed = true
	for _, w := range a.workers {
		close(w.queue)
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		a.log.Warn("collectors did not take the last records within 10s")
	}
}

// Flows returns the flows in the cache now, each with its counters since
// its previous record (as of the last drain, at most one drain interval
// ago). It does not disturb the drain or the cache.
func (a *Agent) Flows(ctx context.Context) ([]flow.Record, error) {
	reply := make(chan []flow.Record, 1)
	select {
	case a.snapshots <- reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case recs := <-reply:
		return recs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats returns a snapshot of the agent's counters.
func (a *Agent) Stats() Stats {
	a.mu.Lock()
	s := a.stats
	s.Filtered = slices.Clone(a.stats.Filtered)
	s.Interfaces = make(map[IfaceKey]IfaceCounters, len(a.stats.Interfaces))
	for k, v := range a.stats.Interfaces {
		s.Interfaces[k] = v
	}
	a.mu.Unlock()
	s.Cache = a.cache.Stats()
	if a.sinkAcct != nil {
		s.SinkUnexported = a.sinkAcct.Lost()
	}
	for _, w := range a.workers {
		s.Collectors = append(s.Collectors, w.stats())
	}
	return s
}
