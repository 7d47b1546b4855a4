// SPDX-License-Identifier: Apache-2.0

package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestTCPReconnect(t *testing.T) {
	// The collector comes back on the same port. On an address of its own
	// in 127/8 nothing else takes that port meanwhile (connections made
	// elsewhere on the machine bind 127.0.0.1 or the wildcard).
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := Target{Format: IPFIX, TCP: true, Addr: ln.Addr().String()}
	c, err := Dial(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Unix(1000, 0)
	c.(*tcpConn).now = func() time.Time { return now }

	if err := c.Send([]byte("a")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send before Ensure: %v, want ErrNotConnected", err)
	}
	if fresh, err := c.Ensure(); !fresh || err != nil {
		t.Fatalf("first Ensure: %v %v, want a fresh connection", fresh, err)
	}
	if fresh, err := c.Ensure(); fresh || err != nil {
		t.Fatalf("second Ensure: %v %v, want the same connection", fresh, err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("server read %q, %v", buf, err)
	}

	// The collector goes away: sends fail, then back off, then reconnect.
	srv.Close()
	ln.Close()
	// The reset comes back through the loopback's softirq: send until it
	// arrived (Patience bounds a hang, not the wait).
	var failed bool
	for deadline := time.Now().Add(testenv.Patience); !failed && time.Now().Before(deadline); {
		failed = c.Send(make([]byte, 1024)) != nil
		time.Sleep(time.Millisecond)
	}
	if !failed {
		t.Fatal("send to a closed collector never failed")
	}
	if _, err := c.Ensure(); !errors.Is(err, ErrBackoff) {
		t.Fatalf("Ensure during backoff: %v, want ErrBackoff", err)
	}
	ln2, err := net.Listen("tcp", target.Addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", target.Addr, err)
	}
	defer ln2.Close()
	now = now.Add(time.Minute)
	if fresh, err := c.Ensure(); !fresh || err != nil {
		t.Fatalf("Ensure after backoff: %v %v, want a fresh connection", fresh, err)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: time.Second, max: 4 * time.Second}
	now := time.Unix(0, 0)
	var got []time.Duration
	for i := 0; i < 5; i++ {
		b.fail(now)
		got = append(got, b.until.Sub(now))
	}
	want := []time.Duration{1, 2, 4, 4, 4}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v seconds", got, want)
		}
	}
	b.reset()
	if b.cur != 0 || !b.until.IsZero() {
		t.Fatal("reset left state")
	}
}

// TestUDPBatchRefused sends to a port nothing listens on: the refusal
// (an ICMP port unreachable reported on the next send) must come back as
// an error with a sane count, never a negative one.
func TestUDPBatchRefused(t *testing.T) {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.LocalAddr().String()
	ln.Close()
	c, err := Dial(context.Background(), Target{Format: IPFIX, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	// The refusal arrives asynchronously: send until it was reported
	// (Patience bounds a hang, not the wait).
	var sawErr bool
	for deadline := time.Now().Add(testenv.Patience); !sawErr && time.Now().Before(deadline); {
		n, err := c.SendBatch(msgs)
		if n < 0 || n > len(msgs) {
			t.Fatalf("SendBatch returned %d of %d messages", n, len(msgs))
		}
		if err != nil {
			sawErr = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawErr {
		t.Error("no error from a collector port that refuses")
	}
}

func TestUDPBatchDelivers(t *testing.T) {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial(context.Background(), Target{Format: IPFIX, Addr: ln.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var msgs [][]byte
	for i := 0; i < 150; i++ { // more than one sendmmsg batch
		msgs = append(msgs, []byte{byte(i)})
	}
	if n, err := c.SendBatch(msgs); n != len(msgs) || err != nil {
		t.Fatalf("SendBatch: %d, %v", n, err)
	}
	buf := make([]byte, 16)
	_ = ln.SetReadDeadline(time.Now().Add(testenv.Patience))
	for i := 0; i < 150; i++ {
		n, err := ln.Read(buf)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %v %v %d", i, buf[:n], err, n)
		}
	}
}
