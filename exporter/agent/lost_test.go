// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"log/slog"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ledger"
)

// TestLostPackets: a batch the collector's queue cannot take is counted
// lost in records and in the packets and octets those records held, so a
// ledger of packets can account for it.
func TestLostPackets(t *testing.T) {
	w := &worker{queue: make(chan batch), log: slog.New(slog.DiscardHandler)} // no room: every offer drops
	recs := []flow.Record{{Packets: 3, Octets: 300}, {Packets: 1, Octets: 60}, {Packets: 7, Octets: 7000}}
	w.offer(batch{recs: recs})
	w.offer(batch{recs: recs[1:]})
	st := w.stats()
	if st.QueueDrops != 2 || st.RecordsLost != 5 || st.PacketsLost != 19 || st.OctetsLost != 14420 {
		t.Fatalf("got %+v, want 2 drops, 5 records, 19 packets, 14420 octets lost", st)
	}
	// A message the transport refuses: its own records only.
	w.carried = []*flow.Record{&recs[0], &recs[1], &recs[2]}
	w.lose(w.carried[1:3])
	if st := w.stats(); st.RecordsLost != 7 || st.PacketsLost != 27 || st.OctetsLost != 21480 {
		t.Fatalf("got %+v after a refused message, want 7 records, 27 packets, 21480 octets lost", st)
	}
}

// TestUndeliveredMessages: when a TCP connection ends with u bytes
// unacknowledged, the last messages that hold them, whole or in part,
// are counted lost with their records, packets and octets.
func TestUndeliveredMessages(t *testing.T) {
	w := &worker{log: slog.New(slog.DiscardHandler)}
	for i := 1; i <= 5; i++ {
		w.remember(sentMsg{bytes: 1000, records: i, counts: ledger.Counts{Packets: uint64(10 * i), Octets: uint64(1000 * i)}})
	}
	w.undelivered(2500) // messages 5, 4 and 3
	st := w.stats()
	if st.RecordsLost != 12 || st.PacketsLost != 120 || st.OctetsLost != 12000 || st.Undelivered != 12 {
		t.Fatalf("got %+v, want 12 records, 120 packets, 12000 octets lost", st)
	}
	if len(w.hist) != 2 || w.histBytes != 2000 {
		t.Fatalf("%d messages (%d bytes) remembered, want the first 2", len(w.hist), w.histBytes)
	}
	w.undelivered(0)
	if st := w.stats(); st.RecordsLost != 12 {
		t.Fatalf("nothing unacknowledged counted %d records", st.RecordsLost-12)
	}
	// The memory is bounded in bytes.
	for i := 0; i < 3*histLimit/1000; i++ {
		w.remember(sentMsg{bytes: 1000})
	}
	if w.histBytes > histLimit+1000 {
		t.Fatalf("%d bytes remembered, limit %d", w.histBytes, histLimit)
	}
}
