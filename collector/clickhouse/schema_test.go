// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"flag"
	"os"
	"path/filepath"
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
