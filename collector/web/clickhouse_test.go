// SPDX-License-Identifier: Apache-2.0

package web

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/chquery/chqtest"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chtest.StopShared()
	os.Exit(code)
}

// apiScan is what an answer says of what was read (files, blocks,
// records read), which differs between backends by nature, and a
// filtered summary's blocks (see chqtest.Encode).
var apiScan = regexp.MustCompile(`"scan":\{[^}]*\}|"blocks":\d+`)

// TestAPIClickHouse: the API's golden requests, answered from the same
// flows shipped into ClickHouse (the shared 18.16 test server), give the
// file backend's bodies.
func TestAPIClickHouse(t *testing.T) {
	dir, _ := fixture(t)
	files := newServer(t, dir, Config{})
	ch, err := New(Config{Backend: chqtest.Backend(t, "kflow_api_golden", dir), Paths: []string{dir}, Version: "test",
		Now: func() time.Time { return fixtureNow }})
	if err != nil {
		t.Fatal(err)
	}
	compareBackends(t, files, ch, apiCases)
}

// TestAPICgroupClickHouse: the golden requests by cgroup dimensions give
// the file backend's bodies from ClickHouse too.
func TestAPICgroupClickHouse(t *testing.T) {
	dir := cgroupFixture(t)
	files := newServer(t, dir, Config{})
	ch, err := New(Config{Backend: chqtest.Backend(t, "kflow_api_cgroup", dir), Paths: []string{dir}, Version: "test",
		Now: func() time.Time { return fixtureNow }})
	if err != nil {
		t.Fatal(err)
	}
	compareBackends(t, files, ch, apiCgroupCases)
}

// compareBackends asks both servers each case: same status, same body
// but for what the scan read.
func compareBackends(t *testing.T, files, ch *Server, cases []struct{ name, url string }) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want, got := get(t, files, tt.url), get(t, ch, tt.url)
			if got.Code != want.Code {
				t.Errorf("status %d, files %d: %s", got.Code, want.Code, got.Body)
			}
			g, w := got.Body.String(), want.Body.String()
			if tt.name != "summary" {
				g, w = apiScan.ReplaceAllString(g, ""), apiScan.ReplaceAllString(w, "")
			}
			if g != w {
				t.Errorf("ClickHouse:\n%.3000s\nfiles:\n%.3000s", g, w)
			}
		})
	}
}
