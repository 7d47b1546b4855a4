// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"testing"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	chtest.StopShared()
	os.Exit(code)
}
