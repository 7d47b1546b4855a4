// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// fillActive puts n distinct flows in the active flow maps, as the
// programs would have after counting n flows: IPv4 flows in the IPv4 map.
func fillActive(b testing.TB, d *Datapath, n int) { fillActiveMixed(b, d, n, 0) }

// fillActiveMixed is fillActive with every v6Every-th flow an IPv6 one
// (none for 0).
func fillActiveMixed(b testing.TB, d *Datapath, n, v6Every int) {
	b.Helper()
	ncpu := d.drain.ncpu
	const chunk = 8192
	keys := make([]kflowFlowKey, 0, chunk)
	keys4 := make([]kflowFlowKey4, 0, chunk)
	vals := make([]kflowFlowValue, 0, chunk*ncpu)
	vals4 := make([]kflowFlowValue, 0, chunk*ncpu)
	flush := func() {
		if len(keys) > 0 {
			if _, err := d.active.BatchUpdate(keys, vals, nil); err != nil {
				b.Fatalf("fill flow map: %v", err)
			}
		}
		if len(keys4) > 0 {
			if _, err := d.active4.BatchUpdate(keys4, vals4, nil); err != nil {
				b.Fatalf("fill IPv4 flow map: %v", err)
			}
		}
		keys, vals, keys4, vals4 = keys[:0], vals[:0], keys4[:0], vals4[:0]
	}
	v := kflowFlowValue{Packets: 10, Octets: 15000, FirstSeen: 1e9, LastSeen: 2e9, TcpFlags: 0x18, MinTtl: 64, MaxTtl: 64}
	for i := 0; i < n; i++ {
		if v6Every > 0 && i%v6Every == 0 {
			var k kflowFlowKey
			k.IpVersion = 6
			k.Protocol = 6
			k.SrcAddr = [16]byte{0: 0xfd, 1: 0x12}
			k.DstAddr = [16]byte{0: 0xfd, 1: 0x13, 15: 1}
			binary.BigEndian.PutUint32(k.SrcAddr[12:], uint32(i>>16))
			k.SrcPort = uint16(i)
			k.DstPort = 443
			k.Ifindex = 2
			keys = append(keys, k)
			for c := 0; c < ncpu; c++ {
				vals = append(vals, v)
			}
		} else {
			var k kflowFlowKey4
			k.Protocol = 6
			binary.BigEndian.PutUint32(k.SrcAddr[:], 0xc6120000|uint32(i>>16))
			binary.BigEndian.PutUint32(k.DstAddr[:], 0xc6130001)
			k.SrcPort = uint16(i)
			k.DstPort = 443
			k.Ifindex = 2
			keys4 = append(keys4, k)
			for c := 0; c < ncpu; c++ {
				vals4 = append(vals4, v)
			}
		}
		if len(keys) == chunk || len(keys4) == chunk {
			flush()
		}
	}
	flush()
}

// BenchmarkDrain measures a drain of N flows: the map swap, the batched
// read-and-delete, and the conversion to flow records handed to a callback.
// It reports ns per flow and the kernel memory of the flow maps (IPv4 and
// IPv6, two of each).
func BenchmarkDrain(b *testing.B) {
	testenv.RequirePrivileged(b)
	for _, n := range []int{100_000, 1_000_000} {
		for _, shared := range []bool{false, true} {
			mode := "percpu"
			if shared {
				mode = "shared"
			}
			b.Run(fmt.Sprintf("flows=%d/%s", n, mode), func(b *testing.B) {
				d, err := Load(Config{MapEntries: uint32(n), PerCPUValues: !shared})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				var memlock uint64
				for _, m := range []*ebpf.Map{d.objs.FlowsA, d.objs.FlowsB, d.objs.Flows4A, d.objs.Flows4B} {
					if info, err := m.Info(); err == nil {
						if ml, ok := info.Memlock(); ok {
							memlock += ml
						}
					}
				}
				b.ReportAllocs()
				b.ResetTimer() // not the loading
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					fillActive(b, d, n)
					b.StartTimer()
					var got uint64
					if _, err := d.DrainFunc(func(r *flow.Record) { got += r.Packets }); err != nil {
						b.Fatal(err)
					}
					if got != uint64(n)*10*uint64(d.drain.ncpu) {
						b.Fatalf("drained %d packets, want %d", got, n*10*d.drain.ncpu)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/flow")
				b.ReportMetric(float64(memlock)/(1<<20), "map-MiB")
			})
		}
	}
}
