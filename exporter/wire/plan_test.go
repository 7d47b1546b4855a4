// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestPlanMatchesGeneric decodes random records of random fixed-layout
// templates with the compiled plan and with the generic per-field path:
// the records must be identical.
func TestPlanMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []uint16{
		IESourceIPv4Address, IEDestinationIPv4Address, IESourceIPv6Address, IEDestinationIPv6Address,
		IEIPNextHopIPv4Address, IEBGPNextHopIPv4Address, IEIPNextHopIPv6Address, IEBGPNextHopIPv6Address,
		IEOctetDeltaCount, IEPacketDeltaCount, IEOctetTotalCount, IEPacketTotalCount,
		IEProtocolIdentifier, IEIPClassOfService, IETCPControlBits, IESourceTransportPort,
		IEDestinationTransportPort, IEIngressInterface, IEEgressInterface, IEFlowStartMilliseconds,
		IEFlowEndMilliseconds, IEFlowStartSeconds, IEFlowEndNanoseconds, IEFlowDirection, IEFlowEndReason,
		IEIPVersion, IEICMPTypeCodeIPv4, IEICMPTypeCodeIPv6, IEICMPTypeIPv4, IEMinimumTTL, IEMaximumTTL,
		IEVlanID, IEDot1qVlanID, IEDot1qCustomerVlanID, IESamplingInterval, IEFlowStartSysUpTime,
		IESystemInitTimeMilliseconds, 9999,
	}
	lens := []uint16{1, 2, 3, 4, 8, 16, 5}
	for iter := range 2000 {
		var fields []Field
		for range 1 + rng.IntN(12) {
			f := Field{ID: ids[rng.IntN(len(ids))], Length: lens[rng.IntN(len(lens))]}
			if rng.IntN(20) == 0 {
				f.Enterprise = 9 // ignored by both paths (ReversePEN templates have no plan)
			}
			fields = append(fields, f)
		}
		body := make([]byte, MinRecordLen(fields)*(1+rng.IntN(4))+rng.IntN(3))
		for i := range body {
			body[i] = byte(rng.Uint32())
			if rng.IntN(4) == 0 {
				body[i] = 0
			}
		}
		ctx := Context{Domain: 1, ExportMs: 1_700_000_000_000, UptimeMs: -1}
		decode := func(generic bool) Data {
			s := NewTemplates(Limits{})
			if err := s.Put(1, 256, 0, fields); err != nil {
				t.Fatal(err)
			}
			tp := s.Get(1, 256)
			if generic {
				tp.plan, tp.compiled = nil, true
			} else if tp.decodePlan() == nil {
				t.Fatalf("no plan for %v", fields)
			}
			var d Data
			if err := s.DecodeSet(&d, &ctx, tp, body, 20); err != nil {
				t.Fatal(err)
			}
			return d
		}
		if fast, slow := decode(false), decode(true); !reflect.DeepEqual(fast, slow) {
			t.Fatalf("iteration %d, fields %v:\nplan    %+v\ngeneric %+v", iter, fields, fast.Records, slow.Records)
		}
	}
}

// TestNoPlanForBiflows: templates with reverse elements (RFC 5103) take
// the generic path, which turns their records into two.
func TestNoPlanForBiflows(t *testing.T) {
	s := NewTemplates(Limits{})
	fields := []Field{{ID: IEOctetDeltaCount, Length: 8}, {ID: IEOctetDeltaCount, Length: 8, Enterprise: ReversePEN}}
	if err := s.Put(1, 256, 0, fields); err != nil {
		t.Fatal(err)
	}
	if p := s.Get(1, 256).decodePlan(); p != nil {
		t.Errorf("a biflow template got a plan")
	}
}
