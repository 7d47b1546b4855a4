// SPDX-License-Identifier: Apache-2.0

// Package cache is the exporter's flow cache: it merges the per-drain deltas
// read from the kernel into flows and decides when each flow is exported and
// why (idle timeout, active timeout, TCP FIN/RST, cache full, shutdown).
//
// Every packet and octet merged into the cache leaves it in exactly one
// exported record: a record's counters are deltas since that flow's previous
// record, and Flush exports whatever is left.
//
// A Cache is not safe for concurrent use; the drain loop owns it. All times
// (the deltas' Start and End and the now passed to Expire) must come from
// the same clock; the cache never reads a clock itself.
package cache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Defaults for the zero fields of Config.
const (
	DefaultIdleTimeout   = 15 * time.Second
	DefaultActiveTimeout = 60 * time.Second
	DefaultEndGrace      = 2 * time.Second
	// DefaultMaxFlows bounds the cache at about 37 MB (see EntryBytes).
	DefaultMaxFlows = 1 << 18
)

// EntryBytes is the size of one cached flow's entry; the index adds 11 to
// 21 bytes per flow depending on its load.
const EntryBytes = 120

// ErrConfig is wrapped by the errors New returns for an invalid Config.
var ErrConfig = errors.New("invalid flow cache config")

// Config sets the expiry policy and size of a Cache. Zero fields take the
// defaults above.
type Config struct {
	// IdleTimeout ends a flow (flow.EndIdle) when no packet was seen for
	// this long.
	IdleTimeout time.Duration
	// ActiveTimeout reports a long flow (flow.EndActive) this long after
	// its first packet since its previous record; the flow stays cached and
	// its next record starts at its next packet.
	ActiveTimeout time.Duration
	// EndGrace is how long a TCP flow stays cached after the last packet of
	// the delta in which FIN or RST was first seen (a delta does not say
	// when the FIN itself passed), so that the last ACKs land in the same
	// record (flow.EndOfFlow). Packets after that start a new flow. It must
	// not exceed IdleTimeout.
	EndGrace time.Duration
	// MaxFlows bounds the number of cached flows. A new flow in a full
	// cache forces out the flow nearest to its deadline
	// (flow.EndLackOfResources).
	MaxFlows int
	// Biflow pairs the two directions of a connection seen on one
	// interface into one flow (RFC 5103): see biflow.go. Every export then
	// emits two records in a row, the initiator's and the responder's.
	Biflow bool
	// Cgroups makes a flow without a cgroup id take the one of the other
	// direction of its connection on the same interface (the datapath
	// reads it on egress only): see pairCgroup.
	Cgroups bool
}

// Stats are the cache's counters, for metrics. Counters only grow; Flows is
// a gauge.
type Stats struct {
	Flows   int    // flows in the cache now
	Created uint64 // flows created
	Deltas  uint64 // deltas merged

	// Records exported, indexed by flow.EndReason. Records[flow.EndActive]
	// counts reports of flows that stay cached; Records[flow.EndLackOfResources]
	// counts flows forced out of a full cache.
	Records [flow.EndLackOfResources + 1]uint64
	// Emptied counts flows removed without a record because they held no
	// counts: their last record was an active-timeout report and no packet
	// followed before they went idle, were forced out or flushed.
	Emptied uint64

	// Conservation: merged = exported + still cached, for packets and octets.
	MergedPackets, MergedOctets     uint64
	ExportedPackets, ExportedOctets uint64
}

// entry is one cached flow: 120 bytes, no pointers. With Config.Biflow
// it is the initiator's direction of a biflow, keyed by it; the
// responder's counters are in the side array (biflow.go).
type entry struct {
	c   counts
	due int64 // unix ns deadline, for reason
	lk  links // wheel list, or free list
	// cgroup is the flow's local socket cgroup id (flow.Record.CgroupID):
	// the last non-zero one a delta carried (the datapath reads it when
	// it creates an entry, and may find no socket then, e.g. for the
	// last ACK of a time-wait socket). A biflow's two directions share
	// the socket and so the cgroup.
	cgroup uint64
	key    key
	reason flow.EndReason // why the flow ends at due
	bi     uint8          // biflow state (biflow.go)
}

// counts are one direction's counters since its flow's last record.
type counts struct {
	packets, octets uint64
	start, last     int64 // unix ns of the first and last packet since the last record
	tcpFlags        uint16
	tos             uint8
	minTTL, maxTTL  uint8
}

