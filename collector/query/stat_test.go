// SPDX-License-Identifier: Apache-2.0

package query

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestStatTopEqualsSort: Top's bounded heap gives the first n entries of
// the whole sorted list, by every order, with many ties.
func TestStatTopEqualsSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, elem := range []Element{ElemSrcIP, ElemDstPort} {
		st := NewStat(StatSpec{Element: elem, Orders: []Order{ByFlows}})
		for range 5000 {
			r := flow.Record{Src: netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(4)), byte(rng.IntN(256))}),
				DstPort: uint16(rng.IntN(700)), Proto: flow.ProtoUDP, Packets: uint64(rng.IntN(3)), Octets: uint64(rng.IntN(4) * 100)}
			st.Add(&r)
		}
		for o := ByFlows; o <= ByBPP; o++ {
			all := st.Top(o, 0)
			if len(all) != st.Len() {
				t.Fatalf("%s: Top(0) gave %d of %d entries", elem.Name(), len(all), st.Len())
			}
			for _, n := range []int{1, 3, 10, 100, st.Len()/2 - 1, st.Len()} {
				if got := st.Top(o, n); !reflect.DeepEqual(got, all[:n]) {
					t.Errorf("%s by %s: Top(%d) differs from the first %d of the sorted list", elem.Name(), o, n, n)
				}
			}
		}
	}
}
