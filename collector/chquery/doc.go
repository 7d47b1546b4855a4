// SPDX-License-Identifier: Apache-2.0

// Package chquery answers the query library's requests (query.Request)
// from kflow's ClickHouse schema: the same results as the flow files
// give, computed by SQL over the flows table or, for time series that
// allow it, the per-minute and per-hour sums.
//
// Filters become WHERE clauses built from the filter's syntax tree
// (filter.Expr): every value is formatted by the program from parsed
// numbers and netip addresses, never copied from the filter's text, so a
// filter cannot inject SQL. The window is nfdump's -t (start at or after
// From, end at or before To) on the records' nanosecond times. Ties are
// broken as the file engine breaks them; where the file engine keeps the
// order records were read in (listings without an order, -c, the first
// seen direction of a pair), this backend orders by the records'
// position in their flow files, which the shipper stores with each row
// (clickhouse.Position).
package chquery