func (n *counts) empty() bool { return n.packets == 0 && n.octets == 0 }

// set makes n hold delta d alone.
func (n *counts) set(d *flow.Record, start, end int64) {
	*n = counts{packets: d.Packets, octets: d.Octets, start: start, last: end,
		tcpFlags: d.TCPFlags, tos: d.TOS, minTTL: d.MinTTL, maxTTL: d.MaxTTL}
}

// add merges delta d into n, which holds packets.
func (n *counts) add(d *flow.Record, start, end int64) {
	n.packets += d.Packets
	n.octets += d.Octets
	n.start = min(n.start, start)
	n.last = max(n.last, end)
	n.tcpFlags |= d.TCPFlags
	n.minTTL = min(n.minTTL, d.MinTTL)
	n.maxTTL = max(n.maxTTL, d.MaxTTL)
}

// merge sets n to delta d when it is empty, and adds d otherwise.
func (n *counts) merge(d *flow.Record, start, end int64) {
	if n.empty() {
		n.set(d, start, end)
	} else {
		n.add(d, start, end)
	}
}

// fill writes n's counters and times into r.
func (n *counts) fill(r *flow.Record) {
	r.Packets, r.Octets = n.packets, n.octets
	r.Start, r.End = time.Unix(0, n.start).UTC(), time.Unix(0, n.last).UTC()
	r.TCPFlags, r.TOS, r.MinTTL, r.MaxTTL = n.tcpFlags, n.tos, n.minTTL, n.maxTTL
}

// Cache is the flow cache. Create it with New.
type Cache struct {
	idle, active, grace int64 // ns
	maxFlows            int

	seed   maphash.Seed
	ix     index
	chunks [][]entry
	biflow bool
	// cgroups: Config.Cgroups.
	cgroups bool
	rev     [][]counts // with biflow: the responders' counters, as chunks
	used    uint32     // entries ever handed out from chunks
	free    uint32     // free list head or noEntry

	wheel   [wheelSize]links
	cursor  int64 // ticks before cursor have been fully expired
	clocked bool  // cursor has been set from a time
	now     int64 // latest now seen by Expire, for deltas without times

	rec, rrec flow.Record // handed to emit; reused
	stats     Stats
}

// New returns an empty cache with the policy in cfg.
func New(cfg Config) (*Cache, error) {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ActiveTimeout == 0 {
		cfg.ActiveTimeout = DefaultActiveTimeout
	}
	if cfg.EndGrace == 0 {
		cfg.EndGrace = min(DefaultEndGrace, cfg.IdleTimeout)
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = DefaultMaxFlows
	}
	switch {
	case cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("idle timeout %v: %w", cfg.IdleTimeout, ErrConfig)
	case cfg.ActiveTimeout < 0:
		return nil, fmt.Errorf("active timeout %v: %w", cfg.ActiveTimeout, ErrConfig)
	case cfg.EndGrace < 0:
		return nil, fmt.Errorf("end-of-flow grace %v: %w", cfg.EndGrace, ErrConfig)
	case cfg.EndGrace > cfg.IdleTimeout:
		return nil, fmt.Errorf("end-of-flow grace %v exceeds idle timeout %v: %w",
			cfg.EndGrace, cfg.IdleTimeout, ErrConfig)
	case cfg.MaxFlows < 0 || cfg.MaxFlows > maxFlows:
		return nil, fmt.Errorf("max flows %d out of range 1..%d: %w", cfg.MaxFlows, maxFlows, ErrConfig)
	}
	c := &Cache{
		idle:     int64(cfg.IdleTimeout),
		active:   int64(cfg.ActiveTimeout),
		grace:    int64(cfg.EndGrace),
		maxFlows: cfg.MaxFlows,
		seed:     maphash.MakeSeed(),
		biflow:   cfg.Biflow,
		cgroups:  cfg.Cgroups,
	}
	c.reset()
	return c, nil
}

func (c *Cache) reset() {
	c.ix.init(minSlots)
	c.chunks = nil
	c.rev = nil
	c.used = 0
	c.free = noEntry
	c.initWheel()
}

// Len returns the number of cached flows.
func (c *Cache) Len() int { return c.ix.n }

