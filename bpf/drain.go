// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Stats are the datapath's unkeyed packet counters: deltas since the
// previous drain when returned by Drain.
type Stats struct {
	NonIPPackets, NonIPOctets       uint64 // frames that are not IPv4/IPv6
	UnparsedPackets, UnparsedOctets uint64 // IP frames too short or malformed
	FallbackPackets, FallbackOctets uint64 // flow map full: via the ring buffer
	IgnoredPackets, IgnoredOctets   uint64 // map and ring buffer full: lost to flows

	// Of the last drain only (not counters): flows read from the flow
	// maps, ring buffer events folded in, and used slots of the flow
	// caches (one per CPU and flow). A flow in the slots of several CPUs
	// and in a map goes out as one record.
	MapEntries, Events, CacheEntries int
}

func (s *Stats) add(o *kflowDatapathStats) {
	s.NonIPPackets += o.NonIpPackets
	s.NonIPOctets += o.NonIpOctets
	s.UnparsedPackets += o.UnparsedPackets
	s.UnparsedOctets += o.UnparsedOctets
	s.FallbackPackets += o.FallbackPackets
	s.FallbackOctets += o.FallbackOctets
	s.IgnoredPackets += o.IgnoredPackets
	s.IgnoredOctets += o.IgnoredOctets
}

func (s Stats) sub(o Stats) Stats {
	return Stats{
		NonIPPackets: s.NonIPPackets - o.NonIPPackets, NonIPOctets: s.NonIPOctets - o.NonIPOctets,
		UnparsedPackets: s.UnparsedPackets - o.UnparsedPackets, UnparsedOctets: s.UnparsedOctets - o.UnparsedOctets,
		FallbackPackets: s.FallbackPackets - o.FallbackPackets, FallbackOctets: s.FallbackOctets - o.FallbackOctets,
		IgnoredPackets: s.IgnoredPackets - o.IgnoredPackets, IgnoredOctets: s.IgnoredOctets - o.IgnoredOctets,
	}
}

func (s Stats) raw() kflowDatapathStats {
	return kflowDatapathStats{
		NonIpPackets: s.NonIPPackets, NonIpOctets: s.NonIPOctets,
		UnparsedPackets: s.UnparsedPackets, UnparsedOctets: s.UnparsedOctets,
		FallbackPackets: s.FallbackPackets, FallbackOctets: s.FallbackOctets,
		IgnoredPackets: s.IgnoredPackets, IgnoredOctets: s.IgnoredOctets,
	}
}

var errShortEvent = errors.New("shorter than struct flow_event")

// tcpFlagsMask keeps the flags byte and NS (bit 8) of the kernel's
// tcp_flags, which also holds flow.TCPSynNoAck.
const tcpFlagsMask uint16 = 0x1ff

// drainBatch is how many entries one batch syscall moves.
const drainBatch = 4096

type drainState struct {
	ncpu    int
	batchOK bool // BPF_MAP_LOOKUP_AND_DELETE_BATCH works on the flow maps
	keys    []kflowFlowKey
	keys4   []kflowFlowKey4
	values  []kflowFlowValue // ncpu values per key for per-CPU maps
	// The flow caches, per-CPU arrays: their slot numbers, their entries
	// (cpus per slot), and zeroes to clear them.
	cpus                    int
	cacheKeys               []uint32
	cacheVals, cacheZeros   []kflowFlowCacheEntry
	cache6Vals, cache6Zeros []kflowFlowCacheEntry6
	cacheBatchOK            bool
	// The records of the retired caches, one per flow (the slots of
	// several CPUs merged), by kernel key, until they merge with the
	// flow's map entry or go out after the maps.
	pending4    map[kflowFlowKey4]int
	pending6    map[kflowFlowKey]int
	pendingRecs []flow.Record
	event       ringbuf.Record
	eventRecs   []flow.Record // a batch of ring buffer events
	baseline    Stats         // counters already handed out, mirrored in drained_stats
	// flagsMask keeps the TCP flags of records, and flow.TCPSynNoAck
	// with Config.MarkSynNoAck.
	flagsMask uint16
}

