// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestBiflowExport runs the agent with --biflow: the IPFIX collector gets
// one biflow record per connection, initiated by the side that opened
// it, and decoded they give exactly the directional truth, as the local
// files do.
func TestBiflowExport(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	capture, err := testenv.StartCapture(p.B, p.BIndex, true)
	if err != nil {
		t.Fatal(err)
	}
	a, sink, col, stop := runToIPFIX(t, p, Config{Biflow: true})
	for _, v6 := range []bool{false, true} {
		if _, err := p.UDPEcho(v6, 41000, 7001, []int{1, 200, 1400}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Ping(v6, 3, 32); err != nil {
			t.Fatal(err)
		}
		if _, err := p.TCPSession(v6, 7002, []int{10, 3000}); err != nil {
			t.Fatal(err)
		}
	}
	truth, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	truth = p.OwnFlows(truth)
	stop()

	s := ipfix.NewSession(wire.Limits{})
	var m ipfix.Message
	var decoded []flow.Record
	for _, b := range col.received(t, a) {
		if err := s.Decode(&m, b); err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, m.Records...)
	}
	for name, recs := range map[string][]flow.Record{"collector": decoded, "local files": sink.all()} {
		got := testenv.Sum(ownRecords(p, recs))
		for k, w := range truth {
			if got[k] != w {
				t.Errorf("%s: %v: got %+v, want %+v", name, k, got[k], w)
			}
		}
		if len(got) != len(truth) {
			t.Errorf("%s: %d directional flows, want %d", name, len(got), len(truth))
		}
	}
	// A opened every connection: each biflow record decodes into A's
	// record followed by B's.
	own := ownRecords(p, decoded)
	for i := 0; i+1 < len(own); i += 2 {
		if own[i].Src != p.A4 && own[i].Src != p.A6 || own[i+1].Dst != own[i].Src || own[i+1].Direction != flow.Ingress {
			t.Errorf("biflow %d: %v > %v then %v > %v, want A's then B's", i/2, own[i].Src, own[i].Dst, own[i+1].Src, own[i+1].Dst)
		}
	}
	if len(own) != len(truth) {
		t.Errorf("%d records decoded, want %d", len(own), len(truth))
	}
	t.Logf("%d connections, each one biflow record", len(own)/2)
}

func ownRecords(p *testenv.Pair, recs []flow.Record) []flow.Record {
	var out []flow.Record
	for _, r := range recs {
		if p.Owns(r.Src) && p.Owns(r.Dst) {
			out = append(out, r)
		}
	}
	return out
}

// TestBiflowNetFlowRefused: New refuses biflows with a NetFlow collector.
func TestBiflowNetFlowRefused(t *testing.T) {
	target, _ := transport.ParseTarget("nfv9://127.0.0.1:9")
	_, err := New(context.Background(), Config{Collectors: []transport.Target{target}, Biflow: true})
	if !errors.Is(err, ErrBiflowFormat) {
		t.Fatalf("err %v, want ErrBiflowFormat", err)
	}
}
