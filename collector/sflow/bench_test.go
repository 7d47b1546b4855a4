// SPDX-License-Identifier: Apache-2.0

package sflow

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// BenchmarkDecode decodes pmacctd's datagrams (UDP, TCP and ICMP over
// IPv4 and IPv6, about six flow samples a datagram); it reports flow
// samples per second.
func BenchmarkDecode(b *testing.B) {
	dgs := wiretest.ReadHexLines(b, "testdata/pmacctd.hex")
	var d Datagram
	samples, size := 0, 0
	for _, dg := range dgs {
		if err := Decode(&d, dg, t0); err != nil {
			b.Fatal(err)
		}
		samples += len(d.Flows)
		size += len(dg)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, dg := range dgs {
			_ = Decode(&d, dg, t0)
		}
	}
	b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
