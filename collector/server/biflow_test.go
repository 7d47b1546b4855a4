// SPDX-License-Identifier: Apache-2.0

package server_test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestBiflowIntoCollector: two kflow exporters watch the same interface,
// one exporting RFC 5103 biflows, one unidirectional flows, each to a
// collector of its own. The collector turns each biflow record into two
// directional records: its files hold the same totals per flow as the
// unidirectional export's, and both equal the traffic's ground truth.
func TestBiflowIntoCollector(t *testing.T) {
	testenv.RequirePrivileged(t)
	// Two exporters on one interface need TCX (a legacy TC filter of the
	// second would replace the first's).
	if !bpf.HaveTCX() {
		testenv.RequireFeature(t, "TCX (two kflow exporters on one interface)", bpf.ErrMissingFeature)
	}
	p := testenv.NewPair(t)
	uni, bi := startCollector(t, p.A), startCollector(t, p.A)
	start := func(addr string, extra ...string) *testenv.Proc {
		ready := filepath.Join(t.TempDir(), "exporter-ready")
		args := append([]string{"exporter", "run", "-c", "ipfix://" + addr, "-i", p.AIf, "--pin-dir", "", "--hook", "tcx",
			"--ready-file", ready, "--drain-interval", "100ms", "--idle-timeout", "1s"}, extra...)
		exp := testenv.StartIn(t, p.A, testenv.KflowBinary(t), args...)
		if err := testenv.WaitFile(ready, testenv.Patience, exp); err != nil {
			t.Fatalf("%v\n%s", err, exp.Output())
		}
		return exp
	}
	expUni, expBi := start(uni.udp), start(bi.udp, "--biflow")
	since := time.Now()
	truth := dualTraffic(t, p, 400)
	for i, v6 := range []bool{false, true} {
		if _, err := p.TCPSession(v6, uint16(7010+i), []int{10, 3000}); err != nil {
			t.Fatal(err)
		}
	}
	for _, exp := range []*testenv.Proc{expUni, expBi} {
		if err := exp.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
			t.Fatalf("exporter: %v\n%s", err, exp.Output())
		}
	}
	recsUni, recsBi := pairFlows(t, p, uni.stop(t)), pairFlows(t, p, bi.stop(t))
	// The UDP and ICMP truth is known by construction; the TCP sessions'
	// only by the unidirectional export, checked against its own truth
	// elsewhere (TestOwnExporterIntoCollector).
	compareTruth(t, withoutTCP(recsBi), truth, true, since)
	compareTruth(t, withoutTCP(recsUni), truth, true, since)
	gotUni, gotBi := testenv.Sum(recsUni), testenv.Sum(recsBi)
	if len(gotUni) != len(gotBi) {
		t.Errorf("%d flows from the unidirectional export, %d from the biflows", len(gotUni), len(gotBi))
	}
	for k, u := range gotUni {
		if b := gotBi[k]; b.Packets != u.Packets || b.Octets != u.Octets || b.TCPFlags != u.TCPFlags {
			t.Errorf("%v: biflows gave %+v, the unidirectional export %+v", k, b, u)
		}
	}
	tcp := 0
	for k := range gotBi {
		if k.Proto == flow.ProtoTCP {
			tcp++
		}
	}
	if tcp != 4 {
		t.Errorf("%d TCP directions stored from the biflows, want 4", tcp)
	}
	if t.Failed() {
		t.Logf("biflow exporter:\n%s\ncollector:\n%s", expBi.Output(), bi.proc.Output())
	}
}

func withoutTCP(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for _, r := range recs {
		if r.Proto != flow.ProtoTCP {
			out = append(out, r)
		}
	}
	return out
}
