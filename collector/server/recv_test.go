// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/ipfix"
)

// TestBatchReadCountsKernelDrops overflows a small receive buffer before
// the server reads it: the batched reader must still see the kernel's
// drop counter (SO_RXQ_OVFL control messages) and deliver what was kept.
func TestBatchReadCountsKernelDrops(t *testing.T) {
	sink := newFakeSink()
	srv, err := New(Config{Listen: []string{"udp://127.0.0.1:0"}, ReceiveBuffer: 4096,
		Handler: HandlerConfig{Sink: sink}, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", srv.Addrs()[0][len("udp://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := encodeIPFIX(t, ipfix.Config{MTU: 1400}, testRecords(2000, true), 2000)
	for range 3 {
		for _, m := range msgs {
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	if !waitFor(func() bool {
		st := srv.Stats().Listeners[0]
		return st.Packets > 0 && st.KernelDrops > 0
	}) {
		t.Errorf("no datagram read with the drop counter: %+v", srv.Stats().Listeners[0])
	}
	// One more datagram after the drops carries the counter too; the
	// reader has read it once nothing is left in the socket.
	if _, err := c.Write(msgs[0]); err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool {
		st := srv.Stats().Listeners[0]
		return st.Packets+st.KernelDrops >= uint64(3*len(msgs)+1)
	}) {
		t.Errorf("datagrams read and dropped do not reach the %d sent: %+v", 3*len(msgs)+1, srv.Stats().Listeners[0])
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := srv.Stats().Listeners[0]
	if st.Packets == 0 || st.KernelDrops == 0 || st.Packets+st.KernelDrops < uint64(3*len(msgs)) {
		t.Fatalf("read %d datagrams, kernel dropped %d, sent %d", st.Packets, st.KernelDrops, 3*len(msgs)+1)
	}
	if len(sink.records()) == 0 {
		t.Fatal("no records stored")
	}
}
