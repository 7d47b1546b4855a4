// SPDX-License-Identifier: Apache-2.0

// Command webbench times the flow explorer's API on a large synthetic
// day of flows: the visualize query (24 h, top 10 by source address,
// 5-minute buckets) and pages of flows, through the real HTTP server on
// loopback, as the page asks them. It prints the wall time of each run
// and the best, median and worst.
//
// With -clickhouse it also starts a clickhouse-server (Debian's) with its
// data under -dir, ships the flows into it once with the shipper (kept
// for later runs), and asks every question of both backends.
//
//	go run ./tools/webbench -n 10000000 -dir /tmp/webbench -runs 5 [-span 168h] [-clickhouse]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/collector/shipper"
	"github.com/kflow-dev/kflow/collector/web"
	"github.com/kflow-dev/kflow/tools/synthflow/synthdir"
)

var start = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)

func main() {
	n := flag.Int("n", 10_000_000, "synthetic flows over the span")
	span := flag.Duration("span", 24*time.Hour, "time the flows cover; every question asks the whole span (168h for a 7-day range)")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "kflow-webbench"), "working directory (data is reused when present)")
	runs := flag.Int("runs", 5, "timed runs per question")
	ch := flag.Bool("clickhouse", false, "also ship the flows into a clickhouse-server of its own and time the ClickHouse backend")
	flag.Parse()
	if err := run(*n, *span, *dir, *runs, *ch); err != nil {
		fmt.Fprintln(os.Stderr, "webbench:", err)
		os.Exit(1)
	}
}

