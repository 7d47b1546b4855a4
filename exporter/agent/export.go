// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/ledger"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// encoder is what a collector worker needs of a wire format.
type encoder interface {
	// encode packs records into messages and hands each to send.
	encode(recs []flow.Record, send func(msg []byte, records int) error) (int, error)
	// restart begins a new transport session (templates first).
	restart()
	// forceTemplates makes the next message carry templates and options
	// data (the counters' last values at shutdown).
	forceTemplates()
	setInterfaces([]wire.Interface)
	setIgnored(packets, octets uint64)
	// carries reports whether the format can carry the record (NetFlow
	// v5 has no IPv6): the messages hold the records it carries, in order.
	carries(r *flow.Record) bool
	setFiltered([]wire.FilterCount)
	// setMeteringInit sets when the datapath's counters began, for the
	// formats whose statistics records say it (IE 160 in IPFIX and, as an
	// IPFIX element, in NetFlow v9).
	setMeteringInit(time.Time)
}

type ipfixEncoder struct{ e *ipfix.Encoder }

func (x ipfixEncoder) encode(recs []flow.Record, send func([]byte, int) error) (int, error) {
	return x.e.Encode(recs, func(p ipfix.Packet) error { return send(p.Bytes, p.Records) })
}
func (x ipfixEncoder) restart()                           { x.e.Reset() }
func (x ipfixEncoder) forceTemplates()                    { x.e.ForceTemplates() }
func (x ipfixEncoder) setInterfaces(ifs []wire.Interface) { x.e.SetInterfaces(ifs) }
func (x ipfixEncoder) setIgnored(packets, octets uint64)  { x.e.SetIgnored(packets, octets) }
func (x ipfixEncoder) carries(*flow.Record) bool          { return true }
func (x ipfixEncoder) setFiltered(fs []wire.FilterCount)  { x.e.SetFiltered(fs) }
func (x ipfixEncoder) setMeteringInit(t time.Time)        { x.e.SetSystemInit(t) }

type v9Encoder struct{ e *netflow9.Encoder }

func (x v9Encoder) encode(recs []flow.Record, send func([]byte, int) error) (int, error) {
	return x.e.Encode(recs, func(p netflow9.Packet) error { return send(p.Bytes, p.Records) })
}
func (x v9Encoder) restart()                           { x.e.ForceTemplates() }
func (x v9Encoder) forceTemplates()                    { x.e.ForceTemplates() }
func (x v9Encoder) setInterfaces(ifs []wire.Interface) { x.e.SetInterfaces(ifs) }
func (x v9Encoder) setIgnored(packets, octets uint64)  { x.e.SetIgnored(packets, octets) }
func (x v9Encoder) carries(*flow.Record) bool          { return true }
func (x v9Encoder) setFiltered(fs []wire.FilterCount)  { x.e.SetFiltered(fs) }
func (x v9Encoder) setMeteringInit(t time.Time)        { x.e.SetMeteringInit(t) }

type v5Encoder struct{ e *netflow5.Encoder }

func (x v5Encoder) encode(recs []flow.Record, send func([]byte, int) error) (int, error) {
	return x.e.Encode(recs, func(p netflow5.Packet) error { return send(p.Bytes, p.Records) })
}
func (x v5Encoder) restart()                       {}
func (x v5Encoder) forceTemplates()                {}
func (x v5Encoder) setInterfaces([]wire.Interface) {}
func (x v5Encoder) setIgnored(uint64, uint64)      {}
func (x v5Encoder) carries(r *flow.Record) bool    { return r.Src.Is4() }
func (x v5Encoder) setFiltered([]wire.FilterCount) {}
func (x v5Encoder) setMeteringInit(time.Time)      {}

