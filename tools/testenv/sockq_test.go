// SPDX-License-Identifier: Apache-2.0

package testenv

import "testing"

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
