// SPDX-License-Identifier: Apache-2.0

package chtest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func query(t *testing.T, base, q string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, u.Scheme+"://"+u.Host+"/", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := u.User.Password(); ok {
		req.SetBasicAuth(u.User.Username(), p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", q, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

func TestServerWithPassword(t *testing.T) {
	s := Start(t, Options{Password: "s3cret"})
	t.Logf("clickhouse-server answered after %v", s.StartTime)
	if v := query(t, s.URL(""), "SELECT version()"); v == "" {
		t.Fatal("no version")
	}
	// Without the password the server refuses.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/?query=SELECT+1", s.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("server answered without the password")
	}
	// Stop and start again on the same data.
	query(t, s.URL(""), "CREATE TABLE keep (a UInt8) ENGINE = TinyLog")
	query(t, s.URL(""), "INSERT INTO keep VALUES (7)")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart answered after %v", s.StartTime)
	if got := query(t, s.URL(""), "SELECT a FROM keep"); got != "7" {
		t.Fatalf("after restart: %q, want 7", got)
	}
}

func TestClusterDistributed(t *testing.T) {
	shards := StartCluster(t, "kflow_test")
	t.Logf("shards answered after %v and %v", shards[0].StartTime, shards[1].StartTime)
	for i, s := range shards {
		query(t, s.URL(""), "CREATE TABLE t (a UInt64) ENGINE = MergeTree ORDER BY a")
		query(t, s.URL(""), "CREATE TABLE t_dist AS t ENGINE = Distributed(kflow_test, default, t, rand())")
		query(t, s.URL(""), "INSERT INTO t VALUES ("+[]string{"1), (2", "40"}[i]+")")
	}
	for _, s := range shards {
		if got := query(t, s.URL(""), "SELECT sum(a), count() FROM t_dist"); got != "43\t3" {
			t.Fatalf("through the Distributed table: %q, want 43 and 3 rows", got)
		}
	}
}