func (s *drainState) init(d *Datapath) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("possible cpus: %w", err)
	}
	s.ncpu = 1
	if d.cfg.PerCPUValues {
		s.ncpu = n
	}
	s.cpus = n
	s.batchOK, s.cacheBatchOK = true, true
	s.flagsMask = tcpFlagsMask
	if d.cfg.MarkSynNoAck {
		s.flagsMask |= flow.TCPSynNoAck
	}
	s.keys = make([]kflowFlowKey, drainBatch)
	s.keys4 = make([]kflowFlowKey4, drainBatch)
	slots := int(d.cache.MaxEntries())
	s.cacheKeys = make([]uint32, slots)
	for i := range s.cacheKeys {
		s.cacheKeys[i] = uint32(i)
	}
	s.cacheVals = make([]kflowFlowCacheEntry, slots*n)
	s.cacheZeros = make([]kflowFlowCacheEntry, slots*n)
	s.cache6Vals = make([]kflowFlowCacheEntry6, slots*n)
	s.cache6Zeros = make([]kflowFlowCacheEntry6, slots*n)
	s.pending4 = map[kflowFlowKey4]int{}
	s.pending6 = map[kflowFlowKey]int{}
	s.values = make([]kflowFlowValue, drainBatch*s.ncpu)
	var base kflowDatapathStats
	if err := d.objs.DrainedStats.Lookup(uint32(0), &base); err != nil {
		return fmt.Errorf("read drained stats: %w", err)
	}
	s.baseline.add(&base)
	return nil
}

// Drain retires the active flow map, reads every flow counted in it since
// the previous drain, folds in the ring buffer's fallback events, and
// returns the flows appended to dst (counters are deltas) with the unkeyed
// counters' deltas. No increment is lost or counted twice: the kernel waits
// for running programs when the map slot changes, so the retired map has no
// writers while it is read and cleared.
func (d *Datapath) Drain(dst []flow.Record) ([]flow.Record, Stats, error) {
	st, err := d.DrainFunc(func(r *flow.Record) { dst = append(dst, *r) })
	return dst, st, err
}

// DrainFunc is Drain handing each flow to emit instead of collecting them:
// its memory stays that of one batch whatever the number of flows. The
// record passed to emit is reused after emit returns.
func (d *Datapath) DrainFunc(emit func(*flow.Record)) (Stats, error) {
	return d.DrainCounted(emit, nil)
}

// eventBatch is the most ring buffer events readEvents hands over at a
// time.
const eventBatch = 4096

