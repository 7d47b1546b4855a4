// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/server"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// What kflow exported so far, read from the messages a sink received with
// kflow's own decoders: the tests wait on it (for flows to have left,
// for records to have been sent) instead of waiting for a time. The
// checks themselves stay with the third-party collectors.

// recordSink keeps what the decoder stores.
type recordSink struct {
	mu   sync.Mutex
	recs []flow.Record
}

func (r *recordSink) Append(rec *flow.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, *rec)
	return nil
}

func (r *recordSink) SequenceFailures(netip.Addr, uint32, uint64) {}
func (r *recordSink) Flush() error                                { return nil }

// exportedRecords decodes msgs (IPFIX, NetFlow v9 or v5, from one
// exporter) into their flow records.
func exportedRecords(t *testing.T, msgs [][]byte) []flow.Record {
	t.Helper()
	rs := &recordSink{}
	h, err := server.NewHandler(server.HandlerConfig{Sink: rs})
	if err != nil {
		t.Fatal(err)
	}
	src := server.Source{Addr: netip.MustParseAddrPort("127.0.0.1:1")}
	now := time.Now()
	for _, m := range msgs {
		h.HandlePacket(src, m, now)
	}
	return rs.recs
}

// conversation keys a flow without direction and ICMP fields, which not
// every format carries the same way.
type conversation struct {
	src, dst         netip.Addr
	proto            uint8
	srcPort, dstPort uint16
}

func conversationOf(src, dst netip.Addr, proto uint8, sp, dp uint16) conversation {
	if proto != flow.ProtoTCP && proto != flow.ProtoUDP {
		sp, dp = 0, 0
	}
	return conversation{src.Unmap(), dst.Unmap(), proto, sp, dp}
}

// exportedAll reports whether msgs carry every flow of want in full: all
// its packets and octets (IPv6 flows aside when msgs are NetFlow v5,
// which cannot carry them).
func exportedAll(t *testing.T, msgs [][]byte, want testenv.Truth) bool {
	t.Helper()
	v5 := len(msgs) > 0 && len(msgs[0]) >= 2 && msgs[0][0] == 0 && msgs[0][1] == 5
	got := map[conversation]testenv.Counts{}
	for _, r := range exportedRecords(t, msgs) {
		k := conversationOf(r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort)
		c := got[k]
		c.Packets += r.Packets
		c.Octets += r.Octets
		got[k] = c
	}
	need := map[conversation]testenv.Counts{}
	for k, c := range want {
		if v5 && k.Src.Is6() {
			continue
		}
		ck := conversationOf(k.Src, k.Dst, k.Proto, k.SrcPort, k.DstPort)
		n := need[ck]
		n.Packets += c.Packets
		n.Octets += c.Octets
		need[ck] = n
	}
	for k, n := range need {
		if g := got[k]; g.Packets < n.Packets || g.Octets < n.Octets {
			return false
		}
	}
	return len(need) > 0
}
