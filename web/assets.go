// SPDX-License-Identifier: Apache-2.0

// Package web holds the flow explorer's front end: its sources (src/,
// built with Vite: npm ci && npm run build) and the built page in dist/,
// committed so that go build needs no Node, and embedded here.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Assets returns the built page: index.html and assets/.
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: it is there
	}
	return sub
}
