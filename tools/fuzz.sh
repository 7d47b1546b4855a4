#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs every Go fuzz target in the module briefly: the decoders of outside
# input and the parsers. FUZZTIME is go test's -fuzztime: a count of
# executions (default 100000x) or a duration (FUZZTIME=10m for a long run).
#
# CI uses a count, not a duration: with a duration, Go's fuzzing
# coordinator up to go1.26 can report "context deadline exceeded" when the
# time runs out while a worker is between inputs (golang/go#75804), a
# failure with no failing input. A count has no deadline to race; an input
# that hangs is still caught, by -timeout, with every goroutine's stack.
# A failure leaves its input under the package's testdata/fuzz for a
# regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-100000x}
timeout=${FUZZTIMEOUT:-10m}
status=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -timeout "$timeout" "$pkg" || status=1
	done
done
exit $status
