// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/synthflow/synthdir"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixtureStart and fixtureNow frame the fixed flows: two hours of a
// synthetic mix, two exporters, in 5-minute files.
var (
	fixtureStart = time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC)
	fixtureNow   = fixtureStart.Add(2 * time.Hour)
)

func fixture(t *testing.T) (string, []flow.Record) {
	t.Helper()
	dir := t.TempDir()
	recs, err := synthdir.Write(dir, synthdir.Options{Seed: 3, Start: fixtureStart, Span: 2 * time.Hour, Flows: 2400,
		Exporters: []netip.Addr{netip.MustParseAddr("198.18.255.1"), netip.MustParseAddr("198.18.255.2")}, Wave: 0.5}, true)
	if err != nil {
		t.Fatal(err)
	}
	return dir, recs
}

func newServer(t *testing.T, dir string, cfg Config) *Server {
	t.Helper()
	cfg.Backend = &query.FileBackend{Paths: []string{dir}}
	cfg.Paths = []string{dir}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixtureNow }
	}
	cfg.Version = "test"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, h http.Handler, url string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// golden compares got with testdata/NAME.json (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%.3000s\n--- want\n%.3000s", name, path, got, want)
	}
}

// apiWindow is the fixture's whole window.
const apiWindow = "from=2025-03-14T08:00:00Z&to=2025-03-14T10:00:00Z"

// apiCases are the golden requests of the API (asked of ClickHouse too
// in TestAPIClickHouse).
var apiCases = []struct{ name, url string }{
	{"meta", "/api/v1/meta"},
	{"summary", "/api/v1/summary"},
	{"summary_window", "/api/v1/summary?last=1h&filter=proto+udp"},
	{"stats", "/api/v1/stats?" + apiWindow + "&stat=srcip/bytes&stat=dstport/flows/packets&stat=proto/bytes&top=5"},
	{"series", "/api/v1/series?" + apiWindow + "&dims=srcip/24&top=3&step=15m&unit=l3bps&rank=avg&filter=proto+tcp"},
	{"series_overlays", "/api/v1/series?from=2025-03-14T09:00:00Z&to=2025-03-14T10:00:00Z&dims=srcip&top=3&step=10m&unit=pps&rank=peak&reverse=1&previous=1h"},
	{"series_total", "/api/v1/series?last=30m&unit=fps"},
	{"sankey", "/api/v1/sankey?" + apiWindow + "&dims=proto,dstport,dstip/16&top=6&unit=l2bps"},
	{"flows", "/api/v1/flows?" + apiWindow + "&filter=proto+udp+and+dst+port+53&limit=3"},
	{"flows_ordered", "/api/v1/flows?" + apiWindow + "&order=bytes&limit=3&offset=2"},
	{"flows_bidir", "/api/v1/flows?" + apiWindow + "&bidir=B&order=bytes&limit=2&filter=proto+tcp"},
	{"filter", "/api/v1/filter?filter=src+net+198.18.0.0/16+and+dst+port+443"},
	{"filter_error", "/api/v1/filter?filter=proto+tcp+and+port+99999"},
	{"error_window", "/api/v1/series?from=2025-01-01T00:00:00Z&to=2025-03-14T00:00:00Z"},
	{"error_no_window", "/api/v1/flows"},
	{"error_dim", "/api/v1/series?last=1h&dims=bogus"},
	{"error_previous", "/api/v1/series?last=1h&step=1m&previous=90s"},
	{"error_sankey", "/api/v1/sankey?last=1h&dims=srcip"},
	{"error_endpoint", "/api/v1/nothing"},
}

// TestAPIGolden: every endpoint on the fixed flows, status and body.
func TestAPIGolden(t *testing.T) {
	dir, _ := fixture(t)
	s := newServer(t, dir, Config{})
	for _, tt := range apiCases {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, s, tt.url)
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s: %v: %s", tt.url, err, rec.Body)
			}
			out, _ := json.MarshalIndent(map[string]any{"status": rec.Code, "body": v}, "", "  ")
			golden(t, tt.name, append(out, '\n'))
		})
	}
}

// cgroupPaths are the cgroups the records of cgroupFixture take in turn:
// none, two systemd services, a Kubernetes container (its pod too) and a
// user's app scope.
var cgroupPaths = []string{"", "/system.slice/nginx.service", "/system.slice/sshd.service",
	"/kubepods/burstable/pod1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5/" + strings.Repeat("ab", 32),
	"/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope"}

// cgroupFixture is fixture's mix with the local sockets' cgroups.
func cgroupFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := synthdir.Write(dir, synthdir.Options{Seed: 3, Start: fixtureStart, Span: 2 * time.Hour, Flows: 2400,
		Cgroups: cgroupPaths}, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

// apiCgroupCases are the golden requests by the cgroup dimensions, on
// cgroupFixture (asked of ClickHouse too in TestAPICgroupClickHouse).
var apiCgroupCases = []struct{ name, url string }{
	{"cgroup_series_unit", "/api/v1/series?" + apiWindow + "&dims=unit&step=30m&unit=l3bps"},
	{"cgroup_series_container", "/api/v1/series?" + apiWindow + "&dims=container&step=1h&unit=fps&filter=proto+tcp"},
	{"cgroup_sankey", "/api/v1/sankey?" + apiWindow + "&dims=unit,proto&top=6&unit=pps"},
	{"cgroup_stats", "/api/v1/stats?" + apiWindow + "&stat=unit/bytes&stat=container/flows&stat=pod&stat=cgroup/bytes"},
	{"cgroup_flows", "/api/v1/flows?" + apiWindow + "&filter=unit+nginx+or+container+abab&order=bytes&limit=2"},
}

// TestAPICgroupGolden: series, sankeys, statistics and flows by the
// cgroup dimensions, and the lines of a series by unit equal the unit
// statistic's entries.
func TestAPICgroupGolden(t *testing.T) {
	s := newServer(t, cgroupFixture(t), Config{})
	for _, tt := range apiCgroupCases {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, s, tt.url)
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s: %v: %s", tt.url, err, rec.Body)
			}
			if rec.Code != http.StatusOK {
				t.Errorf("%s: status %d", tt.url, rec.Code)
			}
			out, _ := json.MarshalIndent(map[string]any{"status": rec.Code, "body": v}, "", "  ")
			golden(t, tt.name, append(out, '\n'))
		})
	}

	var series query.SeriesJSON
	var stats query.StatsJSON
	if err := json.Unmarshal(get(t, s, "/api/v1/series?"+apiWindow+"&dims=unit&step=2h&unit=l3bps&top=10").Body.Bytes(), &series); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(get(t, s, "/api/v1/stats?"+apiWindow+"&stat=unit/bytes&top=10").Body.Bytes(), &stats); err != nil {
		t.Fatal(err)
	}
	got, want := map[string]uint64{}, map[string]uint64{}
	for _, l := range series.Lines {
		got[l.Key[0]] = l.Stats.Total / 8
	}
	for _, e := range stats.Stats[0].Top {
		want[e.Value] = e.Bytes
	}
	if len(want) != 4 || !reflect.DeepEqual(got, want) || series.Total.Stats.Total/8 != stats.Total.Bytes {
		t.Errorf("series by unit %v (total %d bytes), statistic %v (total %d)", got, series.Total.Stats.Total/8, want, stats.Total.Bytes)
	}
}
