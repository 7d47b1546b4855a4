// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// Sampling, end to end: the kflow binary samples a blast of packets of
// one flow, and a third-party collector scales what kflow exported by the
// rate kflow announced. Every packet is the same size, so packets and
// octets scale alike.
//
// Random sampling keeps each packet with probability p = 1/N, so the
// packets kept, X, are Binomial(K, p) with mean mu = K/N. By the
// Chernoff bound P(|X - mu| >= d*mu) <= 2 exp(-d*d*mu/3); the test allows
// d = sqrt(3 ln(2e9) / mu), so it fails by chance with probability below
// 1e-9. Count-based sampling keeps every Nth packet of each CPU: per CPU
// X_c = floor(K_c/N), so K - N*ncpu < X*N <= K exactly.
//
// The collectors read different elements: nfacctd (with
// nfacctd_renormalize) reads samplingInterval (IE 34), nfcapd 1.7.1
// samplingPacketInterval/Space (305/306) and the NetFlow v5 header.
// kflow sends the same messages to a sink too, where kflow's decoder and
// tshark check what the options records announce.
func TestSampling(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	const n, blast, size = 4, 20000, 64
	for _, c := range []struct {
		format, method, collector string
	}{
		{"ipfix", "random", "nfacctd"},
		{"ipfix", "random", "nfcapd"},
		{"ipfix", "count", "nfcapd"},
		{"nfv9", "random", "nfcapd"},
		{"nfv5", "random", "nfcapd"},
	} {
		t.Run(c.format+"/"+c.method+"/"+c.collector, func(t *testing.T) {
			t.Parallel()
			p := testenv.NewPair(t)
			if err := p.DisableIPv6(); err != nil { // the blast is all the traffic there is
				t.Fatal(err)
			}
			const port, sinkPort = 9995, 9996
			sink := startSink(t, p.A, sinkPort)
			var nf *nfcapd
			var na *nfacctd
			if c.collector == "nfcapd" {
				nf = startNfcapd(t, p.A, port)
			} else {
				na = startNfacctd(t, p.A, port, "nfacctd_renormalize: true")
			}
			// Sequence numbers as tshark checks them (RFC 7011's wording).
			k := startKflow(t, p, fmt.Sprintf("%s://127.0.0.1:%d", c.format, port),
				"-c", fmt.Sprintf("%s://127.0.0.1:%d", c.format, sinkPort),
				"--sampling", fmt.Sprint(n), "--sampling-method", c.method, "--ipfix-sequence", "all")
			truth, err := p.UDPBlast(false, 31000, 1, blast, size)
			if err != nil {
				t.Fatal(err)
			}
			var sent testenv.Counts
			for _, cnt := range truth {
				sent = cnt
			}
			k.stop(t)
			var got tally
			if nf != nil {
				nf.stop(t)
				for _, r := range readNfdump(t, p, nf.dir, false) {
					got.Packets += r.packets
					got.Octets += r.octets
				}
			} else {
				for _, f := range na.waitScaled(t, p) {
					got.Packets += f.Packets
					got.Octets += f.Octets
				}
				na.stop(t)
			}
			lo, hi := sent.Packets, sent.Packets
			if c.method == "random" {
				mu := float64(sent.Packets) / n
				d := math.Sqrt(3 * math.Log(2e9) / mu)
				lo, hi = uint64(math.Floor(float64(sent.Packets)*(1-d))), uint64(math.Ceil(float64(sent.Packets)*(1+d)))
			} else {
				lo = sent.Packets - uint64(n*runtime.NumCPU()) + 1
			}
			t.Logf("%s scaled %d packets %d octets; sent %d packets %d octets; allowed %d..%d packets",
				c.collector, got.Packets, got.Octets, sent.Packets, sent.Octets, lo, hi)
			if got.Packets < lo || got.Packets > hi || got.Packets%n != 0 || got.Octets != got.Packets*(size+28) {
				t.Errorf("%s: %d packets %d octets, want a multiple of %d in %d..%d, %d octets each", c.collector,
					got.Packets, got.Octets, n, lo, hi, size+28)
			}
			checkSamplingAnnounced(t, c.format, c.method, n, sink.stop(t))
		})
	}
}

// checkSamplingAnnounced decodes kflow's messages with kflow's decoders
// and tshark: the sampling interval and the method used.
func checkSamplingAnnounced(t *testing.T, format, method string, n uint32, msgs [][]byte) {
	t.Helper()
	algo := wire.SamplingRandom
	if method == "count" {
		algo = wire.SamplingDeterministic
	}
	var sampling []wire.Sampling
	switch format {
	case "ipfix":
		s := ipfix.NewSession(wire.Limits{})
		var m ipfix.Message
		for _, b := range msgs {
			if err := s.Decode(&m, b); err != nil {
				t.Fatal(err)
			}
			sampling = append(sampling, m.Sampling...)
		}
	case "nfv9":
		s := netflow9.NewSession(wire.Limits{})
		var m netflow9.Message
		for _, b := range msgs {
			if err := s.Decode(&m, b); err != nil {
				t.Fatal(err)
			}
			sampling = append(sampling, m.Sampling...)
		}
	}
	if format != "nfv5" {
		if len(sampling) == 0 {
			t.Errorf("no sampling options record in kflow's %d messages", len(msgs))
		}
		for _, s := range sampling {
			if s.Interval != n || s.Algorithm != algo {
				t.Errorf("sampling options record %+v, want interval %d algorithm %d", s, n, algo)
			}
		}
	}
	r := newTsharkRun(t, 9996, msgs)
	out := r.dissect(t)
	want := map[string][]string{
		"ipfix/random": {"Sampling algorithm: Random sampling (2)", "Selector Algorithm: Uniform probabilistic Sampling (4)", "Sampling Probability: 0.25"},
		"ipfix/count":  {"Sampling algorithm: Deterministic sampling (1)", "Selector Algorithm: Systematic count-based Sampling (1)", "Sampling Packet Space: 3"},
		"nfv9/random":  {"Sampling algorithm: Random sampling (2)", "Sampling interval: 4"},
		"nfv5/random":  {"SamplingMode: Random sampling mode configured (2)", "SampleRate: 4"},
	}[format+"/"+method]
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("tshark shows no %q", w)
		}
	}
}
