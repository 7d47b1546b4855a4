// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"udp://[::]:2055":      "udp://[::]:2055",
		"tcp://0.0.0.0:4739":   "tcp://0.0.0.0:4739",
		"udp://:2055":          "udp://[::]:2055",
		"udp://127.0.0.1:0":    "udp://127.0.0.1:0",
		"http://127.0.0.1:80":  "",
		"udp://127.0.0.1":      "",
		"udp://example.com:80": "",
	} {
		ep, err := ParseEndpoint(in)
		if want == "" {
			if err == nil {
				t.Errorf("%s: accepted", in)
			}
			continue
		}
		if err != nil || ep.String() != want {
			t.Errorf("%s: %v, %v; want %s", in, ep, err, want)
		}
	}
}

// startServer runs a server on loopback and returns its addresses and a
// stop function that waits for Run to return.
func startServer(t *testing.T, cfg Config) (*Server, map[string]string, func()) {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, a := range srv.Addrs() {
		n, rest, _ := strings.Cut(a, "://")
		addrs[n] = rest
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(testenv.Patience):
				t.Fatalf("server did not stop within %v", testenv.Patience)
			}
		})
	}
	t.Cleanup(stop)
	return srv, addrs, stop
}

func TestServerUDPAndTCP(t *testing.T) {
	sink := newFakeSink()
	srv, addrs, stop := startServer(t, Config{
		Listen:        []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0", "udp://[::1]:0"},
		Handler:       HandlerConfig{Sink: sink},
		Workers:       2,
		FlushInterval: 50 * time.Millisecond,
	})
	recs := testRecords(300, true)
	v4 := testRecords(300, false)
	// UDP: IPFIX, v9 and v5 to the same port, from three sockets.
	var sent int
	for _, msgs := range [][][]byte{
		encodeIPFIX(t, ipfix.Config{}, recs, 50),
		encodeV9(t, netflow9.Config{}, recs, 50),
		encodeV5(t, netflow5.Config{}, v4),
	} {
		c, err := net.Dial("udp", addrs["udp"])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // stay far below the socket buffer
		}
		c.Close()
		sent += 300
	}
	// TCP: one IPFIX stream.
	c, err := net.Dial("tcp", addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range encodeIPFIX(t, ipfix.Config{Stream: true}, recs, 50) {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	sent += 300
	want := sent
	if !waitFor(func() bool { return len(sink.records()) >= want }) {
		t.Fatalf("%d records after %v, want %d", len(sink.records()), testenv.Patience, want)
	}
	stop()
	st := srv.Stats()
	tot := st.Totals()
	if tot.Records != uint64(want) || len(tot.DecodeErrors) != 0 || tot.SequenceGaps != 0 {
		t.Errorf("totals %+v", tot)
	}
	if tot.Versions[5] == 0 || tot.Versions[9] == 0 || tot.Versions[10] == 0 {
		t.Errorf("versions %v", tot.Versions)
	}
	var tcp bool
	for _, e := range st.Exporters {
		tcp = tcp || e.Transport == "tcp"
	}
	if !tcp || len(st.Listeners) != 3 || st.Listeners[1].Conns != 1 {
		t.Errorf("exporters %+v listeners %+v", st.Exporters, st.Listeners)
	}
	sink.mu.Lock()
	if sink.flushes == 0 {
		t.Error("sink never flushed")
	}
	sink.mu.Unlock()
}

func TestServerTCPBadStream(t *testing.T) {
	sink := newFakeSink()
	srv, addrs, stop := startServer(t, Config{Listen: []string{"tcp://127.0.0.1:0"}, Handler: HandlerConfig{Sink: sink}})
	c, err := net.Dial("tcp", addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(encodeIPFIX(t, ipfix.Config{Stream: true}, testRecords(3, false), 3)[0], 0, 9, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	// The server closes the stream at the bad header.
	_ = c.SetReadDeadline(time.Now().Add(testenv.Patience))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("stream not closed")
	}
	c.Close()
	stop()
	tot := srv.Stats().Totals()
	if tot.Records != 3 || tot.DecodeErrors[KindVersion] != 1 {
		t.Errorf("records %d errors %v", tot.Records, tot.DecodeErrors)
	}
}

func TestServerAllowUDP(t *testing.T) {
	sink := newFakeSink()
	srv, addrs, stop := startServer(t, Config{Listen: []string{"udp://127.0.0.1:0"},
		Handler: HandlerConfig{Sink: sink, Allow: mustPrefixes("198.18.0.0/15")}})
	c, err := net.Dial("udp", addrs["udp"])
	if err != nil {
		t.Fatal(err)
	}
	msg := encodeIPFIX(t, ipfix.Config{}, testRecords(3, false), 3)[0]
	for range 3 {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	waitFor(func() bool { return srv.Stats().NotAllowed == 3 })
	stop()
	if st := srv.Stats(); st.NotAllowed != 3 || len(sink.records()) != 0 {
		t.Errorf("not allowed %d, records %d", st.NotAllowed, len(sink.records()))
	}
}

// TestRotationUnderLoad counts every record across rotation boundaries of
// a real Rotator driven by an injected clock, with the flush ticker
// racing the workers.
func TestRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	sink, err := NewFileSink(FileSinkOptions{Rotator: flowfile.RotatorOptions{
		Dir: dir, Interval: 60 * time.Second, Location: time.UTC, Now: clk}})
	if err != nil {
		t.Fatal(err)
	}
	srv, addrs, stop := startServer(t, Config{Listen: []string{"udp://127.0.0.1:0"},
		Handler: HandlerConfig{Sink: sink}, FlushInterval: 10 * time.Millisecond})
	c, err := net.Dial("udp", addrs["udp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const rounds, perRound = 5, 600
	for round := range rounds {
		for _, m := range encodeIPFIX(t, ipfix.Config{ObservationDomain: uint32(round)}, testRecords(perRound, true), 40) {
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Microsecond)
		}
		// Cross a slot boundary while the next round is on its way.
		mu.Lock()
		now = now.Add(60 * time.Second)
		mu.Unlock()
	}
	want := uint64(rounds * perRound)
	waitFor(func() bool { return srv.Stats().Totals().Records >= want })
	stop()
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.Totals().Records != want || st.Listeners[0].KernelDrops != 0 {
		t.Fatalf("stored %d records, want %d (kernel drops %d)", st.Totals().Records, want, st.Listeners[0].KernelDrops)
	}
	var got uint64
	files := 0
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		r, err := flowfile.Open(p, flowfile.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			got++
		}
		if r.End().Kind != flowfile.EndClean {
			t.Errorf("%s: %v", p, r.End())
		}
		return r.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want || files < rounds {
		t.Errorf("%d records in %d files, want %d in at least %d", got, files, want, rounds)
	}
	if fs := sink.Stats(); fs.Files != uint64(files) || fs.Records != want {
		t.Errorf("file stats %+v", fs)
	}
}

// waitFor polls cond until it holds, for at most testenv.Patience (which
// only a hang reaches): tests wait for the event, not for a time.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(testenv.Patience)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestServerUDPHeldSetsOutliveReadBuffer sends IPFIX data sets before
// their template, then more datagrams that reuse the reader's buffers,
// then the template: with one worker (UDP decoded in the reader) and with
// two (queued copies), every held set must decode to the records sent.
func TestServerUDPHeldSetsOutliveReadBuffer(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			sink := newFakeSink()
			srv, addrs, stop := startServer(t, Config{
				Listen:  []string{"udp://127.0.0.1:0"},
				Handler: HandlerConfig{Sink: sink},
				Workers: workers,
			})
			recs := testRecords(400, true)
			msgs := encodeIPFIX(t, ipfix.Config{MTU: 512}, recs, len(recs))
			c, err := net.Dial("udp", addrs["udp"])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// msgs[0] carries the template: send it last.
			for _, m := range append(msgs[1:], msgs[0]) {
				if _, err := c.Write(m); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			if !waitFor(func() bool { return len(sink.records()) >= len(recs) }) {
				t.Fatalf("%d records after %v, want %d", len(sink.records()), testenv.Patience, len(recs))
			}
			stop()
			tot := srv.Stats().Totals()
			if tot.HeldDecoded == 0 || tot.HeldDropped != 0 || len(tot.DecodeErrors) != 0 {
				t.Fatalf("totals %+v", tot)
			}
			got := map[uint16]flow.Record{}
			for _, r := range sink.records() {
				got[r.SrcPort] = r
			}
			for _, w := range recs {
				g, ok := got[w.SrcPort]
				if !ok || g.Src != w.Src || g.Dst != w.Dst || g.Packets != w.Packets || g.Octets != w.Octets || !g.Start.Equal(w.Start) {
					t.Fatalf("record of source port %d: got %+v, want %+v", w.SrcPort, g, w)
				}
			}
		})
	}
}
