// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// TestTshark checks that Wireshark's dissector decodes the encoder's
// messages without expert warnings and reads the values we wrote.
func TestTshark(t *testing.T) {
	clk := &fakeClock{t: t0}
	e := newEncoder(t, Config{ObservationDomain: 7, SamplingInterval: 100}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 3, Name: "eth0"}})
	e.SetIgnored(11, 2222)
	var s sink
	if _, err := e.Encode([]flow.Record{recordV4(), recordV6()}, s.emit); err != nil {
		t.Fatal(err)
	}
	recs := make([]flow.Record, 40)
	for i := range recs {
		recs[i] = recordV4()
		recs[i].SrcPort = uint16(i)
	}
	e.ForceTemplates()
	if _, err := e.Encode(recs, s.emit); err != nil {
		t.Fatal(err)
	}
	out := wiretest.Tshark(t, 4739, s.bytes())
	if testing.Verbose() {
		t.Log(out)
	}
	for _, want := range []string{
		"Version: 10",
		"Observation Domain Id: 7",
		"SrcAddr: 198.18.0.1",
		"DstAddr: fd00:1:2:3:4:5:6:7",
		"Octets: 1099511627783",
		"Packets: 8589934597",
		"IfName: eth0",
		"Sampling interval: 100",
		"Ignored Packets: 11",
		"Ignored Octets: 2222",
		"PacketsExp: 1",
		"FlowsExp: 2",
		"IPv6 ICMP Type: 128",
		"TCP Flags: 0x01d3",
		"Dot1q Customer Vlan Id: 200",
		"Flow End Reason: End of Flow detected (3)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
}