func newEncoder(t transport.Target, cfg *Config, init time.Time) (encoder, error) {
	switch t.Format {
	case transport.IPFIX:
		e, err := ipfix.NewEncoder(ipfix.Config{
			ObservationDomain: cfg.ObservationDomain, MTU: cfg.MTU, Stream: t.TCP,
			TemplateRefresh: cfg.TemplateRefresh, SamplingInterval: cfg.Datapath.Sampling, SystemInit: init,
			SamplingRandom: !cfg.Datapath.SamplingCount, SequenceAllRecords: cfg.IPFIXSequenceAll,
			CaptureFilter: cfg.Datapath.Filter != "", Biflow: cfg.Biflow, Cgroups: cfg.Datapath.Cgroups,
		})
		return ipfixEncoder{e}, err
	case transport.NetFlowV9, transport.NetFlowV5:
		if cfg.Biflow {
			return nil, fmt.Errorf("%w: biflows (RFC 5103) exist in IPFIX only; NetFlow v9 and v5 have no reverse elements: use ipfix:// collectors", ErrBiflowFormat)
		}
	}
	switch t.Format {
	case transport.NetFlowV9:
		e, err := netflow9.NewEncoder(netflow9.Config{
			SourceID: cfg.ObservationDomain, MTU: cfg.MTU, TemplateRefresh: cfg.TemplateRefresh,
			SamplingInterval: cfg.Datapath.Sampling, SamplingRandom: !cfg.Datapath.SamplingCount, SystemInit: init,
			CaptureFilter: cfg.Datapath.Filter != "", Cgroups: cfg.Datapath.Cgroups,
		})
		return v9Encoder{e}, err
	case transport.NetFlowV5:
		e, err := netflow5.NewEncoder(netflow5.Config{
			EngineID: uint8(cfg.ObservationDomain), MTU: cfg.MTU, SamplingInterval: cfg.Datapath.Sampling,
			SamplingRandom: !cfg.Datapath.SamplingCount, SystemInit: init,
		})
		return v5Encoder{e}, err
	}
	return nil, fmt.Errorf("collector %s: %w", t, transport.ErrBadTarget)
}

// batch is what the drain loop hands every collector after a drain.
type batch struct {
	recs           []flow.Record // shared read-only by every worker
	ignoredPackets uint64        // totals since start
	ignoredOctets  uint64
	ifaces         []wire.Interface   // non-nil when the interface set changed
	filtered       []wire.FilterCount // capture filter totals; shared read-only
	// final is the shutdown's batch: its messages carry the options
	// data, so collectors get the counters' last values.
	final bool
}

// CollectorStats are one collector's counters.
type CollectorStats struct {
	Target      string
	RecordsSent uint64 // flow records in messages the transport took
	// PacketsSent and OctetsSent are what those records counted.
	PacketsSent, OctetsSent uint64
	MessagesSent            uint64
	SendErrors              uint64 // messages the transport refused
	RecordsLost             uint64 // records in refused messages or dropped batches
	// PacketsLost and OctetsLost are the packets and octets those lost
	// records counted: what a ledger of packets needs.
	PacketsLost, OctetsLost uint64
	QueueDrops              uint64 // batches dropped because the collector was slow
	NotExportable           uint64 // records the format cannot carry (IPv6 in v5)
	// Undelivered are the records (in RecordsLost) of messages a TCP
	// collector never acknowledged before the connection ended.
	Undelivered uint64
	// PacketsUnexported and OctetsUnexported are what previous exporters
	// drained from the kernel but never handed to this collector (they
	// ended without their final export: SIGKILL, crash), as the pinned
	// ledger showed; since the pinned maps were created.
	PacketsUnexported, OctetsUnexported uint64
}

// worker sends batches to one collector from its own goroutine, so a slow
// or dead collector never blocks the drain.
type worker struct {
	target transport.Target
	enc    encoder
	conn   transport.Conn
	queue  chan batch
	log    *slog.Logger
	logLim rateLimit
	// biflow: a batch's records come in pairs (initiator, responder),
	// each pair one exported record.
	biflow bool

	recordsSent, messagesSent, sendErrors  atomic.Uint64
	recordsLost, queueDrops, notExportable atomic.Uint64
	packetsLost, octetsLost                atomic.Uint64
	undeliveredRecords                     atomic.Uint64
	packetsSent, octetsSent                atomic.Uint64
	warnedV5                               bool
	// acct is the collector's entry in the pinned ledger (nil without
	// pinning): what it was handed, so that a successor of a killed
	// exporter knows what never reached it.
	acct *ledger.Account

	// Encoded messages of the batch being sent.
	arena  []byte
	msgs   [][]byte
	counts []int
	// carried are the batch's records the format carries, in message
	// order, so a lost message's packets are known.
	carried []*flow.Record
	// hist are the last messages sent on the current TCP connection, so
	// that what the collector never acknowledged when it ended is counted
	// lost (see transport.Undeliverer).
	hist      []sentMsg
	histBytes int
}

// sentMsg is a message sent on a TCP connection: its size and the records,
// packets and octets it carried.
type sentMsg struct {
	bytes, records int
	counts         ledger.Counts
}

// histLimit bounds the bytes of messages remembered per TCP connection:
// more than a socket's send queue holds unacknowledged (Linux's default
// ceiling, net.ipv4.tcp_wmem, is 4 MiB).
const histLimit = 16 << 20

// remember keeps a sent message for undelivered.
func (w *worker) remember(m sentMsg) {
	w.hist = append(w.hist, m)
	w.histBytes += m.bytes
	drop := 0
	for drop < len(w.hist)-1 && w.histBytes-w.hist[drop].bytes >= histLimit {
		w.histBytes -= w.hist[drop].bytes
		drop++
	}
	if drop > 0 {
		w.hist = append(w.hist[:0], w.hist[drop:]...)
	}
}

