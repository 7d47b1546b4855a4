// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"testing"
	"time"
)

// TestPosition: a file's position names it as it is named once finished,
// with its slot read as UTC, so rows shipped from a current file sort
// with the rest of it.
func TestPosition(t *testing.T) {
	slot := time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC)
	for _, path := range []string{"/var/flows/2025/03/14/kflow.current.202503140925", "/var/flows/2025/03/14/kflow.202503140925"} {
		p := position("kflow", path)
		if p.File != "/var/flows/2025/03/14/kflow.202503140925" || !p.Slot.Equal(slot) {
			t.Errorf("%s: %+v", path, p)
		}
	}
	if p := position("kflow", "/var/flows/other"); p.File != "/var/flows/other" || !p.Slot.IsZero() {
		t.Errorf("a name without a stamp: %+v", p)
	}
}