// DrainCounted is DrainFunc that also calls drained, if not nil, with the
// packets and octets it takes out of the kernel as soon as they are out:
// after each read and clear of a flow cache, after each batch of a flow
// map's read and delete (before its flows go to emit), and after each
// batch of ring buffer events read (before they go to emit). A process
// killed in the middle of a drain has noted what left the kernel, but
// for what a batch or a cache took in the moments before its note.
// (Noted as the flows went to emit, a cache's counts waited for the
// whole drain: they merge into the map entries read after them.)
func (d *Datapath) DrainCounted(emit func(*flow.Record), drained func(packets, octets uint64)) (Stats, error) {
	clock, err := d.newClockMap()
	if err != nil {
		return Stats{}, err
	}

	// Swap first: from here on, programs count into the spare maps. The
	// cache first: programs that still see the retired flow maps may move
	// counters of the new cache into them, but none of the retired
	// cache's after its swap returned.
	if err := d.objs.Cache4Slot.Put(uint32(0), d.cacheSpare); err != nil {
		return Stats{}, fmt.Errorf("swap flow caches: %w", err)
	}
	retiredCache := d.cache
	d.cache, d.cacheSpare = d.cacheSpare, retiredCache
	if err := d.objs.Flow4Slot.Put(uint32(0), d.spare4); err != nil {
		return Stats{}, fmt.Errorf("swap IPv4 flow maps: %w", err)
	}
	retired4 := d.active4
	d.active4, d.spare4 = d.spare4, retired4
	if err := d.objs.Cache6Slot.Put(uint32(0), d.cache6Spare); err != nil {
		return Stats{}, fmt.Errorf("swap IPv6 flow caches: %w", err)
	}
	retiredCache6 := d.cache6
	d.cache6, d.cache6Spare = d.cache6Spare, retiredCache6
	if err := d.objs.FlowSlot.Put(uint32(0), d.spare); err != nil {
		return Stats{}, fmt.Errorf("swap flow maps: %w", err)
	}
	retired := d.active
	d.active, d.spare = d.spare, retired

	// A flow's counts since the last drain may be split between the cache
	// slots of several CPUs and its map entry: they go out as one record,
	// as the per-CPU values of a map entry do, so that every flow has at
	// most one record per drain (with its first packet's time, TOS and
	// SYN mark: the biflow cache decides a connection's initiator on the
	// first record of each direction). Ring buffer events stay apart.
	s := &d.drain
	clear(s.pending4)
	clear(s.pending6)
	s.pendingRecs = s.pendingRecs[:0]
	entries, events, cached := 0, 0, 0
	var out struct{ packets, octets uint64 } // taken out, not yet noted
	note := func() {
		if drained != nil && out.packets|out.octets != 0 {
			drained(out.packets, out.octets)
		}
		out.packets, out.octets = 0, 0
	}
	count := func(r *flow.Record) { entries++; emit(r) }
	add4 := func(r *flow.Record, e *kflowFlowCacheEntry) {
		cached++
		out.packets, out.octets = out.packets+r.Packets, out.octets+r.Octets
		addPending(s, s.pending4, &e.Key, r)
	}
	add6 := func(r *flow.Record, e *kflowFlowCacheEntry6) {
		cached++
		out.packets, out.octets = out.packets+r.Packets, out.octets+r.Octets
		addPending(s, s.pending6, &e.Key, r)
	}
	if err := readAndClearCache(d, retiredCache, s.cacheVals, s.cacheZeros, cache4Record, add4, &clock); err != nil {
		return Stats{}, err
	}
	note()
	if err := readAndClearCache(d, retiredCache6, s.cache6Vals, s.cache6Zeros, cache6Record, add6, &clock); err != nil {
		return Stats{}, err
	}
	note()
	// A batch's counts, noted before its flows go to emit.
	batch := func(packets, octets uint64) {
		out.packets, out.octets = out.packets+packets, out.octets+octets
		note()
	}
	take4 := func(k *kflowFlowKey4) *flow.Record { return takePending(s, s.pending4, k) }
	take6 := func(k *kflowFlowKey) *flow.Record { return takePending(s, s.pending6, k) }
	if err := readAndClear(d, retired4, s.keys4, keyRecord4, take4, count, batch, &clock); err != nil {
		return Stats{}, err
	}
	if err := readAndClear(d, retired, s.keys, keyRecord, take6, count, batch, &clock); err != nil {
		return Stats{}, err
	}
	for i := range s.pendingRecs {
		if s.pendingRecs[i].Packets != 0 { // not merged into a map entry's
			emit(&s.pendingRecs[i])
		}
	}
	if err := d.readEvents(func(recs []flow.Record) {
		for i := range recs {
			out.packets, out.octets = out.packets+recs[i].Packets, out.octets+recs[i].Octets
		}
		note()
		for i := range recs {
			events++
			emit(&recs[i])
		}
	}, &clock); err != nil {
		return Stats{}, err
	}
	st, err := d.statsDelta()
	st.MapEntries, st.Events, st.CacheEntries = entries, events, cached
	return st, err
}

// addPending adds the record r of a cache slot whose flow has key k.
func addPending[K comparable](s *drainState, pending map[K]int, k *K, r *flow.Record) {
	if i, ok := pending[*k]; ok {
		mergeRecord(&s.pendingRecs[i], r)
		return
	}
	pending[*k] = len(s.pendingRecs)
	s.pendingRecs = append(s.pendingRecs, *r)
}

// takePending returns the pending cache record of the flow with key k, or
// nil, and marks it merged.
func takePending[K comparable](s *drainState, pending map[K]int, k *K) *flow.Record {
	if len(pending) == 0 {
		return nil
	}
	i, ok := pending[*k]
	if !ok {
		return nil
	}
	delete(pending, *k)
	return &s.pendingRecs[i]
}

