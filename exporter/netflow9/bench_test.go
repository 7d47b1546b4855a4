// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

func BenchmarkEncode(b *testing.B) {
	wiretest.BenchmarkEncode(b, newEncoder(b, Config{}, &wiretest.Clock{T: t0}))
}

func BenchmarkDecode(b *testing.B) {
	wiretest.BenchmarkDecode(b, newEncoder(b, Config{}, &wiretest.Clock{T: t0}), newSession(wire.Limits{}))
}
