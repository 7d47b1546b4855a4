// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// TestTshark checks that Wireshark's dissector decodes the encoder's
// packets without expert warnings and reads the values we wrote.
func TestTshark(t *testing.T) {
	e := newEncoder(t, Config{SourceID: 7, SamplingInterval: 100, CaptureFilter: true}, &wiretest.Clock{T: t0})
	out := wiretest.Tshark(t, 2055, wiretest.TsharkMessages(t, e))
	if testing.Verbose() {
		t.Log(out)
	}
	wiretest.Contains(t, out, wiretest.TsharkWant...)
	wiretest.Contains(t, out, "Ignored Packets: 5", "Ignored Octets: 600", "Ignored Packets: 7", "Ignored Octets: 1099511627776")
	wiretest.Contains(t, out,
		"Version: 9",
		"SourceId: 7",
		"TCP Flags: 0xd3",
		"Vlan Id: 100",
		"Dot1q Customer Vlan Id: 200", // the inner VLAN, IPFIX's element in v9
		"Direction: Egress (1)",
	)
}
