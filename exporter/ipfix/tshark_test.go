// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// TestTshark checks that Wireshark's dissector decodes the encoder's
// messages without expert warnings and reads the values we wrote.
func TestTshark(t *testing.T) {
	e := newEncoder(t, Config{ObservationDomain: 7, SamplingInterval: 100, CaptureFilter: true}, &wiretest.Clock{T: t0})
	out := wiretest.Tshark(t, 4739, wiretest.TsharkMessages(t, e))
	if testing.Verbose() {
		t.Log(out)
	}
	wiretest.Contains(t, out, wiretest.TsharkWant...)
	wiretest.Contains(t, out, "Ignored Packets: 5", "Ignored Octets: 600", "Ignored Packets: 7", "Ignored Octets: 1099511627776")
	wiretest.Contains(t, out,
		"Version: 10",
		"Observation Domain Id: 7",
		"IPv6 ICMP Type: 128",
		"TCP Flags: 0x01d3",
		"Dot1q Customer Vlan Id: 200",
		"Flow End Reason: End of Flow detected (3)",
	)
}