func run(n int, span time.Duration, dir string, runs int, withCH bool) error {
	name := fmt.Sprintf("%d", n)
	if span != 24*time.Hour {
		name += "-" + span.String()
	}
	data := filepath.Join(dir, "flows-"+name)
	done := filepath.Join(dir, "done-"+name)
	if _, err := os.Stat(done); err != nil {
		t0 := time.Now()
		_ = os.RemoveAll(data)
		if _, err := synthdir.Write(data, synthdir.Options{Seed: 1, Start: start, Span: span, Flows: n, Wave: 0.5,
			Exporters: []netip.Addr{netip.MustParseAddr("198.18.255.1"), netip.MustParseAddr("198.18.255.2")}}, false); err != nil {
			return err
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote %d flows in %v\n", n, time.Since(t0).Round(time.Second))
	}
	backends := []struct {
		name string
		b    query.Backend
	}{{"files", &query.FileBackend{Paths: []string{data}}}}
	if withCH {
		b, stop, err := clickhouseBackend(n, name, dir, data)
		if err != nil {
			return err
		}
		defer stop()
		backends = append(backends, struct {
			name string
			b    query.Backend
		}{"clickhouse", b})
	}
	size := dirSize(data)
	fmt.Printf("flows: %d over %v in %s (%.0f MB); runs: %d; %d CPUs; load average at start: %s\n", n, span, data, float64(size)/1e6, runs, runtime.NumCPU(), loadAvg())
	for _, be := range backends {
		if err := ask(be.name, be.b, data, span, runs); err != nil {
			return err
		}
	}
	fmt.Printf("\nload average at the end: %s\n", loadAvg())
	// Which answers came from rollups: the files answered from them.
	b := &query.FileBackend{Paths: []string{data}}
	for _, d := range []string{"srcip", "proto"} {
		dim, _ := query.ParseDim(d)
		res, err := b.Query(context.Background(), &query.Request{Window: query.Window{From: start, To: start.Add(span)},
			Series: &query.SeriesSpec{Dims: []query.Dim{dim}, Top: 10, Step: (span / 288).Round(time.Minute)}})
		if err != nil {
			return err
		}
		fmt.Printf("series by %s: %d of %d files answered from rollups\n", d, res.Scan.Rollups, res.Scan.Files)
	}
	return nil
}

// ask times the questions of the page over one backend, through the
// API's HTTP server on loopback.
func ask(name string, backend query.Backend, data string, span time.Duration, runs int) error {
	srv, err := web.New(web.Config{Backend: backend, Paths: []string{data},
		Limits: web.Limits{Timeout: 10 * time.Minute, MaxRows: 1000}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Shutdown(context.Background())
	base := "http://" + ln.Addr().String() + "/api/v1/"
	day := url.Values{"from": {start.Format(time.RFC3339)}, "to": {start.Add(span).Format(time.RFC3339)}}
	// About 288 buckets, as the page asks for a day: 5 minutes a day.
	step := (span / 288).Round(time.Minute).String()
	with := func(kv ...string) string {
		q := url.Values{}
		for k, v := range day {
			q[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return q.Encode()
	}
	questions := []struct{ name, url string }{
		{"visualize: whole span, top 10 by srcip, " + step + " buckets, L3 bps", base + "series?" + with("dims", "srcip", "top", "10", "step", step, "unit", "l3bps")},
		// A filter that every record passes makes the engine scan: the
		// same answer without the rollups.
		{"the same, scanned (filter 'bytes > 0')", base + "series?" + with("dims", "srcip", "top", "10", "step", step, "unit", "l3bps", "filter", "bytes > 0")},
		{"visualize: whole span, auto step, by proto (home graph)", base + "series?" + with("dims", "proto", "top", "5", "unit", "l3bps")},
		{"visualize, bidirectional (two scans)", base + "series?" + with("dims", "srcip", "top", "10", "step", step, "reverse", "1")},
		{"flows: first 100, filter 'proto udp and dst port 53'", base + "flows?" + with("limit", "100", "filter", "proto udp and dst port 53")},
		{"flows: first 100, filter 'proto tcp and dst port 22'", base + "flows?" + with("limit", "100", "filter", "proto tcp and dst port 22")},
		{"flows: top 100 by bytes, filter 'proto tcp' (full scan)", base + "flows?" + with("limit", "100", "order", "bytes", "filter", "proto tcp")},
		{"stats: top 10 srcip by bytes, filter 'proto tcp and dst port 443'", base + "stats?" + with("stat", "srcip/bytes", "top", "10", "filter", "proto tcp and dst port 443")},
		{"stats: top 10 dstport by flows, filter 'net 198.19.0.0/16'", base + "stats?" + with("stat", "dstport/flows", "top", "10", "filter", "net 198.19.0.0/16")},
	}
	fmt.Printf("\n%s\n%-70s %8s %8s %8s   all runs\n", name, "question", "best", "median", "worst")
	c := &http.Client{Timeout: 10 * time.Minute}
	for _, q := range questions {
		var ts []time.Duration
		for range runs {
			t0 := time.Now()
			resp, err := c.Get(q.url)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d %s", q.url, resp.StatusCode, body)
			}
			ts = append(ts, time.Since(t0))
		}
		all := slices.Clone(ts)
		slices.Sort(ts)
		fmt.Printf("%-70s %8v %8v %8v   %v\n", q.name, ms(ts[0]), ms(ts[len(ts)/2]), ms(ts[len(ts)-1]), msAll(all))
	}
	return nil
}

// clickhouseBackend starts a clickhouse-server with its data under dir
// and ships the flows of data into it unless an earlier run did.
func clickhouseBackend(n int, name, dir, data string) (query.Backend, func(), error) {
	srv, err := chtest.StartIn(filepath.Join(dir, "clickhouse"))
	if err != nil {
		return nil, nil, err
	}
	stop := func() { _ = srv.Stop() }
	url := srv.URL("kflow")
	shipped := filepath.Join(dir, "shipped-"+name)
	if _, err := os.Stat(shipped); err != nil {
		c, err := clickhouse.NewClient(url, nil)
		if err != nil {
			stop()
			return nil, nil, err
		}
		_ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS kflow")
		t0 := time.Now()
		s, err := shipper.New(shipper.Options{Dir: data, State: filepath.Join(dir, "ship-state"), URLs: []string{url},
			Location: time.UTC, Timeout: 10 * time.Minute, KflowVersion: "webbench"})
		if err != nil {
			stop()
			return nil, nil, err
		}
		_ = os.Remove(filepath.Join(dir, "ship-state"))
		s.Finish()
		if err := s.Run(context.Background()); err != nil {
			stop()
			return nil, nil, err
		}
		st := s.Stats()
		if st.Rows != uint64(n) {
			stop()
			return nil, nil, fmt.Errorf("shipped %d rows of %d: %+v", st.Rows, n, st)
		}
		fmt.Printf("shipped %d flows into clickhouse-server in %v (%.0f rows/s)\n", st.Rows, time.Since(t0).Round(time.Second),
			float64(st.Rows)/time.Since(t0).Seconds())
		if err := os.WriteFile(shipped, nil, 0o644); err != nil {
			stop()
			return nil, nil, err
		}
	}
	b, err := chquery.Open(url)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return b, stop, nil
}

// loadAvg is the machine's load average (1, 5 and 15 minutes).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func msAll(ds []time.Duration) []time.Duration {
	for i := range ds {
		ds[i] = ms(ds[i])
	}
	return ds
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
