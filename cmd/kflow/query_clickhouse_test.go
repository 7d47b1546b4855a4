// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/chquery/chqtest"
	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/query"
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
	ctx := context.Background()
	for _, tt := range queryGoldenCases {
		t.Run(tt.name, func(t *testing.T) {
			q := &queryArgs{}
			fs := pflag.NewFlagSet("query", pflag.ContinueOnError)
			q.register(fs)
			var opts []string // -j is kflow's, not the command's: it does not change the request
			for _, a := range tt.args {
				if a != "-j" {
					opts = append(opts, a)
				}
			}
			if err := fs.Parse(append([]string{"--utc"}, opts...)); err != nil {
				t.Fatal(err)
			}
			f, err := filter.Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			req, err := q.request(f, time.UTC)
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
			if tt.filter != "" {
				filterArg = []string{tt.filter}
			}
			_, fromFiles, _ := runQuery(t, slices.Concat(tt.args, []string{dir}, filterArg)...)
			code, fromCH, errOut := runQuery(t, slices.Concat([]string{"--clickhouse", url}, tt.args, filterArg)...)
			if code != exitOK {
				t.Fatalf("--clickhouse: exit %d: %s", code, errOut)
			}
			if g, w := scanOutput.ReplaceAllString(fromCH, ""), scanOutput.ReplaceAllString(fromFiles, ""); g != w {
				t.Errorf("file query --clickhouse:\n%s\nfile query on the files:\n%s", g, w)
			}
		})
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
