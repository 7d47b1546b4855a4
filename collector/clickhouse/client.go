// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// DefaultDatabase is the database when a URL names none.
const DefaultDatabase = "kflow"

// maxErrorBody bounds what is read of an error response.
const maxErrorBody = 64 << 10

// identRE is what kflow accepts as a database or cluster name: it is
// written into DDL, so nothing that would need quoting.
var identRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`) })

// Client talks to one ClickHouse server over HTTP. It is safe for
// concurrent use.
type Client struct {
	base     url.URL // scheme://host:port/
	database string
	user     string
	password string
	hasAuth  bool
	hc       *http.Client
}

// NewClient parses a URL such as http://user:pass@host:8123/kflow (the
// path names the database, DefaultDatabase when empty). hc nil uses a
// client with no overall timeout: callers bound requests with contexts.
func NewClient(rawURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clickhouse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("clickhouse url %q: want http:// or https://", redact(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("clickhouse url %q: no host", redact(u))
	}
	if u.Port() == "" {
		u.Host += map[string]string{"http": ":8123", "https": ":8443"}[u.Scheme]
	}
	db := strings.Trim(u.Path, "/")
	if db == "" {
		db = DefaultDatabase
	}
	if !identRE().MatchString(db) {
		return nil, fmt.Errorf("clickhouse url %q: database %q: want letters, digits and _", redact(u), db)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("clickhouse url %q: no query or fragment expected", redact(u))
	}
	c := &Client{base: url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}, database: db, hc: hc}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
		c.hasAuth = true
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // loopback and cluster nodes: never through a proxy
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	return c, nil
}

func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	return c.String()
}

// Database returns the database the URL named.
func (c *Client) Database() string { return c.database }

// String returns the server's URL with the database, without the password.
func (c *Client) String() string {
	u := c.base
	u.Path = "/" + c.database
	if c.hasAuth {
		u.User = url.User(c.user)
	}
	return u.String()
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// request sends one request. The query goes in the body unless body is
// set (an INSERT's data), in which case it goes in the URL. No default
// database is sent (the database may not exist yet): kflow's statements
// name their tables with the database.
func (c *Client) request(ctx context.Context, op, query string, params url.Values, body io.Reader, gzipped bool) (*http.Response, error) {
	u := c.base
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	var rd io.Reader
	if body != nil {
		q.Set("query", query)
		rd = body
	} else {
		rd = strings.NewReader(query)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", op, err)
	}
	if c.hasAuth {
		req.SetBasicAuth(c.user, c.password)
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s on %s: %w", op, c.base.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		return nil, parseError(op+" on "+c.base.Host, resp.StatusCode, b)
	}
	return resp, nil
}

// Exec runs a statement that returns nothing (DDL, ALTER, INSERT ...
// VALUES).
func (c *Client) Exec(ctx context.Context, query string) error {
	resp, err := c.request(ctx, "exec", query, nil, nil, false)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Query runs a query and returns its whole result in the query's FORMAT
// (TabSeparated when it names none). The server buffers the result
// (wait_end_of_query), so an error is always an HTTP error, never a
// result cut short; keep results small.
func (c *Client) Query(ctx context.Context, query string) ([]byte, error) {
	resp, err := c.request(ctx, "query", query, url.Values{"wait_end_of_query": {"1"}}, nil, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("clickhouse query on %s: read result: %w", c.base.Host, err)
	}
	return b, nil
}

// QueryStream runs a query whose result may be large and returns its
// body to read as it comes. The server still buffers the whole result
// (wait_end_of_query), so an error is an HTTP error, never a result cut
// short. settings go with the query (nil for none; a read-only user may
// not change them). The caller closes the body.
func (c *Client) QueryStream(ctx context.Context, query string, settings url.Values) (io.ReadCloser, error) {
	params := url.Values{"wait_end_of_query": {"1"}}
	for k, v := range settings {
		params[k] = v
	}
	resp, err := c.request(ctx, "query", query, params, nil, false)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// QueryRows runs a query and returns its TabSeparated rows split into
// fields. Values are returned as ClickHouse escapes them (fine for
// numbers, dates and names).
func (c *Client) QueryRows(ctx context.Context, query string) ([][]string, error) {
	b, err := c.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows, nil
}

// Version asks the server its version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	b, err := c.Query(ctx, "SELECT version()")
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(string(b))
}

// InsertSettings are sent with every insert: one insert of at most
// MaxInsertRows rows is one block, written as one part per partition, so
// a failed insert writes nothing of it. (Past it, 18.16 commits the first
// blocks of a failed insert.)
const MaxInsertRows = 1 << 20

// Insert sends body, RowBinary rows for columns, gzip-compressed when
// gzipped, to INSERT INTO table. The caller keeps each insert within
// MaxInsertRows rows.
func (c *Client) Insert(ctx context.Context, table string, columns []string, body []byte, gzipped bool) error {
	query := fmt.Sprintf("INSERT INTO %s.%s (%s) FORMAT RowBinary", c.database, table, strings.Join(columns, ", "))
	params := url.Values{"max_insert_block_size": {fmt.Sprint(MaxInsertRows)}}
	resp, err := c.request(ctx, "insert into "+c.database+"."+table, query, params, bytes.NewReader(body), gzipped)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// IsServerError reports whether err is an error ClickHouse answered (as
// opposed to a connection failure).
func IsServerError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
