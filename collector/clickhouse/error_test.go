// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
)

func TestParseError(t *testing.T) {
	for _, tt := range []struct {
		body string
		code int
		msg  string
	}{
		// 18.16
		{"Code: 47, e.displayText() = DB::Exception: Unknown identifier: nosuchcol, e.what() = DB::Exception\n", 47, "Unknown identifier: nosuchcol"},
		{"Code: 33, e.displayText() = DB::Exception: Cannot read all data. Bytes read: 3. Bytes expected: 8.: (at row 1000000)\n, e.what() = DB::Exception\n", 33, "Cannot read all data. Bytes read: 3. Bytes expected: 8.: (at row 1000000)"},
		// current releases
		{"Code: 60. DB::Exception: Table kflow.nope does not exist. (UNKNOWN_TABLE) (version 24.8.4.13 (official build))\n", 60, "Table kflow.nope does not exist. (UNKNOWN_TABLE) (version 24.8.4.13 (official build))"},
		// not an exception
		{"<html>bad gateway</html>", 0, "<html>bad gateway</html>"},
		{"", 0, "no error text"},
	} {
		e := parseError("query", 500, []byte(tt.body))
		if e.Code != tt.code || e.Message != tt.msg {
			t.Errorf("parseError(%q) = code %d message %q, want %d %q", tt.body, e.Code, e.Message, tt.code, tt.msg)
		}
	}
	long := parseError("query", 500, []byte(strings.Repeat("x", 10000)))
	if len(long.Message) > maxMessage+len("…") {
		t.Errorf("message of %d bytes kept", len(long.Message))
	}
}

func FuzzParseError(f *testing.F) {
	f.Add("Code: 47, e.displayText() = DB::Exception: Unknown identifier: x, e.what() = DB::Exception\n")
	f.Add("Code: 60. DB::Exception: Table t does not exist. (UNKNOWN_TABLE) (version 24.8.4.13)")
	f.Add("Code: 99999999999, e.displayText() = ")
	f.Fuzz(func(t *testing.T, body string) {
		e := parseError("query", 500, []byte(body))
		if e.Message == "" || len(e.Message) > maxMessage+len("…") || e.Code < 0 {
			t.Fatalf("parseError(%q) = %+v", body, e)
		}
		_ = e.Error()
	})
}

// TestServerError checks errors as the real server sends them.
func TestServerError(t *testing.T) {
	s := chtest.Shared(t)
	c, err := NewClient(s.URL("default"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Query(ctx, "SELECT nosuchcol FROM system.one")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("bad query: %v (%T), want *Error", err, err)
	}
	if e.Code != 47 || e.Status != 404 || !strings.Contains(e.Message, "nosuchcol") {
		t.Errorf("bad query: %+v", e)
	}
	t.Logf("bad query: %v", err)
	err = c.Insert(ctx, "nope", []string{"a"}, []byte{1}, false)
	if !errors.As(err, &e) || e.Code != CodeUnknownTable {
		t.Errorf("insert into a missing table: %v", err)
	}
	t.Logf("insert into a missing table: %v", err)
	// A refused connection is not a server error.
	bad, _ := NewClient("http://127.0.0.1:1/default", nil)
	if _, err := bad.Version(ctx); err == nil || IsServerError(err) {
		t.Errorf("refused connection: %v", err)
	}
}

func TestNewClient(t *testing.T) {
	for _, tt := range []struct {
		url, str, db string
		err          bool
	}{
		{"http://ch1:8123/flows", "http://ch1:8123/flows", "flows", false},
		{"http://user:pass@ch1/kflow", "http://user@ch1:8123/kflow", "kflow", false},
		{"https://ch1", "https://ch1:8443/kflow", "kflow", false},
		{"ftp://ch1/kflow", "", "", true},
		{"http:///kflow", "", "", true},
		{"http://ch1/kflow;drop", "", "", true},
		{"http://ch1/kflow?x=1", "", "", true},
	} {
		c, err := NewClient(tt.url, nil)
		if (err != nil) != tt.err {
			t.Errorf("NewClient(%q): %v", tt.url, err)
			continue
		}
		if err == nil && (c.String() != tt.str || c.Database() != tt.db) {
			t.Errorf("NewClient(%q) = %s db %s, want %s db %s", tt.url, c, c.Database(), tt.str, tt.db)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
