// SPDX-License-Identifier: Apache-2.0

package cache

import "github.com/kflow-dev/kflow/exporter/flow"

// Biflows (Config.Biflow, RFC 5103). A biflow is one entry keyed by its
// initiator's direction (the entry's counts) with the responder's counts
// at the same entry number in a side array, c.rev, which exists only in
// biflow mode: the entries of the unidirectional cache keep their size.
// The responder's direction is the key reversed: addresses, ports and
// interfaces swapped, direction flipped (A to B leaving eth0 pairs with B
// to A arriving on eth0), ICMP echo request with echo reply.
//
// The initiator is decided from every delta of either direction merged
// before the biflow's first record (a direction may come in several
// deltas of one drain: the datapath's per-CPU flow cache, ring buffer
// events), in whatever order: the direction that sent a SYN without ACK
// (flow.TCPSynNoAck, marked by the datapath) wins; otherwise the one
// whose first packet came first; when both came in the same clock tick,
// an ICMP request rather than its reply, the one from the higher port
// (clients use ephemeral ports). A delta of the responder after the
// biflow ended starts a new biflow with it as the initiator.

// Bits of entry.bi.
const (
	biFwdSyn   = 1 << iota // the initiator's direction sent a SYN without ACK
	biRevSyn               // the responder's did
	biRevSeen              // the responder's direction has been seen
	biExported             // a record of the biflow was exported: its orientation stays
)

func (c *Cache) revOf(idx uint32) *counts {
	return &c.rev[idx>>chunkBits][idx&chunkMask]
}

// markSyn records that a direction sent a SYN without ACK.
func (c *Cache) markSyn(e *entry, responder, synNoAck bool) {
	switch {
	case !c.biflow || !synNoAck:
	case responder:
		e.bi |= biRevSyn
	default:
		e.bi |= biFwdSyn
	}
}

// pairTimes returns the first and last packet times and the TCP flags of
// flow idx: of both directions of a biflow.
func (c *Cache) pairTimes(idx uint32, e *entry) (start, last int64, flags uint16) {
	start, last, flags = e.c.start, e.c.last, e.c.tcpFlags
	if !c.biflow {
		return start, last, flags
	}
	rv := c.revOf(idx)
	switch {
	case rv.empty():
	case e.c.empty():
		start, last, flags = rv.start, rv.last, rv.tcpFlags
	default:
		start, last, flags = min(start, rv.start), max(last, rv.last), flags|rv.tcpFlags
	}
	return start, last, flags
}

// mergeReverse merges delta d, whose key is k, into the biflow whose
// responder it is, when the cache holds one, and reports whether it did.
func (c *Cache) mergeReverse(d *flow.Record, k *key, start, end int64, synNoAck bool, emit func(*flow.Record)) bool {
	var rk key
	if !k.reverse(&rk) {
		return false
	}
	rh := c.hash(&rk)
	idx, _, found := c.find(&rk, rh)
	if !found {
		return false
	}
	e := c.entry(idx)
	rv := c.revOf(idx)
	if e.due <= start {
		// The biflow ended (or its active report fell due) before this
		// delta's first packet.
		if e.reason != flow.EndActive {
			// A new biflow, which this delta's direction opens.
			c.stats.Created++
			c.export(idx, e, e.reason, emit)
			c.rekey(idx, e, rh, k)
			c.restart(idx, e, d, start, end, synNoAck)
			return true
		}
		c.export(idx, e, e.reason, emit)
		c.clearCounts(idx, e)
		if d.CgroupID != 0 {
			e.cgroup = d.CgroupID
		}
		rv.set(d, start, end)
		c.markSyn(e, true, synNoAck)
		e.reason = flow.EndUnknown
		c.setDue(idx, e)
		return true
	}
	if d.CgroupID != 0 {
		e.cgroup = d.CgroupID
	}
	old := e.due
	rv.merge(d, start, end)
	c.markSyn(e, true, synNoAck)
	e.bi |= biRevSeen
	if e.bi&biExported == 0 && c.responderInitiated(e, rv) {
		c.flip(idx, e, rh, k)
	}
	if e.reason == flow.EndActive || e.reason == flow.EndIdle {
		e.reason = flow.EndUnknown // recomputed for the pair
	}
	c.reschedule(idx, e, old)
	return true
}

// reconsider applies the initiator rules again after a delta of the
// initiator's direction of biflow idx (whose key hashes to h), until its
// first record: that delta may hold its first packet or its SYN.
func (c *Cache) reconsider(idx uint32, e *entry, h uint32) {
	if !c.biflow || e.bi&biRevSeen == 0 || e.bi&biExported != 0 || !c.responderInitiated(e, c.revOf(idx)) {
		return
	}
	var rk key
	if e.key.reverse(&rk) {
		c.flip(idx, e, h, &rk)
	}
}

// responderInitiated applies the initiator rules to what both directions
// of a biflow showed so far: whether the responder, not the entry's key,
// opened it.
func (c *Cache) responderInitiated(e *entry, rv *counts) bool {
	fwdSyn, revSyn := e.bi&biFwdSyn != 0, e.bi&biRevSyn != 0
	switch {
	case revSyn != fwdSyn:
		return revSyn
	case rv.start != e.c.start:
		return rv.start < e.c.start
	case e.key.isICMP():
		// In the same tick: the request came first.
		return flow.ICMPIsRequest(e.key.proto(), e.key.icmpType(true))
	}
	return e.key.dstPort() > e.key.srcPort()
}

// flip makes the responder of flow idx, indexed under hash h, its
// initiator: the counts swap and the entry is keyed by k, the
// responder's key.
func (c *Cache) flip(idx uint32, e *entry, h uint32, k *key) {
	rv := c.revOf(idx)
	e.c, *rv = *rv, e.c
	bi := e.bi &^ (biFwdSyn | biRevSyn)
	if e.bi&biFwdSyn != 0 {
		bi |= biRevSyn
	}
	if e.bi&biRevSyn != 0 {
		bi |= biFwdSyn
	}
	e.bi = bi
	c.rekey(idx, e, h, k)
}

// rekey keys entry idx, now indexed under hash h, by k.
func (c *Cache) rekey(idx uint32, e *entry, h uint32, k *key) {
	c.ix.remove(h, idx)
	e.key = *k
	nh := c.hash(k)
	_, pos, _ := c.find(k, nh)
	c.insertAt(pos, nh, idx)
}
