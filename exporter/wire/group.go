// SPDX-License-Identifier: Apache-2.0

package wire

import "github.com/kflow-dev/kflow/exporter/flow"

// GroupFamilies returns recs with the records whose source address is
// not IPv6 first and the IPv6 ones after them, each group in its order in
// recs; with pairs, records go by biflow pair (initiator and responder in
// a row, grouped by the initiator's address). It returns recs itself when
// it is grouped already, and a new slice otherwise: recs is not changed.
//
// An encoder fills a message with one data set when records of one family
// follow each other, so that grouped records make messages of one length,
// which the UDP transport sends in one GSO send each run.
func GroupFamilies(recs []flow.Record, pairs bool) []flow.Record {
	step := 1
	if pairs {
		step = 2
	}
	n := len(recs) / step * step
	// Grouped already when no IPv4 record comes after an IPv6 one.
	seen6, mixed := false, false
	for i := 0; i < n && !mixed; i += step {
		is6 := recs[i].Src.Is6()
		mixed = seen6 && !is6
		seen6 = seen6 || is6
	}
	if !mixed {
		return recs
	}
	out := make([]flow.Record, 0, len(recs))
	for _, want6 := range []bool{false, true} {
		for i := 0; i < n; i += step {
			if recs[i].Src.Is6() == want6 {
				out = append(out, recs[i:i+step]...)
			}
		}
	}
	return append(out, recs[n:]...) // an odd record out, left to the encoder to refuse
}
