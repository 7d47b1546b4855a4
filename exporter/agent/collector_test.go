// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// tcpCollector accepts IPFIX over TCP and decodes every connection with a
// fresh session, as a collector must: a new connection has no templates.
type tcpCollector struct {
	ln      net.Listener
	mu      sync.Mutex
	open    []net.Conn
	conns   int
	records int
	errs    []error
	done    chan struct{}
}

func startTCPCollector(t *testing.T, ns *testenv.NS, addr string) *tcpCollector {
	t.Helper()
	c := &tcpCollector{done: make(chan struct{})}
	if err := ns.Do(func() (err error) {
		c.ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		for {
			conn, err := c.ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns++
			c.open = append(c.open, conn)
			c.mu.Unlock()
			go c.read(conn)
		}
	}()
	return c
}

func (c *tcpCollector) read(conn net.Conn) {
	defer conn.Close()
	s := ipfix.NewSession(wire.Limits{})
	var m ipfix.Message
	buf := make([]byte, 0, 1<<16)
	for {
		msg, err := ipfix.ReadMessage(conn, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.fail(err)
			}
			return
		}
		m.Data.Reset()
		if err := s.Decode(&m, msg); err != nil {
			c.fail(err)
			return
		}
		if len(m.Missing) > 0 {
			c.fail(errors.New("data before its template on a connection"))
		}
		c.mu.Lock()
		c.records += len(m.Records)
		c.mu.Unlock()
	}
}

func (c *tcpCollector) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

func (c *tcpCollector) counts() (conns, records int, errs []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns, c.records, append([]error(nil), c.errs...)
}

// stop closes the listener and every connection: the collector is gone.
func (c *tcpCollector) stop() {
	c.ln.Close()
	<-c.done
	c.mu.Lock()
	for _, conn := range c.open {
		conn.Close()
	}
	c.mu.Unlock()
}

// TestTCPCollectorRestart: the collector goes away and comes back; kflow
// reconnects (with backoff) and sends its templates again on the new
// connection, so the collector decodes every record it receives.
func TestTCPCollectorRestart(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.0.1:4739"
	col := startTCPCollector(t, p.A, addr)
	target, _ := transport.ParseTarget("ipfix+tcp://" + addr)
	a := startAgent(t, p, Config{Interfaces: []string{p.AIf}, Collectors: []transport.Target{target},
		DrainInterval: 50 * time.Millisecond, Cache: cacheConfigQuick()})
	waitFor(t, "attached", func() bool { return observes(a, p.AIf) })
	if _, err := p.UDPEcho(false, 43000, 7200, []int{10, 20}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "records on the first connection", func() bool { _, n, _ := col.counts(); return n > 0 })
	col.stop()

	col2 := startTCPCollector(t, p.A, addr)
	defer col2.stop()
	// Keep traffic flowing until the exporter's backoff lets it reconnect.
	waitFor(t, "records on a new connection", func() bool {
		_, _ = p.UDPEcho(false, 43001, 7201, []int{10})
		_, n, _ := col2.counts()
		return n > 0
	})
	conns, _, errs := col2.counts()
	if conns == 0 || len(errs) > 0 {
		t.Errorf("second collector: %d connections, errors %v", conns, errs)
	}
	if _, _, errs := col.counts(); len(errs) > 0 {
		t.Errorf("first collector: errors %v", errs)
	}
}

// TestStuckCollector: a TCP collector that accepts but never reads must not
// stall the drain; what its queue cannot hold is dropped and counted.
func TestStuckCollector(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	// Small TCP buffers in A, so a collector that does not read blocks
	// the sender after a few dozen kilobytes.
	if err := p.A.Sysctl(map[string]string{"net.ipv4.tcp_wmem": "4096 8192 16384", "net.ipv4.tcp_rmem": "4096 8192 16384"}); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.0.1:4740"
	var ln net.Listener
	if err := p.A.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	target, _ := transport.ParseTarget("ipfix+tcp://" + addr)
	a := startAgent(t, p, Config{Interfaces: []string{p.AIf}, Collectors: []transport.Target{target},
		DrainInterval: 20 * time.Millisecond, QueueBatches: 2, Cache: cacheConfigQuick()})
	waitFor(t, "attached", func() bool { return observes(a, p.AIf) })
	// Many flows, each ending quickly, so every drain exports a batch:
	// rounds go on until the queue dropped and the drains went on (the
	// bounds, in time and in rounds, only stop a hang).
	start := a.Stats().Drains
	deadline := time.Now().Add(testenv.Patience)
	for round := 0; time.Now().Before(deadline) && round < 1000000; round++ {
		if _, err := p.UDPBlast(false, uint16(20000+round*50%40000), 50, 200, 1400); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // let drains happen between rounds
		st := a.Stats()
		if len(st.Collectors) == 1 && st.Collectors[0].QueueDrops > 0 && st.Drains > start+20 {
			t.Logf("after %d rounds: %d drains, collector %+v", round+1, st.Drains-start, st.Collectors[0])
			return
		}
	}
	st := a.Stats()
	t.Fatalf("no queue drops or a stalled drain: %d drains, collectors %+v", st.Drains-start, st.Collectors)
}
