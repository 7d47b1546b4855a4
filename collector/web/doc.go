// SPDX-License-Identifier: Apache-2.0

// Package web serves the flow explorer: the page (embedded assets) and
// its read-only JSON API under /api/v1/, over a query.Backend.
//
// Every endpoint turns its URL parameters into a query.Request, asks the
// backend, and writes the result in the encodings of collector/query
// (json.go), so the page, the API and kflow file query cannot disagree.
// Every query is bounded: the window's length, the rows, a timeout, and
// the client's context (a query ends when its client goes away); at most
// a few run at once. The API only reads flow files: it never touches the
// collector's receive path or its writer.
//
// Listen binds to loopback unless told otherwise; beyond loopback it
// requires authentication (a bcrypt htpasswd file or a bearer token file)
// and serves TLS when given a certificate. Every response carries a strict
// Content-Security-Policy.
package web
