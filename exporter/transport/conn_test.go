// SPDX-License-Identifier: Apache-2.0

package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

func TestGSORun(t *testing.T) {
	msgs := func(lens ...int) [][]byte {
		var m [][]byte
		for _, l := range lens {
			m = append(m, make([]byte, l))
		}
		return m
	}
	many := make([]int, 100)
	for i := range many {
		many[i] = 10
	}
	for _, tc := range []struct {
		lens []int
		want int
	}{
		{[]int{100}, 1},
		{[]int{100, 100, 100}, 3},
		{[]int{100, 100, 50, 50}, 3}, // one shorter message ends a run
		{[]int{100, 200}, 1},         // a longer one starts the next
		{[]int{100, 0, 100}, 1},      // an empty message is a datagram of its own
		{many, gsoMaxSegments},
		{[]int{1400, 1400, 1400}, 3},
		{[]int{40000, 30000}, 1}, // past a datagram's payload
	} {
		if got := gsoRun(msgs(tc.lens...)); got != tc.want {
			t.Errorf("gsoRun(%v) = %d, want %d", tc.lens, got, tc.want)
		}
	}
}

// TestUDPBatchSegments sends runs of equal and unequal lengths: the
// collector must receive each message as a datagram of its own, in order,
// whether the kernel segments runs (UDP GSO) or, once it refused to,
// each message is sent alone.
func TestUDPBatchSegments(t *testing.T) {
	var lens []int
	add := func(n, l int) {
		for range n {
			lens = append(lens, l)
		}
	}
	add(70, 1400)
	add(1, 900)
	add(3, 1400)
	add(2, 50)
	add(1, 1400)
	add(5, 200)
	add(200, 1)
	var msgs [][]byte
	for i, l := range lens {
		m := make([]byte, l)
		for j := range m {
			m[j] = byte(i + j)
		}
		msgs = append(msgs, m)
	}
	for _, tc := range []struct {
		ip     net.IP
		refuse bool
	}{{net.IPv4(127, 0, 0, 1), false}, {net.IPv4(127, 0, 0, 1), true}, {net.IPv6loopback, false}} {
		refuse := tc.refuse
		t.Run(fmt.Sprintf("%v/refused=%v", tc.ip, refuse), func(t *testing.T) {
			ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: tc.ip})
			if err != nil {
				if tc.ip.To4() == nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer ln.Close()
			_ = ln.SetReadBuffer(4 << 20)
			c, err := Dial(context.Background(), Target{Format: IPFIX, Addr: ln.LocalAddr().String()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			u := c.(*udpConn)
			if refuse {
				// Linux refuses UDP GSO on a socket without checksums.
				rc, err := u.c.(*net.UDPConn).SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
				}); err != nil || serr != nil {
					t.Fatalf("turn checksums off: %v %v", err, serr)
				}
			}
			if n, err := c.SendBatch(msgs); n != len(msgs) || err != nil {
				t.Fatalf("SendBatch: %d of %d, %v", n, len(msgs), err)
			}
			if u.noGSO != refuse {
				t.Errorf("segmentation turned off: %v, want %v", u.noGSO, refuse)
			}
			buf := make([]byte, 65536)
			_ = ln.SetReadDeadline(time.Now().Add(testenv.Patience))
			for i, want := range msgs {
				n, err := ln.Read(buf)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if !bytes.Equal(buf[:n], want) {
					t.Fatalf("datagram %d: %d octets starting %v, want %d starting %v", i, n, buf[:min(n, 4)], len(want), want[:min(len(want), 4)])
				}
			}
		})
	}
}
