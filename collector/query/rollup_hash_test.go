// SPDX-License-Identifier: Apache-2.0

package query

import (
	"net/netip"
	"testing"
)

// TestExporterHashZero: a new RollupBuilder's zero exporter hash is the
// hash of the zero address, so records without an exporter need no
// first-record case.
func TestExporterHashZero(t *testing.T) {
	if h := exporterHash(netip.Addr{}); h != (RollupBuilder{}).expHash {
		t.Errorf("exporterHash(zero address) = %#x, the builder starts with %#x", h, (RollupBuilder{}).expHash)
	}
}
