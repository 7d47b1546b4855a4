// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestSchemaGolden pins the DDL of both dialects.
func TestSchemaGolden(t *testing.T) {
	for _, tt := range []struct {
		file    string
		version Version
		cluster string
	}{
		{"schema-18.16.sql", Version{18, 16}, ""},
		{"schema-24.8.sql", Version{24, 8}, ""},
		{"schema-18.16-cluster.sql", Version{18, 16}, "flows_cluster"},
	} {
		s := Schema{Version: tt.version, Database: "kflow", Cluster: tt.cluster, Retention: DefaultRetention}
		got := s.SQL()
		path := filepath.Join("testdata", tt.file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs (run with -update and review the diff):\n%s", tt.file, got)
		}
	}
}

func TestSchemaValidate(t *testing.T) {
	for _, s := range []Schema{
		{Database: "kflow; DROP TABLE x"},
		{Database: "kflow", Cluster: "a b"},
		{Database: "kflow", Retention: Retention{Flows: Day + 1}},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: valid", s)
		}
	}
}

func TestDialect(t *testing.T) {
	for _, tt := range []struct {
		v      string
		modern bool
	}{{"18.16.1", false}, {"21.3.20.1", false}, {"21.8.1", true}, {"24.8.4.13", true}, {"100.1", true}} {
		v, err := ParseVersion(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if v.Modern() != tt.modern {
			t.Errorf("%s: modern %v", tt.v, v.Modern())
		}
	}
	for _, bad := range []string{"", "18", "x.y", "-1.2"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", bad)
		}
	}
}

// TestMigrationSteps: version 3 adds the cgroup columns after the
// position columns, each skipped when there, and has a cluster's
// Distributed flows table made again over them.
func TestMigrationSteps(t *testing.T) {
	for _, cluster := range []string{"", "c"} {
		s := &Schema{Version: Version{18, 16}, Database: "kflow", Cluster: cluster}
		var got []string
		for _, st := range cgroups(s) {
			got = append(got, st.SQL)
			if strings.HasPrefix(st.SQL, "ALTER") && !strings.Contains(st.Done, "system.columns") {
				t.Errorf("%q: no check that it is done: %q", st.SQL, st.Done)
			}
		}
		want := []string{
			"ALTER TABLE kflow.flows ADD COLUMN cgroup_id UInt64 AFTER file_pos",
			"ALTER TABLE kflow.flows ADD COLUMN cgroup String AFTER cgroup_id",
			"ALTER TABLE kflow.flows ADD COLUMN unit String AFTER cgroup",
			"ALTER TABLE kflow.flows ADD COLUMN container String AFTER unit",
			"ALTER TABLE kflow.flows ADD COLUMN pod String AFTER container",
		}
		if cluster != "" {
			want = append(want, "DROP TABLE IF EXISTS kflow.flows_dist")
		}
		if !slices.Equal(got, want) {
			t.Errorf("cluster %q:\n%s\nwant\n%s", cluster, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