// mergeRecord adds the counts of o, another part of r's flow, to r.
func mergeRecord(r, o *flow.Record) {
	if o.Start.Before(r.Start) {
		r.Start, r.TOS = o.Start, o.TOS
	}
	if o.End.After(r.End) {
		r.End = o.End
	}
	r.Packets += o.Packets
	r.Octets += o.Octets
	r.TCPFlags |= o.TCPFlags
	r.MinTTL = min(r.MinTTL, o.MinTTL)
	r.MaxTTL = max(r.MaxTTL, o.MaxTTL)
	if r.CgroupID == 0 {
		r.CgroupID = o.CgroupID
	}
}

// readAndClear reads and deletes every entry of a retired flow map whose
// keys are of type K (kflowFlowKey or kflowFlowKey4), with keys as the
// batch buffer and keyRec to decode a key; take returns the flow's pending
// cache record, merged into the entry's before it goes out. taken is
// called with the packets and octets of each batch taken out of the map,
// before its flows go to emit; without batch operations, with those of
// the entries walked, before they are deleted.
func readAndClear[K any](d *Datapath, m *ebpf.Map, keys []K, keyRec func(*flow.Record, *K), take func(*K) *flow.Record,
	emit func(*flow.Record), taken func(packets, octets uint64), clock *clockMap) error {
	s := &d.drain
	var r flow.Record
	if s.batchOK {
		var cursor ebpf.MapBatchCursor
		for {
			n, err := m.BatchLookupAndDelete(&cursor, keys, s.values, nil)
			var packets, octets uint64
			for _, v := range s.values[:n*s.ncpu] {
				packets, octets = packets+v.Packets, octets+v.Octets
			}
			taken(packets, octets)
			for i := 0; i < n; i++ {
				keyRec(&r, &keys[i])
				s.record(&r, i, clock)
				if p := take(&keys[i]); p != nil {
					mergeRecord(&r, p)
					p.Packets = 0
				}
				emit(&r)
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil
			}
			if errors.Is(err, ebpf.ErrNotSupported) && n == 0 {
				s.batchOK = false
				break
			}
			if err != nil {
				return fmt.Errorf("drain flow map: %w", err)
			}
		}
	}
	// Kernels without batch operations: walk, read, then delete.
	var key K
	var walked []K
	var packets, octets uint64
	iter := m.Iterate()
	vals := s.values[:s.ncpu]
	for iter.Next(&key, perCPUOrOne(vals, s.ncpu)) {
		keyRec(&r, &key)
		s.record(&r, 0, clock)
		packets, octets = packets+r.Packets, octets+r.Octets
		if p := take(&key); p != nil {
			mergeRecord(&r, p)
			p.Packets = 0
		}
		emit(&r)
		walked = append(walked, key)
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("walk flow map: %w", err)
	}
	taken(packets, octets)
	for i := range walked {
		if err := m.Delete(&walked[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear flow map: %w", err)
		}
	}
	return nil
}

func perCPUOrOne(vals []kflowFlowValue, ncpu int) any {
	if ncpu == 1 {
		return &vals[0]
	}
	return vals
}

// cache4Record decodes a used IPv4 cache slot's key into r and returns its
// counters, or nil for a free slot.
func cache4Record(r *flow.Record, e *kflowFlowCacheEntry) *kflowFlowValue {
	if e.Value.Packets == 0 {
		return nil
	}
	keyRecord4(r, &e.Key)
	return &e.Value
}

// cache6Record is cache4Record for an IPv6 cache slot.
func cache6Record(r *flow.Record, e *kflowFlowCacheEntry6) *kflowFlowValue {
	if e.Value.Packets == 0 {
		return nil
	}
	keyRecord(r, &e.Key)
	return &e.Value
}

// readAndClearCache reads every used slot of a retired flow cache, each
// CPU's, into vals, then zeroes the cache with zeros; rec decodes a slot.
func readAndClearCache[E any](d *Datapath, m *ebpf.Map, vals, zeros []E, rec func(*flow.Record, *E) *kflowFlowValue,
	emit func(*flow.Record, *E), clock *clockMap) error {
	s := &d.drain
	n := len(s.cacheKeys)
	read := false
	if s.cacheBatchOK {
		var cursor ebpf.MapBatchCursor
		got := 0
		for got < n {
			c, err := m.BatchLookup(&cursor, s.cacheKeys[got:], vals[got*s.cpus:], nil)
			got += c
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				break
			}
			if errors.Is(err, ebpf.ErrNotSupported) && c == 0 {
				s.cacheBatchOK = false
				break
			}
			if err != nil {
				return fmt.Errorf("read flow cache: %w", err)
			}
		}
		read = s.cacheBatchOK
		if read && got != n {
			return fmt.Errorf("read flow cache: %d of its %d slots", got, n)
		}
	}
	if !read {
		for i := range n {
			if err := m.Lookup(uint32(i), vals[i*s.cpus:(i+1)*s.cpus]); err != nil {
				return fmt.Errorf("read flow cache slot %d: %w", i, err)
			}
		}
	}
	used := false
	var r flow.Record
	for i := range vals {
		v := rec(&r, &vals[i])
		if v == nil {
			continue
		}
		used = true
		s.valueRecord(&r, v, clock)
		emit(&r, &vals[i])
	}
	if !used {
		return nil
	}
	if s.cacheBatchOK {
		if _, err := m.BatchUpdate(s.cacheKeys, zeros, nil); err == nil {
			return nil
		} else if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("clear flow cache: %w", err)
		}
		s.cacheBatchOK = false
	}
	for i := range n {
		if err := m.Put(uint32(i), zeros[i*s.cpus:(i+1)*s.cpus]); err != nil {
			return fmt.Errorf("clear flow cache slot %d: %w", i, err)
		}
	}
	return nil
}

