// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"net"
	"testing"
	"time"
)

func TestQueuedParse(t *testing.T) {
	table := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:2703 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 4242 2 0000000000000000 0
  124: 00000000:2703 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 4243 2 0000000000000000 0
  125: 0100007F:0801 00000000:0000 07 00000000:0000ffff 00:00000000 00000000     0        0 4244 2 0000000000000000 0
`)
	q, err := queued(table, 9987)
	if err != nil || q != 0xa00 {
		t.Errorf("port 9987: %d, %v; want %d", q, err, 0xa00)
	}
	if q, err := queued(table, 53); err != nil || q != 0 {
		t.Errorf("port 53: %d, %v; want 0", q, err)
	}
	if _, err := queued([]byte("header\n  1: nonsense\n"), 1); err == nil {
		t.Error("a short line was accepted")
	}
}

func TestDroppedParse(t *testing.T) {
	table := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:2703 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 4242 2 0000000000000000 7
  124: 00000000:2703 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 4243 2 0000000000000000 35
  125: 0100007F:0801 00000000:0000 07 00000000:0000ffff 00:00000000 00000000     0        0 4244 2 0000000000000000 1000
`)
	if n, err := dropped(table, 9987); err != nil || n != 42 {
		t.Errorf("port 9987: %d, %v; want 42", n, err)
	}
	if n, err := dropped(table, 53); err != nil || n != 0 {
		t.Errorf("port 53: %d, %v; want 0", n, err)
	}
	if _, err := dropped([]byte("header\n  1: 0100007F:0801 00000000:0000 07\n"), 1); err == nil {
		t.Error("a short line was accepted")
	}
}

// TestDropsLive overflows a loopback socket's receive buffer: every
// datagram sent is either read back or counted by Drops.
func TestDropsLive(t *testing.T) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("loopback UDP: %v", err)
	}
	defer rc.Close()
	if err := rc.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	port := rc.LocalAddr().(*net.UDPAddr).Port
	sc, err := net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	const sent = 500
	payload := make([]byte, 512)
	for i := 0; i < sent; i++ {
		if _, err := sc.Write(payload); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	received := 0
	buf := make([]byte, 2048)
	for {
		if err := rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Read(buf); err != nil {
			break
		}
		received++
	}
	drops, err := Drops(nil, port)
	if err != nil {
		t.Fatal(err)
	}
	if received+int(drops) != sent || drops == 0 {
		t.Errorf("sent %d datagrams: %d received, %d dropped", sent, received, drops)
	}
}
