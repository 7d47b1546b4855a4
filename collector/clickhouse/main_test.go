// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"os"
	"testing"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
)

// TestMain stops the server the tests share (chtest.Shared).
func TestMain(m *testing.M) {
	code := m.Run()
	chtest.StopShared()
	os.Exit(code)
}