// record merges the per-CPU values of entry i into the flow record r,
// whose key fields are set.
func (s *drainState) record(r *flow.Record, i int, clock *clockMap) {
	var v kflowFlowValue
	for _, c := range s.values[i*s.ncpu : (i+1)*s.ncpu] {
		if c.Packets == 0 {
			continue
		}
		if v.Packets == 0 || c.FirstSeen < v.FirstSeen {
			v.FirstSeen = c.FirstSeen
			v.Tos = c.Tos
		}
		if v.Packets == 0 || c.MinTtl < v.MinTtl {
			v.MinTtl = c.MinTtl
		}
		if c.MaxTtl > v.MaxTtl {
			v.MaxTtl = c.MaxTtl
		}
		if c.LastSeen > v.LastSeen {
			v.LastSeen = c.LastSeen
		}
		v.Packets += c.Packets
		v.Octets += c.Octets
		v.TcpFlags |= c.TcpFlags
		if c.CgroupId != 0 {
			v.CgroupId = c.CgroupId // set by the CPU that created the entry
		}
	}
	s.valueRecord(r, &v, clock)
}

// valueRecord sets the counters of r from one value.
func (s *drainState) valueRecord(r *flow.Record, v *kflowFlowValue, clock *clockMap) {
	r.Packets, r.Octets = v.Packets, v.Octets
	r.Start, r.End = clock.wall(v.FirstSeen), clock.wall(v.LastSeen)
	r.TCPFlags = uint16(v.TcpFlags) & s.flagsMask
	r.TOS, r.MinTTL, r.MaxTTL = v.Tos, v.MinTtl, v.MaxTtl
	r.CgroupID = v.CgroupId
}

// keyRecord fills a record's identity from a kernel flow key.
func keyRecord(r *flow.Record, k *kflowFlowKey) {
	*r = flow.Record{}
	if k.IpVersion == 4 {
		r.Src = netip.AddrFrom4([4]byte(k.SrcAddr[12:16]))
		r.Dst = netip.AddrFrom4([4]byte(k.DstAddr[12:16]))
	} else {
		r.Src = netip.AddrFrom16(k.SrcAddr)
		r.Dst = netip.AddrFrom16(k.DstAddr)
	}
	keyRest(r, k.Protocol, k.SrcPort, k.DstPort, k.IcmpType, k.IcmpCode, k.VlanId, k.InnerVlanId, k.Direction, k.Ifindex)
}

