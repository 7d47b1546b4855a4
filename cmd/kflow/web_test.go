// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/tools/synthflow/synthdir"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// startWeb runs "kflow web" in-process on a free loopback port and
// returns the page's URL; the test's end stops it.
func startWeb(t *testing.T, args ...string) string {
	t.Helper()
	requireWired(t, "web")
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"web", "--listen", "127.0.0.1:0", "--ready-file", ready}, args...), io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("kflow web: exit %d: %s", code, stderr.String())
		}
	})
	if err := testenv.WaitFile(ready, time.Minute, nil); err != nil {
		cancel()
		t.Fatalf("kflow web did not start: %v: %s", err, stderr.String())
	}
	b, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: time.Minute}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
}

// TestWebEqualsQuery: the API's top-N tables and totals are, exactly,
// what kflow file query -s and -I print for the same files, window and
// filter.
func TestWebEqualsQuery(t *testing.T) {
	dir := queryDir(t)
	base := startWeb(t, "-R", dir)
	const flt = "proto tcp or proto udp"
	window := url.Values{"from": {"2025-03-14T09:00:00Z"}, "to": {"2025-03-14T10:00:00Z"}, "filter": {flt}, "top": {"5"}}
	stats := []string{"srcip/bytes", "dstip/flows", "dstport/packets/bytes", "proto/bytes", "exporter/flows"}
	q := url.Values{"stat": stats}
	for k, v := range window {
		q[k] = v
	}
	var api query.StatsJSON
	getJSON(t, base+"api/v1/stats?"+q.Encode(), &api)
	args := []string{"-j", "-n", "5", "-t", "2025/03/14.09:00:00-2025/03/14.09:59:59"}
	for _, s := range stats {
		args = append(args, "-s", s)
	}
	code, out, errOut := runQuery(t, append(args, dir, flt)...)
	if code != exitOK {
		t.Fatalf("file query: exit %d: %s", code, errOut)
	}
	var cli query.StatsJSON
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(api, cli) || len(api.Stats) != 6 || api.Total.Flows == 0 {
		t.Errorf("statistics differ:\napi %+v\ncli %+v", api, cli)
	}
	// Summaries: of a filtered window, and of the whole files.
	for _, tt := range []struct {
		query string
		args  []string
	}{
		{"from=2025-03-14T09:00:00Z&to=2025-03-14T10:00:00Z&filter=" + url.QueryEscape(flt), []string{"-t", "2025/03/14.09:00:00-2025/03/14.09:59:59", dir, flt}},
		{"", []string{dir}},
	} {
		var api query.SummaryJSON
		getJSON(t, base+"api/v1/summary?"+tt.query, &api)
		code, out, errOut := runQuery(t, append([]string{"-I", "-j"}, tt.args...)...)
		if code != exitOK {
			t.Fatalf("file query -I: exit %d: %s", code, errOut)
		}
		var cli query.SummaryJSON
		if err := json.Unmarshal([]byte(out), &cli); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(api, cli) || api.Total.Flows == 0 {
			t.Errorf("summary %q differs:\napi %+v\ncli %+v", tt.query, api, cli)
		}
	}
}

// TestWebCgroupSeriesEqualsQuery: the API's series by unit, container,
// pod and cgroup (buckets summed) have, line by line, the
// flows, packets and bytes that kflow file query -s prints for the same
// files and window.
func TestWebCgroupSeriesEqualsQuery(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC)
	paths := []string{"", "/system.slice/nginx.service", "/system.slice/sshd.service",
		"/kubepods/burstable/pod1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5/" + strings.Repeat("ab", 32),
		"/system.slice/docker-" + strings.Repeat("0f", 32) + ".scope"}
	if _, err := synthdir.Write(dir, synthdir.Options{Seed: 5, Start: start, Span: 2 * time.Hour, Flows: 3000, Cgroups: paths}, false); err != nil {
		t.Fatal(err)
	}
	base := startWeb(t, "-R", dir)
	for _, dim := range []string{"unit", "container", "pod", "cgroup"} {
		q := url.Values{"from": {"2025-03-14T08:30:00Z"}, "to": {"2025-03-14T09:30:00Z"}, "dims": {dim}, "step": {"1h"}, "unit": {"pps"}, "top": {"20"}}
		var api query.SeriesJSON
		getJSON(t, base+"api/v1/series?"+q.Encode(), &api)
		code, out, errOut := runQuery(t, "-j", "-n", "0", "-t", "2025/03/14.08:30:00-2025/03/14.09:30:00", "-s", dim+"/bytes", dir)
		if code != exitOK {
			t.Fatalf("file query -s %s/bytes: exit %d: %s", dim, code, errOut)
		}
		var cli query.StatsJSON
		if err := json.Unmarshal([]byte(out), &cli); err != nil {
			t.Fatal(err)
		}
		type counts struct{ flows, packets, bytes uint64 }
		got, want := map[string]counts{}, map[string]counts{}
		for _, l := range api.Lines {
			if l.Other {
				t.Fatalf("series by %s: an Other line", dim)
			}
			var c counts
			for i := range l.Flows {
				c.flows, c.packets, c.bytes = c.flows+l.Flows[i], c.packets+l.Packets[i], c.bytes+l.Bytes[i]
			}
			got[l.Name] = c
		}
		for _, e := range cli.Stats[0].Top {
			want[e.Value] = counts{e.Flows, e.Packets, e.Bytes}
		}
		if !reflect.DeepEqual(got, want) || len(want) < 2 || cli.Total.Flows == 0 {
			t.Errorf("series by %s:\n%v\nfile query -s %s/bytes (%d flows):\n%v", dim, got, dim, cli.Total.Flows, want)
		}
	}
}