// undelivered counts as lost the last messages of a TCP connection that
// ended with u bytes of them unacknowledged: whole or in part, the
// collector cannot have decoded them.
func (w *worker) undelivered(u int64) {
	var recs int
	var c ledger.Counts
	for u > 0 && len(w.hist) > 0 {
		m := w.hist[len(w.hist)-1]
		w.hist = w.hist[:len(w.hist)-1]
		w.histBytes -= m.bytes
		u -= int64(m.bytes)
		recs += m.records
		c.Packets += m.counts.Packets
		c.Octets += m.counts.Octets
	}
	if recs == 0 && c.Packets == 0 {
		return
	}
	w.recordsLost.Add(uint64(recs))
	w.packetsLost.Add(c.Packets)
	w.octetsLost.Add(c.Octets)
	w.undeliveredRecords.Add(uint64(recs))
	if w.logLim.allow(time.Now()) {
		w.log.Warn("connection to collector ended with messages it never acknowledged: their records are lost",
			"records", recs, "packets", c.Packets, "unremembered_bytes", max(0, u))
	}
}

// perRecord is how many of a batch's records make one exported record.
func (w *worker) perRecord() int {
	if w.biflow {
		return 2
	}
	return 1
}

// lose counts records as lost, with their packets and octets (with
// biflows, records come in pairs that make one record each).
func (w *worker) lose(recs []*flow.Record) {
	var p, o uint64
	for _, r := range recs {
		p += r.Packets
		o += r.Octets
	}
	w.recordsLost.Add(uint64(len(recs) / w.perRecord()))
	w.packetsLost.Add(p)
	w.octetsLost.Add(o)
}

// loseAll counts a whole batch as lost.
func (w *worker) loseAll(recs []flow.Record) {
	var p, o uint64
	for i := range recs {
		p += recs[i].Packets
		o += recs[i].Octets
	}
	w.recordsLost.Add(uint64(len(recs) / w.perRecord()))
	w.packetsLost.Add(p)
	w.octetsLost.Add(o)
}

func newWorker(ctx context.Context, t transport.Target, cfg *Config, init time.Time) (*worker, error) {
	enc, err := newEncoder(t, cfg, init)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", t, err)
	}
	conn, err := transport.Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	return &worker{target: t, enc: enc, conn: conn, queue: make(chan batch, cfg.QueueBatches), biflow: cfg.Biflow,
		log: cfg.Logger.With("collector", t.String()), logLim: rateLimit{every: 10 * time.Second}}, nil
}

// offer queues a batch without blocking; a full queue drops it, counted.
func (w *worker) offer(b batch) {
	select {
	case w.queue <- b:
	default:
		w.queueDrops.Add(1)
		w.loseAll(b.recs)
		w.hand(counts(b.recs))
		if w.logLim.allow(time.Now()) {
			w.log.Warn("collector too slow: dropped a batch of records", "records", len(b.recs), "dropped_batches", w.queueDrops.Load())
		}
	}
}

func (w *worker) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for b := range w.queue {
		w.send(b)
	}
	w.conn.Close()
}