// Stats returns a snapshot of the cache's counters.
func (c *Cache) Stats() Stats {
	s := c.stats
	s.Flows = c.ix.n
	return s
}

func (c *Cache) hash(k *key) uint32 {
	return uint32(maphash.Bytes(c.seed, k[:]))
}

// Merge folds the deltas of one drain into the cache. Deltas carry counters
// since the previous drain; their Start and End are the first and last
// packet of the delta, and their EndReason is ignored. Deltas with neither
// packets nor octets are skipped.
//
// Merge calls emit for the records that merging forces out: a flow pushed
// out of a full cache, and a flow whose deadline passed before the delta's
// first packet (so the result does not depend on whether Expire ran first).
// The record is only valid during the call; emit must not be nil and must
// not call the cache.
func (c *Cache) Merge(deltas []flow.Record, emit func(*flow.Record)) {
	for i := range deltas {
		c.merge(&deltas[i], emit)
	}
}

// MergeOne is Merge for one delta, for a caller that merges deltas as
// they come instead of collecting them first.
func (c *Cache) MergeOne(d *flow.Record, emit func(*flow.Record)) { c.merge(d, emit) }

func (c *Cache) merge(d *flow.Record, emit func(*flow.Record)) {
	if e := c.mergeDelta(d, emit); e != nil && c.cgroups && (e.cgroup == 0 || d.CgroupID != 0) {
		c.pairCgroup(e)
	}
}

// pairCgroup gives a flow without a cgroup the cgroup of the other
// direction of its connection on the same interface, or gives that
// direction e's: the datapath reads the cgroup of egress packets only
// (the sending socket's), so an ingress flow of a local socket learns it
// from the socket's egress flow. Unidirectional flows only; a biflow's
// entry holds both directions.
func (c *Cache) pairCgroup(e *entry) {
	var rk key
	if c.biflow || !e.key.reverse(&rk) {
		return
	}
	idx, _, found := c.find(&rk, c.hash(&rk))
	if !found {
		return
	}
	switch r := c.entry(idx); {
	case e.cgroup == 0:
		e.cgroup = r.cgroup
	case r.cgroup == 0:
		r.cgroup = e.cgroup
	}
}

// mergeDelta merges d and returns the entry that holds it, or nil when
// it went into a biflow's responder.
func (c *Cache) mergeDelta(d *flow.Record, emit func(*flow.Record)) *entry {
	if d.Packets == 0 && d.Octets == 0 {
		return nil
	}
	start, end := c.times(d)
	if !c.clocked {
		c.cursor, c.clocked = tickOf(start), true
	}
	var k key
	k.set(d)
	h := c.hash(&k)
	c.stats.Deltas++
	c.stats.MergedPackets += d.Packets
	c.stats.MergedOctets += d.Octets
	synNoAck := d.TCPFlags&flow.TCPSynNoAck != 0
	d.TCPFlags &^= flow.TCPSynNoAck // never stored

	idx, pos, found := c.find(&k, h)
	if !found && c.biflow && c.mergeReverse(d, &k, start, end, synNoAck, emit) {
		return nil
	}
	if found {
		e := c.entry(idx)
		if e.due <= start {
			// The flow ended (or its active report fell due) before this
			// delta's first packet.
			if e.reason != flow.EndActive {
				c.stats.Created++
			}
			c.export(idx, e, e.reason, emit)
			c.restart(idx, e, d, start, end, synNoAck)
			return e
		}
		if d.CgroupID != 0 {
			e.cgroup = d.CgroupID
		}
		if c.empty(idx, e) {
			// First packets after an active-timeout report.
			old := e.due
			e.c.set(d, start, end)
			c.markSyn(e, false, synNoAck)
			e.reason = flow.EndUnknown
			c.reschedule(idx, e, old)
			return e
		}
		e.c.merge(d, start, end)
		c.markSyn(e, false, synNoAck)
		c.reschedule(idx, e, e.due)
		c.reconsider(idx, e, h)
		return e
	}

	if c.ix.n >= c.maxFlows {
		c.evict(emit)
		_, pos, _ = c.find(&k, h) // eviction moved slots
	}
	idx = c.alloc()
	e := c.entry(idx)
	e.key = k
	c.restart(idx, e, d, start, end, synNoAck)
	c.insertAt(pos, h, idx)
	c.schedule(idx, e)
	c.stats.Created++
	return e
}

