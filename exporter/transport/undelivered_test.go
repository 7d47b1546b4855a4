// SPDX-License-Identifier: Apache-2.0

package transport

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestTCPUndelivered: messages written while the collector cannot be
// reached sit unacknowledged in the send queue; when the connection then
// ends (the collector went away meanwhile), the Conn says exactly how many
// bytes of whole messages were never acknowledged.
func TestTCPUndelivered(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	addr := netip.AddrPortFrom(p.B4, 4740).String()
	var ln net.Listener
	if err := p.B.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	accepted := make(chan net.Conn, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- c
		_, _ = io.Copy(counter{&received}, c)
	}()
	target, err := ParseTarget("ipfix+tcp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	var conn Conn
	if err := p.A.Do(func() (err error) {
		conn, err = Dial(context.Background(), target)
		if err == nil {
			_, err = conn.Ensure()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := make([]byte, 1000)
	for i := 0; i < 10; i++ {
		if _, err := conn.SendBatch([][]byte{msg}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything so far arrives (and is acknowledged) before the link
	// goes away.
	srv := <-accepted
	if !testenv.WaitFor(testenv.Patience, func() bool { return tcpAcked(t, conn) == 10*1000 && received.Load() == 10*1000 }) {
		t.Fatalf("the first 10,000 bytes were not acknowledged and read")
	}
	setLink(t, p.B, p.BIf, false)
	const queued = 7
	for i := 0; i < queued; i++ {
		if _, err := conn.SendBatch([][]byte{msg}); err != nil {
			t.Fatalf("message %d while unreachable: %v", i, err)
		}
	}
	// The collector goes away (its end of the connection vanishes without
	// a word: the link is down), then the link comes back: the next
	// retransmission gets a reset.
	srv.(*net.TCPConn).SetLinger(0)
	srv.Close()
	ln.Close()
	<-readDone
	setLink(t, p.B, p.BIf, true)
	var sendErr error
	extra := 0 // written after the link came back, before the reset
	testenv.WaitFor(testenv.Patience, func() bool {
		_, sendErr = conn.SendBatch([][]byte{msg})
		if sendErr == nil {
			extra++
			time.Sleep(50 * time.Millisecond)
		}
		return sendErr != nil
	})
	if sendErr == nil {
		t.Fatal("writes kept succeeding after the collector went away")
	}
	u := conn.(Undeliverer).Undelivered()
	// The messages queued while the link was down, and those written
	// after it came back before the reset arrived, were never
	// acknowledged; none of the first ten.
	if want := int64(queued+extra) * 1000; u != want {
		t.Errorf("undelivered %d bytes, want the %d written after the link went down (%d messages)", u, want, queued+extra)
	}
	if got := received.Load(); got != 10*1000 {
		t.Errorf("the collector read %d bytes, want the 10,000 acknowledged", got)
	}
	if again := conn.(Undeliverer).Undelivered(); again != 0 {
		t.Errorf("a second Undelivered says %d, want 0", again)
	}
	t.Logf("send error: %v; %d bytes undelivered", sendErr, u)
}

// counter counts the bytes written to it.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return len(b), nil
}

// tcpAcked is what the peer acknowledged of conn's current connection.
func tcpAcked(t *testing.T, conn Conn) int64 {
	t.Helper()
	tc := conn.(*tcpConn)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	u := tc.unacked()
	if u < 0 {
		t.Fatal("TCP_INFO does not say what was acknowledged")
	}
	return tc.written - u
}

func setLink(t *testing.T, ns *testenv.NS, name string, up bool) {
	t.Helper()
	if err := ns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if up {
			return netlink.LinkSetUp(l)
		}
		return netlink.LinkSetDown(l)
	}); err != nil {
		t.Fatal(err)
	}
}
