// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/exporter/netflow9"
)

// fakeSink keeps what it is given.
type fakeSink struct {
	mu      sync.Mutex
	recs    []flow.Record
	seqFail map[netip.Addr]uint64
	flushes int
}

func newFakeSink() *fakeSink { return &fakeSink{seqFail: map[netip.Addr]uint64{}} }

func (f *fakeSink) Append(r *flow.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, *r)
	return nil
}

func (f *fakeSink) SequenceFailures(a netip.Addr, _ uint32, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seqFail[a] += n
}

func (f *fakeSink) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	return nil
}

func (f *fakeSink) records() []flow.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flow.Record(nil), f.recs...)
}

var (
	t0        = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	exporter1 = Source{Addr: netip.MustParseAddrPort("198.18.0.1:40000")}
)

// testRecords returns n distinct flows, IPv4 and IPv6 alternating when
// mixed is set.
func testRecords(n int, mixed bool) []flow.Record {
	recs := make([]flow.Record, n)
	for i := range recs {
		r := &recs[i]
		if mixed && i%2 == 1 {
			r.Src = netip.MustParseAddr("fd00::1")
			r.Dst = netip.AddrFrom16([16]byte{0xfd, 15: byte(i)})
		} else {
			r.Src = netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
			r.Dst = netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		}
		r.Proto = flow.ProtoUDP
		r.SrcPort = uint16(10000 + i)
		r.DstPort = 53
		r.Packets = uint64(1 + i%7)
		r.Octets = r.Packets * 100
		r.Start = t0.Add(time.Duration(i) * time.Millisecond)
		r.End = r.Start.Add(time.Second)
		r.EndReason = flow.EndIdle
	}
	return recs
}

func clock() time.Time { return t0.Add(2 * time.Second) }

// encodeIPFIX returns the messages an IPFIX encoder makes of recs, in
// batches of batch records per Encode call.
func encodeIPFIX(tb testing.TB, cfg ipfix.Config, recs []flow.Record, batch int) [][]byte {
	tb.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	enc, err := ipfix.NewEncoder(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for len(recs) > 0 {
		n := min(batch, len(recs))
		if _, err := enc.Encode(recs[:n], func(p ipfix.Packet) error {
			out = append(out, append([]byte(nil), p.Bytes...))
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		recs = recs[n:]
	}
	return out
}

func encodeV9(tb testing.TB, cfg netflow9.Config, recs []flow.Record, batch int) [][]byte {
	tb.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	enc, err := netflow9.NewEncoder(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for len(recs) > 0 {
		n := min(batch, len(recs))
		if _, err := enc.Encode(recs[:n], func(p netflow9.Packet) error {
			out = append(out, append([]byte(nil), p.Bytes...))
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		recs = recs[n:]
	}
	return out
}

func encodeV5(tb testing.TB, cfg netflow5.Config, recs []flow.Record) [][]byte {
	tb.Helper()
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	if cfg.SystemInit.IsZero() {
		cfg.SystemInit = t0.Add(-time.Hour)
	}
	enc, err := netflow5.NewEncoder(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	if _, err := enc.Encode(recs, func(p netflow5.Packet) error {
		out = append(out, append([]byte(nil), p.Bytes...))
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Hand-built IPFIX pieces for hostile input.

func be16(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// ipfixMsg wraps sets in a message header with a correct length.
func ipfixMsg(domain, seq uint32, sets ...[]byte) []byte {
	body := cat(sets...)
	b := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint16(b[0:], 10)
	binary.BigEndian.PutUint16(b[2:], uint16(16+len(body)))
	binary.BigEndian.PutUint32(b[4:], uint32(t0.Unix()))
	binary.BigEndian.PutUint32(b[8:], seq)
	binary.BigEndian.PutUint32(b[12:], domain)
	return append(b, body...)
}

// set makes a set with a correct length.
func set(id int, body ...[]byte) []byte {
	b := cat(body...)
	return cat(be16(id), be16(4+len(b)), b)
}

// tmpl makes a template record: id, field count, then (ie, length) pairs.
func tmpl(id int, fields ...int) []byte {
	b := cat(be16(id), be16(len(fields)/2))
	for _, f := range fields {
		b = append(b, be16(f)...)
	}
	return b
}

// v9Msg wraps flowsets in a NetFlow v9 header.
func v9Msg(sourceID, seq uint32, sets ...[]byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], 9)
	binary.BigEndian.PutUint16(b[2:], 1)
	binary.BigEndian.PutUint32(b[4:], 1000)
	binary.BigEndian.PutUint32(b[8:], uint32(t0.Unix()))
	binary.BigEndian.PutUint32(b[12:], seq)
	binary.BigEndian.PutUint32(b[16:], sourceID)
	return cat(b, cat(sets...))
}

// basicTemplate: source and destination IPv4 address, packets, octets.
func basicTemplate(id int) []byte { return tmpl(id, 8, 4, 12, 4, 2, 4, 1, 4) }

func basicRecord(i int) []byte {
	return cat([]byte{198, 18, 0, byte(i)}, []byte{198, 19, 0, byte(i)},
		binary.BigEndian.AppendUint32(nil, uint32(i+1)), binary.BigEndian.AppendUint32(nil, uint32(100*(i+1))))
}

func mustPrefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