// keyRest fills the fields that the IPv4 and the general flow keys share.
func keyRest(r *flow.Record, proto uint8, sport, dport uint16, icmpType, icmpCode uint8, vlan, inner uint16, dir uint8, ifindex uint32) {
	r.Proto = proto
	r.SrcPort, r.DstPort = sport, dport
	r.ICMPType, r.ICMPCode = icmpType, icmpCode
	r.VLAN, r.InnerVLAN = vlan, inner
	r.Direction = flow.Direction(dir)
	if r.Direction == flow.Egress {
		r.OutIf = ifindex
	} else {
		r.InIf = ifindex
	}
}

// keyRecord4 fills a record's identity from a kernel IPv4 flow key.
func keyRecord4(r *flow.Record, k *kflowFlowKey4) {
	*r = flow.Record{}
	r.Src = netip.AddrFrom4(k.SrcAddr)
	r.Dst = netip.AddrFrom4(k.DstAddr)
	keyRest(r, k.Protocol, k.SrcPort, k.DstPort, k.IcmpType, k.IcmpCode, k.VlanId, k.InnerVlanId, k.Direction, k.Ifindex)
}

// readEvents reads the ring buffer's fallback events and hands them to fn
// as records, at most eventBatch at a time (the slice is reused after fn
// returns).
func (d *Datapath) readEvents(fn func([]flow.Record), clock *clockMap) error {
	s := &d.drain
	recs := s.eventRecs[:0]
	defer func() { s.eventRecs = recs[:0] }()
	flush := func() {
		if len(recs) > 0 {
			fn(recs)
			recs = recs[:0]
		}
	}
	d.ring.SetDeadline(time.Now())
	for {
		err := d.ring.ReadInto(&s.event)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			flush()
			return nil
		}
		if err != nil {
			flush()
			return fmt.Errorf("read flow events: %w", err)
		}
		if len(s.event.RawSample) < int(unsafe.Sizeof(kflowFlowEvent{})) {
			flush()
			return fmt.Errorf("flow event of %d bytes: %w", len(s.event.RawSample), errShortEvent)
		}
		ev := (*kflowFlowEvent)(unsafe.Pointer(&s.event.RawSample[0]))
		recs = append(recs, flow.Record{})
		r := &recs[len(recs)-1]
		keyRecord(r, &ev.Key)
		r.Packets, r.Octets = uint64(ev.Packets), uint64(ev.Octets)
		r.Start = clock.wall(ev.Ts)
		r.End = r.Start
		r.TCPFlags = uint16(ev.TcpFlags) & s.flagsMask
		r.TOS, r.MinTTL, r.MaxTTL = ev.Tos, ev.Ttl, ev.Ttl
		r.CgroupID = ev.CgroupId
		if len(recs) == eventBatch {
			flush()
		}
	}
}

// statsDelta sums the per-CPU counters and returns what grew since the
// previous drain, recording the new totals in the pinned drained_stats.
func (d *Datapath) statsDelta() (Stats, error) {
	total, err := d.StatsTotal()
	if err != nil {
		return Stats{}, err
	}
	delta := total.sub(d.drain.baseline)
	raw := total.raw()
	if err := d.objs.DrainedStats.Put(uint32(0), &raw); err != nil {
		return Stats{}, fmt.Errorf("record drained stats: %w", err)
	}
	d.drain.baseline = total
	return delta, nil
}

// DrainedTotal returns the unkeyed counters handed out by every drain
// since the maps were created, including the drains of a previous daemon
// whose pinned maps this one adopted: the totals as of the last drain.
func (d *Datapath) DrainedTotal() Stats { return d.drain.baseline }

// StatsTotal returns the unkeyed counters summed over CPUs since the maps
// were created.
func (d *Datapath) StatsTotal() (Stats, error) {
	var per []kflowDatapathStats
	if err := d.objs.Stats.Lookup(uint32(0), &per); err != nil {
		return Stats{}, fmt.Errorf("read datapath stats: %w", err)
	}
	var s Stats
	for i := range per {
		s.add(&per[i])
	}
	return s, nil
}
