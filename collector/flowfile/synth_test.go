// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"net/netip"

	"github.com/kflow-dev/kflow/tools/synthflow"
)

// synthExporter is the exporter of the synthetic records.
var synthExporter = netip.MustParseAddr("198.18.255.1")

// newSynth returns the synthetic mix the tests write and read, with
// millisecond times.
func newSynth(seed uint64) *synthflow.Mix {
	return synthflow.NewMix(synthflow.Options{Seed: seed, Exporter: synthExporter})
}

// newSynthNs is newSynth with nanosecond times when ns is set.
func newSynthNs(seed uint64, ns bool) *synthflow.Mix {
	return synthflow.NewMix(synthflow.Options{Seed: seed, Exporter: synthExporter, SubMs: ns})
}
