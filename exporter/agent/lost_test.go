// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"log/slog"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
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
