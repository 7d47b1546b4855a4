// SPDX-License-Identifier: Apache-2.0

// Package query answers questions about flow files the way nfdump does:
// it selects files (paths, directory trees, a time window matched against
// file names first), scans their records through a filter, and computes
// top-N statistics (-s), aggregations (-A, with prefix masks), bidirectional
// pairs (-B) and summaries (-I).
//
// It holds no output formatting: cmd/kflow renders what it returns.
package query