// times returns the delta's first and last packet times in unix ns. A
// missing time is taken from the other one, or from the latest Expire.
func (c *Cache) times(d *flow.Record) (start, end int64) {
	switch {
	case !d.Start.IsZero() && !d.End.IsZero():
		start, end = d.Start.UnixNano(), d.End.UnixNano()
	case !d.Start.IsZero():
		start = d.Start.UnixNano()
		end = start
	case !d.End.IsZero():
		end = d.End.UnixNano()
		start = end
	default:
		start, end = c.now, c.now
	}
	if end < start {
		start, end = end, start
	}
	return start, end
}

// restart makes e hold delta d alone, as the first delta of a record
// (with biflow, of a new biflow whose initiator d is), and sets its
// deadline. It leaves the entry's wheel links alone.
func (c *Cache) restart(idx uint32, e *entry, d *flow.Record, start, end int64, synNoAck bool) {
	e.c.set(d, start, end)
	e.cgroup = d.CgroupID
	if c.biflow {
		*c.revOf(idx) = counts{}
		e.bi = 0
		c.markSyn(e, false, synNoAck)
	}
	e.reason = flow.EndUnknown
	c.setDue(idx, e)
}

// reschedule sets e's deadline after a merge and relinks it when the
// deadline moved earlier than old.
func (c *Cache) reschedule(idx uint32, e *entry, old int64) {
	c.setDue(idx, e)
	if e.due < old {
		c.unlink(e)
		c.schedule(idx, e)
	}
}

// setDue computes e's deadline. Once FIN or RST has been seen the deadline
// is fixed at the end of that delta plus the grace, and the active timeout
// no longer applies: the flow ends within the grace anyway. A biflow's
// deadline is its pair's: idle after the last packet of either direction,
// active from the first, ended by FIN or RST in either.
func (c *Cache) setDue(idx uint32, e *entry) {
	if e.reason == flow.EndOfFlow {
		return
	}
	start, last, flags := c.pairTimes(idx, e)
	if e.key.proto() == flow.ProtoTCP && flags&(flow.TCPFin|flow.TCPRst) != 0 {
		e.due = last + c.grace
		e.reason = flow.EndOfFlow
		return
	}
	e.due, e.reason = last+c.idle, flow.EndIdle
	if a := start + c.active; a < e.due {
		e.due, e.reason = a, flow.EndActive
	}
}

// empty reports whether flow idx holds no counts (in either direction).
func (c *Cache) empty(idx uint32, e *entry) bool {
	return e.c.empty() && (!c.biflow || c.revOf(idx).empty())
}

// export hands e's record to emit with the given end reason and counts it
// (with biflow, the initiator's record and then the responder's).
// Entries without packets or octets export nothing.
func (c *Cache) export(idx uint32, e *entry, reason flow.EndReason, emit func(*flow.Record)) {
	if c.empty(idx, e) {
		c.stats.Emptied++
		return
	}
	r := &c.rec
	*r = flow.Record{}
	e.key.fill(r)
	e.c.fill(r)
	r.CgroupID = e.cgroup
	r.EndReason = reason
	c.stats.Records[reason]++
	c.stats.ExportedPackets += e.c.packets
	c.stats.ExportedOctets += e.c.octets
	if !c.biflow {
		emit(r)
		return
	}
	e.bi |= biExported
	rv := c.revOf(idx)
	rr := &c.rrec
	*rr = flow.Record{}
	e.key.fillReverse(rr)
	rv.fill(rr)
	rr.CgroupID = e.cgroup
	if rv.empty() {
		rr.Start, rr.End = time.Time{}, time.Time{}
	}
	if e.c.empty() {
		r.Start, r.End = time.Time{}, time.Time{}
	}
	rr.EndReason = reason
	c.stats.ExportedPackets += rv.packets
	c.stats.ExportedOctets += rv.octets
	emit(r)
	emit(rr)
}

// clearCounts empties flow idx's counters (both directions), after an
// active-timeout report.
func (c *Cache) clearCounts(idx uint32, e *entry) {
	e.c = counts{}
	if c.biflow {
		*c.revOf(idx) = counts{}
	}
}

// remove deletes entry idx, which must already be out of the wheel.
func (c *Cache) remove(idx uint32, e *entry) {
	c.ix.remove(c.hash(&e.key), idx)
	c.release(idx)
}