func (w *worker) send(b batch) {
	if b.ifaces != nil {
		w.enc.setInterfaces(b.ifaces)
	}
	w.enc.setIgnored(b.ignoredPackets, b.ignoredOctets)
	w.enc.setFiltered(b.filtered)
	// Everything in the batch is handed over (sent, or counted lost) by
	// the end; messages are written to the ledger as they go, so that a
	// kill in the middle of a batch is counted to the message.
	total, handed := counts(b.recs), ledger.Counts{}
	hand := func(c ledger.Counts) {
		w.hand(c)
		handed.Packets += c.Packets
		handed.Octets += c.Octets
	}
	defer func() {
		w.hand(ledger.Counts{Packets: total.Packets - handed.Packets, Octets: total.Octets - handed.Octets})
	}()
	fresh, err := w.conn.Ensure()
	if err != nil {
		w.loseAll(b.recs)
		if w.logLim.allow(time.Now()) {
			w.log.Warn("collector unreachable: records not sent", "records", len(b.recs), "err", err)
		}
		return
	}
	if fresh {
		w.hist, w.histBytes = w.hist[:0], 0
		w.enc.restart()
		w.log.Info("connected to collector")
	}
	if b.final {
		w.enc.forceTemplates()
	}
	// Encode the whole batch first (the encoder reuses its buffer: copy
	// each message), then send with as few system calls as possible.
	w.arena, w.msgs, w.counts = w.arena[:0], w.msgs[:0], w.counts[:0]
	_, err = w.enc.encode(b.recs, func(msg []byte, n int) error {
		start := len(w.arena)
		w.arena = append(w.arena, msg...)
		w.msgs = append(w.msgs, w.arena[start:len(w.arena):len(w.arena)])
		w.counts = append(w.counts, n)
		return nil
	})
	w.carried = w.carried[:0]
	for i := range b.recs {
		if w.enc.carries(&b.recs[i]) {
			w.carried = append(w.carried, &b.recs[i])
		}
	}
	first := make([]int, len(w.counts)+1) // message i holds carried[first[i]:first[i+1]]
	for i, c := range w.counts {
		first[i+1] = min(first[i]+c*w.perRecord(), len(w.carried))
	}
	// The arena may have moved while growing: re-slice the messages.
	off := 0
	for i := range w.msgs {
		l := len(w.msgs[i])
		w.msgs[i] = w.arena[off : off+l : off+l]
		off += l
	}
	for sent := 0; sent < len(w.msgs); {
		n, serr := w.conn.SendBatch(w.msgs[sent:])
		n = max(0, min(n, len(w.msgs)-sent))
		for _, c := range w.counts[sent : sent+n] {
			w.messagesSent.Add(1)
			w.recordsSent.Add(uint64(c))
		}
		if n > 0 {
			c := countsOf(w.carried[first[sent]:first[sent+n]])
			w.packetsSent.Add(c.Packets)
			w.octetsSent.Add(c.Octets)
			hand(c)
			if w.target.TCP {
				for i := sent; i < sent+n; i++ {
					w.remember(sentMsg{bytes: len(w.msgs[i]), records: w.counts[i], counts: countsOf(w.carried[first[i]:first[i+1]])})
				}
			}
		}
		sent += n
		if serr == nil {
			break
		}
		// The message at sent failed: count it lost and go on with the
		// rest (UDP); a TCP Conn closed itself, so the rest fail too.
		w.sendErrors.Add(1)
		w.lose(w.carried[first[sent]:first[sent+1]])
		hand(countsOf(w.carried[first[sent]:first[sent+1]]))
		if u, ok := w.conn.(transport.Undeliverer); ok {
			w.undelivered(u.Undelivered())
		}
		if w.logLim.allow(time.Now()) {
			w.log.Warn("send to collector failed", "records", w.counts[sent], "err", serr)
		}
		sent++
	}
	var skipped *netflow5.SkippedError
	if errors.As(err, &skipped) {
		w.notExportable.Add(uint64(skipped.Skipped))
		if !w.warnedV5 {
			w.warnedV5 = true
			w.log.Warn("NetFlow v5 carries IPv4 only: IPv6 flows are counted as not exportable", "records", skipped.Skipped)
		}
	} else if err != nil && w.logLim.allow(time.Now()) {
		w.log.Warn("encode records", "err", err)
	}
}

// hand writes to the ledger that c more was handed to the collector.
func (w *worker) hand(c ledger.Counts) {
	if w.acct == nil || (c.Packets == 0 && c.Octets == 0) {
		return
	}
	if err := w.acct.Handed(c); err != nil && w.logLim.allow(time.Now()) {
		w.log.Warn("pinned ledger not updated: a kill now would lose uncounted packets", "err", err)
	}
}

// counts sums the packets and octets of records.
func counts(recs []flow.Record) ledger.Counts {
	var c ledger.Counts
	for i := range recs {
		c.Packets += recs[i].Packets
		c.Octets += recs[i].Octets
	}
	return c
}

func countsOf(recs []*flow.Record) ledger.Counts {
	var c ledger.Counts
	for _, r := range recs {
		c.Packets += r.Packets
		c.Octets += r.Octets
	}
	return c
}

func (w *worker) stats() CollectorStats {
	var unexported ledger.Counts
	if w.acct != nil {
		unexported = w.acct.Lost()
	}
	return CollectorStats{
		PacketsUnexported: unexported.Packets, OctetsUnexported: unexported.Octets, Undelivered: w.undeliveredRecords.Load(),
		PacketsSent: w.packetsSent.Load(), OctetsSent: w.octetsSent.Load(),
		Target: w.target.String(), RecordsSent: w.recordsSent.Load(), MessagesSent: w.messagesSent.Load(),
		SendErrors: w.sendErrors.Load(), RecordsLost: w.recordsLost.Load(), QueueDrops: w.queueDrops.Load(),
		PacketsLost: w.packetsLost.Load(), OctetsLost: w.octetsLost.Load(),
		NotExportable: w.notExportable.Load(),
	}
}

// rateLimit lets one event through per interval (for per-packet logs).
type rateLimit struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

func (r *rateLimit) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		return false
	}
	r.last = now
	return true
}
