// SPDX-License-Identifier: Apache-2.0

package promtext_test

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/promtext"
	"github.com/kflow-dev/kflow/exporter/promtext/promtexttest"
)

// fixed writes the samples it is given.
type fixed struct {
	descs []*promtext.Desc
	write func(w *promtext.Writer)
}

func (f fixed) Describe() []*promtext.Desc { return f.descs }
func (f fixed) Collect(w *promtext.Writer) { f.write(w) }

func TestExposition(t *testing.T) {
	pkts := promtext.NewDesc("kflow_test_packets_total", "Packets, per \\ interface\nand direction.", "interface", "direction")
	flows := promtext.NewDesc("kflow_test_flows", "Flows.")
	empty := promtext.NewDesc("kflow_test_empty", "Never written.")
	odd := promtext.NewDesc("kflow_test_odd", "Odd values.", "v")
	c := fixed{descs: []*promtext.Desc{pkts, flows, empty, odd}, write: func(w *promtext.Writer) {
		w.Gauge(flows, 12)
		w.Counter(pkts, 3, "veth1", "out")
		w.Counter(pkts, 1e6, "veth1", "in")
		w.Counter(pkts, 7, "a\"b\\c\nd", "in")
		w.Gauge(odd, math.Inf(1), "inf")
		w.Gauge(odd, math.NaN(), "nan")
		w.Gauge(odd, -0.5, "neg")
	}}
	reg, err := promtext.NewRegistry(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := reg.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP kflow_test_flows Flows.
# TYPE kflow_test_flows gauge
kflow_test_flows 12
# HELP kflow_test_odd Odd values.
# TYPE kflow_test_odd gauge
kflow_test_odd{v="inf"} +Inf
kflow_test_odd{v="nan"} NaN
kflow_test_odd{v="neg"} -0.5
# HELP kflow_test_packets_total Packets, per \\ interface\nand direction.
# TYPE kflow_test_packets_total counter
kflow_test_packets_total{interface="a\"b\\c\nd",direction="in"} 7
kflow_test_packets_total{interface="veth1",direction="in"} 1e+06
kflow_test_packets_total{interface="veth1",direction="out"} 3
`
	if buf.String() != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", buf.String(), want)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	// Prometheus's parser reads it back.
	got, err := promtexttest.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{
		"kflow_test_flows": 12,
		"kflow_test_packets_total,direction=in,interface=veth1":      1e6,
		"kflow_test_packets_total,direction=out,interface=veth1":     3,
		"kflow_test_packets_total,direction=in,interface=a\"b\\c\nd": 7,
		"kflow_test_odd,v=neg": -0.5,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%q = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != 7 {
		t.Errorf("%d samples parsed, want 7: %v", len(got), got)
	}

	// Over HTTP.
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != promtext.ContentType || rec.Body.String() != want {
		t.Errorf("HTTP: %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

func TestRegistryErrors(t *testing.T) {
	d := promtext.NewDesc("kflow_test_x", "X.", "a")
	for name, tc := range map[string]struct {
		descs    []*promtext.Desc
		write    func(w *promtext.Writer)
		register string // error at registration, or
		scrape   string // at scrape
	}{
		"bad name":        {descs: []*promtext.Desc{promtext.NewDesc("kflow-x", "X.")}, register: `invalid metric name "kflow-x"`},
		"bad label":       {descs: []*promtext.Desc{promtext.NewDesc("kflow_x", "X.", "a-b")}, register: `invalid label name "a-b"`},
		"reserved label":  {descs: []*promtext.Desc{promtext.NewDesc("kflow_x", "X.", "__name")}, register: `invalid label name "__name"`},
		"label twice":     {descs: []*promtext.Desc{promtext.NewDesc("kflow_x", "X.", "a", "a")}, register: "label a twice"},
		"name twice":      {descs: []*promtext.Desc{d, promtext.NewDesc("kflow_test_x", "Y.")}, register: "kflow_test_x described twice"},
		"label count":     {descs: []*promtext.Desc{d}, write: func(w *promtext.Writer) { w.Counter(d, 1) }, scrape: "0 label values for 1 labels (a)"},
		"undescribed":     {descs: nil, write: func(w *promtext.Writer) { w.Counter(d, 1, "x") }, scrape: "not described"},
		"type change":     {descs: []*promtext.Desc{d}, write: func(w *promtext.Writer) { w.Counter(d, 1, "x"); w.Gauge(d, 1, "y") }, scrape: "written as a counter and as a gauge"},
		"duplicate label": {descs: []*promtext.Desc{d}, write: func(w *promtext.Writer) { w.Counter(d, 1, "x"); w.Counter(d, 2, "x") }, scrape: "two samples with labels {x}"},
	} {
		t.Run(name, func(t *testing.T) {
			write := tc.write
			if write == nil {
				write = func(*promtext.Writer) {}
			}
			reg, err := promtext.NewRegistry(fixed{descs: tc.descs, write: write})
			if tc.register != "" {
				if err == nil || !strings.Contains(err.Error(), tc.register) {
					t.Fatalf("register: %v, want %q", err, tc.register)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tc.scrape) {
				t.Errorf("scrape: %v, want %q", err, tc.scrape)
			}
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), tc.scrape) {
				t.Errorf("HTTP: %d %s", rec.Code, rec.Body.String())
			}
		})
	}
}

func TestProcess(t *testing.T) {
	got := promtexttest.Scrape(t, promtext.NewProcess())
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
		"process_open_fds", "process_max_fds", "process_start_time_seconds", "go_goroutines", "go_threads",
		"go_info,version=" + runtime.Version(), "go_sched_gomaxprocs_threads", "go_memstats_heap_alloc_bytes",
		"go_memstats_sys_bytes", "go_memstats_next_gc_bytes", "go_gc_cycles_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	// Values that can be checked against the process itself.
	f, err := os.Open("/proc/self/stat") // one more descriptor while scraping
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	got = promtexttest.Scrape(t, promtext.NewProcess())
	if g := got["process_open_fds"]; g != float64(len(ents)-1) {
		t.Errorf("process_open_fds %v, /proc/self/fd has %d", g, len(ents)-1)
	}
	if g := got["go_sched_gomaxprocs_threads"]; g != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go_sched_gomaxprocs_threads %v, want %d", g, runtime.GOMAXPROCS(0))
	}
	if g := got["process_resident_memory_bytes"]; g < 1<<20 || g > got["process_virtual_memory_bytes"] {
		t.Errorf("resident %v, virtual %v", g, got["process_virtual_memory_bytes"])
	}
	if g := got["go_goroutines"]; g < 1 {
		t.Errorf("go_goroutines %v", g)
	}
	if g := got["go_info,version="+runtime.Version()]; g != 1 {
		t.Errorf("go_info %v", g)
	}
}