// Expire exports the flows whose deadline is at or before now, with the
// reason of that deadline. Flows at their active timeout are reported and
// stay cached; the others leave the cache. The record is only valid during
// the call; emit must not be nil and must not call the cache.
//
// Expire visits only the wheel buckets between the previous call and now,
// so its cost follows the number of flows falling due, not the cache size.
func (c *Cache) Expire(now time.Time, emit func(*flow.Record)) {
	n := now.UnixNano()
	c.now = n
	if !c.clocked {
		c.cursor, c.clocked = tickOf(n), true
	}
	hi := max(tickOf(n), c.cursor)
	lo := max(c.cursor, hi-wheelMask)
	// Set the cursor first: entries rescheduled to a tick this loop has
	// passed land in the last bucket it visits.
	c.cursor = hi
	for t := lo; t <= hi; t++ {
		c.expireBucket(int(t&wheelMask), n, emit)
	}
}

func (c *Cache) expireBucket(b int, now int64, emit func(*flow.Record)) {
	head := &c.wheel[b]
	h := uint32(headBase + b)
	x := head.next
	if x == h {
		return
	}
	// Detach the whole list; every entry is then either removed or
	// scheduled again (possibly into this bucket, after the detached part).
	*head = links{prev: h, next: h}
	for x != h {
		e := c.entry(x)
		next := e.lk.next
		switch {
		case e.due > now:
			c.schedule(x, e)
		case e.reason == flow.EndActive:
			c.export(x, e, flow.EndActive, emit)
			_, last, _ := c.pairTimes(x, e)
			c.clearCounts(x, e)
			e.due, e.reason = last+c.idle, flow.EndIdle
			c.schedule(x, e)
		default:
			c.export(x, e, e.reason, emit)
			c.remove(x, e)
		}
		x = next
	}
}

// evict forces one flow out of the cache to make room: the flow nearest to
// its deadline, found from the cursor on. Entries found in a bucket earlier
// than their deadline (the wheel is lazy) are moved on a few times before
// one is taken anyway.
func (c *Cache) evict(emit func(*flow.Record)) {
	moves := 0
	for t := c.cursor; ; t++ {
		b := int(t & wheelMask)
		head := &c.wheel[b]
		for head.next != uint32(headBase+b) {
			idx := head.next
			e := c.entry(idx)
			if moves < 8 && tickOf(e.due) > t {
				moves++
				c.unlink(e)
				c.schedule(idx, e)
				continue
			}
			c.unlink(e)
			reason := flow.EndLackOfResources
			if e.due <= c.now && e.reason != flow.EndActive {
				reason = e.reason // it had ended already; Expire had not seen it yet
			}
			c.export(idx, e, reason, emit)
			c.remove(idx, e)
			return
		}
	}
}

// Flush exports every cached flow with flow.EndForced and empties the
// cache, releasing its memory. Call it at shutdown after the final drain.
// The record is only valid during the call; emit must not be nil and must
// not call the cache.
func (c *Cache) Flush(emit func(*flow.Record)) {
	for i := range wheelSize {
		b := int((c.cursor + int64(i)) & wheelMask)
		h := uint32(headBase + b)
		for x := c.wheel[b].next; x != h; {
			e := c.entry(x)
			next := e.lk.next
			c.export(x, e, flow.EndForced, emit)
			x = next
		}
	}
	c.reset()
}

// Each hands every cached flow with packets to fn, as the record it would
// export now (counters since its previous record, EndReason unknown),
// without changing anything; with biflow, each direction that has packets
// as a record of its own. The record is only valid during the call.
func (c *Cache) Each(fn func(*flow.Record)) {
	var r flow.Record
	for i := range wheelSize {
		h := uint32(headBase + i)
		for x := c.wheel[i].next; x != h; x = c.entry(x).lk.next {
			e := c.entry(x)
			if !e.c.empty() {
				r = flow.Record{}
				e.key.fill(&r)
				e.c.fill(&r)
				r.CgroupID = e.cgroup
				fn(&r)
			}
			if c.biflow {
				if rv := c.revOf(x); !rv.empty() {
					r = flow.Record{}
					e.key.fillReverse(&r)
					rv.fill(&r)
					r.CgroupID = e.cgroup
					fn(&r)
				}
			}
		}
	}
}
