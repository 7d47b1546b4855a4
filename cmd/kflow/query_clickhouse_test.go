// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/chquery/chqtest"
	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/tools/synthflow/synthdir"
)

// scanOutput is what file query prints of what was read (files, blocks,
// records read, the files' idents, which ClickHouse does not hold), which
// differs between backends by nature (a filtered summary's blocks too: see
// chqtest.Encode).
var scanOutput = regexp.MustCompile(`(?m)^(Files: \d+|Ident: .*|Total flows processed: .*)\n|"scan":\{[^}]*\}|"files":\d+,"idents":\[[^]]*\],"blocks":\d+`)

// TestQueryClickHouse: the golden questions of file query, asked of the
// same flows shipped into ClickHouse (the shared 18.16 test server),
// give the file backend's results, compared in their JSON encoding, and
// file query --clickhouse prints what file query prints on the files.
func TestQueryClickHouse(t *testing.T) {
	requireWired(t, "file")
	dir := queryDir(t)
	url := chqtest.Load(t, "kflow_query_golden", dir)
	ch, err := chquery.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	files := &query.FileBackend{Paths: []string{dir}}
	for _, tt := range queryGoldenCases {
		t.Run(tt.name, func(t *testing.T) { crossCheck(t, dir, url, ch, files, tt.args, tt.filter) })
	}
}

// crossCheck asks the question of file query's args and filter of the
// files in dir and of the same flows in ClickHouse at url (ch): the
// results' JSON encodings are equal, and file query --clickhouse prints
// what file query prints on the files.
func crossCheck(t *testing.T, dir, url string, ch *chquery.Backend, files *query.FileBackend, args []string, filterText string) {
	t.Helper()
	ctx := context.Background()
	q := &querycli.Args{}
	fs := pflag.NewFlagSet("query", pflag.ContinueOnError)
	q.Register(fs)
	var opts []string // -j is kflow's, not the command's: it does not change the request
	for _, a := range args {
		if a != "-j" {
			opts = append(opts, a)
		}
	}
	if err := fs.Parse(append([]string{"--utc"}, opts...)); err != nil {
		t.Fatal(err)
	}
	f, err := filter.Parse(filterText)
	if err != nil {
		t.Fatal(err)
	}
	req, err := q.Request(f, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want, err := files.Query(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ch.Query(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := chqtest.Encode(req, got), chqtest.Encode(req, want); g != w {
		t.Errorf("ClickHouse:\n%s\nfiles:\n%s", g, w)
	}
	var filterArg []string
	if filterText != "" {
		filterArg = []string{filterText}
	}
	_, fromFiles, _ := runQuery(t, slices.Concat(args, []string{dir}, filterArg)...)
	code, fromCH, errOut := runQuery(t, slices.Concat([]string{"--clickhouse", url}, args, filterArg)...)
	if code != exitOK {
		t.Fatalf("--clickhouse: exit %d: %s", code, errOut)
	}
	if g, w := scanOutput.ReplaceAllString(fromCH, ""), scanOutput.ReplaceAllString(fromFiles, ""); g != w {
		t.Errorf("file query --clickhouse:\n%s\nfile query on the files:\n%s", g, w)
	}
}

// TestQueryClickHouseCgroups: the cgroup questions (filters unit,
// container, pod, cgroup; statistics by them; records with their
// cgroups) of flows whose local sockets have cgroups of every layout,
// in ClickHouse and in the files, give the same results and output.
func TestQueryClickHouseCgroups(t *testing.T) {
	requireWired(t, "file")
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const pod = "01234567-89ab-cdef-0123-456789abcdef"
	dir := t.TempDir()
	if _, err := synthdir.Write(dir, synthdir.Options{Seed: 3, Start: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC), Span: 30 * time.Minute,
		Flows: 600, Exporters: []netip.Addr{netip.MustParseAddr("198.18.255.1")}, Cgroups: []string{
			"", "/system.slice/nginx.service", "/system.slice/docker-" + id + ".scope", "/kubepods/burstable/pod" + pod + "/" + id,
			"/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope", "/kflow-test/a", "/kflow-test/a/b", "/"}}, false); err != nil {
		t.Fatal(err)
	}
	url := chqtest.Load(t, "kflow_query_cgroups", dir)
	ch, err := chquery.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	files := &query.FileBackend{Paths: []string{dir}}
	for _, tt := range []struct {
		name, filter string
		args         []string
	}{
		{"stat unit", "", []string{"-s", "unit/bytes", "-s", "container/flows", "-n", "5"}},
		{"stat pod cgroup json", "proto tcp", []string{"-j", "-s", "pod/packets", "-s", "cgroup/bytes"}},
		{"unit filter json", "unit nginx", []string{"-o", "json", "-c", "20"}},
		{"container prefix", "container 0123456789ab and not unit docker-" + id + ".scope", []string{"-o", "ndjson"}},
		{"pod summary", "pod " + pod, []string{"-I"}},
		{"cgroup below", "cgroup /kflow-test or cgroup /user.slice", []string{"-s", "cgroup/flows/bytes"}},
		{"records ordered", "not cgroup /", []string{"-O", "bytes", "-n", "10", "-o", "json"}},
	} {
		t.Run(tt.name, func(t *testing.T) { crossCheck(t, dir, url, ch, files, tt.args, tt.filter) })
	}
}

// TestWebClickHouse: kflow web --clickhouse serves the API from
// ClickHouse: the stats and summary kflow web -R gives for the files.
func TestWebClickHouse(t *testing.T) {
	dir := queryDir(t)
	url := chqtest.Load(t, "kflow_web_golden", dir)
	files, ch := startWeb(t, "-R", dir), startWeb(t, "--clickhouse", url)
	for _, q := range []string{
		"api/v1/stats?from=2025-03-14T09:00:00Z&to=2025-03-14T10:00:00Z&stat=srcip/bytes&stat=dstport/flows&top=3&filter=proto+tcp",
		"api/v1/summary",
	} {
		var fromFiles, fromCH map[string]any
		getJSON(t, files+q, &fromFiles)
		getJSON(t, ch+q, &fromCH)
		delete(fromFiles, "scan")
		delete(fromCH, "scan")
		if !reflect.DeepEqual(fromFiles, fromCH) || len(fromFiles) == 0 {
			t.Errorf("%s: ClickHouse %v, files %v", q, fromCH, fromFiles)
		}
	}
	if code, _, _ := runQuery(t, "--clickhouse", url, queryDir(t)); code != exitUsage {
		t.Errorf("files and --clickhouse: exit %d, want %d", code, exitUsage)
	}
}
