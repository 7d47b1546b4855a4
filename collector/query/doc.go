// SPDX-License-Identifier: Apache-2.0

// Package query answers questions about flows the way nfdump does, for
// every view of kflow: the command line, the web page and its API.
//
// A view builds a Request (time window, filter, and what to compute: a
// summary, top-N statistics, a time series, or a listing of records,
// aggregated or paired, ordered and paged) and hands it to a Backend,
// which returns a typed Result. FileBackend answers from flow files: it
// selects files by name (paths, directory trees, the window), scans their
// records through the filter on parallel workers, and takes shortcuts
// that are proven equal to a scan (the stored summaries of whole files).
// Other backends (a database) implement the same interface, so views
// cannot disagree.
//
// It holds no text formatting; json.go holds the one JSON encoding of
// results that every view prints.
package query
