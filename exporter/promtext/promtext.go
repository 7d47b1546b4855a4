// SPDX-License-Identifier: Apache-2.0

// Package promtext serves metrics in the Prometheus text exposition format
// (version 0.0.4). The daemons' metrics are counters and gauges read from
// their statistics at scrape time, so a collector describes its metric
// families once and writes one sample per label set when scraped; nothing
// is kept between scrapes. It is the part of a Prometheus client library
// kflow uses, without the rest: a smaller binary that starts sooner and
// holds less memory.
package promtext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ContentType is the media type of the exposition format served.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Desc describes one metric family: its name, help text and label names.
// Its type is given by the Writer method a sample is written with.
type Desc struct {
	name   string
	help   string
	labels []string
}

// NewDesc returns the description of a metric family. Names are checked
// when the collector is registered.
func NewDesc(name, help string, labels ...string) *Desc {
	return &Desc{name: name, help: help, labels: labels}
}

// Collector is a source of metrics.
type Collector interface {
	// Describe returns every family Collect may write.
	Describe() []*Desc
	// Collect writes the current samples.
	Collect(w *Writer)
}

const (
	typeCounter = "counter"
	typeGauge   = "gauge"
)

type sample struct {
	labels []string
	value  float64
}

type family struct {
	desc    *Desc
	typ     string
	samples []sample
}

// Writer receives the samples of one scrape.
type Writer struct {
	known    map[*Desc]bool
	families map[*Desc]*family
	err      error
}

// Counter writes a sample of a counter: a value that only grows.
func (w *Writer) Counter(d *Desc, v float64, labels ...string) {
	w.add(d, typeCounter, v, labels)
}

// Gauge writes a sample of a gauge: a value that goes up and down.
func (w *Writer) Gauge(d *Desc, v float64, labels ...string) {
	w.add(d, typeGauge, v, labels)
}

func (w *Writer) add(d *Desc, typ string, v float64, labels []string) {
	if w.err != nil {
		return
	}
	if !w.known[d] {
		w.err = fmt.Errorf("metric %s: not described by its collector", d.name)
		return
	}
	if len(labels) != len(d.labels) {
		w.err = fmt.Errorf("metric %s: %d label values for %d labels (%s)", d.name, len(labels), len(d.labels), strings.Join(d.labels, ", "))
		return
	}
	f := w.families[d]
	if f == nil {
		f = &family{desc: d, typ: typ}
		w.families[d] = f
	} else if f.typ != typ {
		w.err = fmt.Errorf("metric %s: written as a %s and as a %s", d.name, f.typ, typ)
		return
	}
	f.samples = append(f.samples, sample{labels: slices.Clone(labels), value: v})
}

// Registry holds collectors and writes their metrics.
type Registry struct {
	collectors []Collector
	descs      map[*Desc]bool
	names      map[string]bool
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// NewRegistry returns a registry of the collectors, or an error if a name
// is invalid or two families share one.
func NewRegistry(cs ...Collector) (*Registry, error) {
	r := &Registry{descs: map[*Desc]bool{}, names: map[string]bool{}}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds a collector.
func (r *Registry) Register(c Collector) error {
	ds := c.Describe()
	seen := map[string]bool{}
	for _, d := range ds {
		if !metricName.MatchString(d.name) {
			return fmt.Errorf("register metrics: invalid metric name %q", d.name)
		}
		if r.names[d.name] || seen[d.name] {
			return fmt.Errorf("register metrics: metric %s described twice", d.name)
		}
		seen[d.name] = true
		ls := map[string]bool{}
		for _, l := range d.labels {
			if !labelName.MatchString(l) || strings.HasPrefix(l, "__") {
				return fmt.Errorf("register metrics: metric %s: invalid label name %q", d.name, l)
			}
			if ls[l] {
				return fmt.Errorf("register metrics: metric %s: label %s twice", d.name, l)
			}
			ls[l] = true
		}
	}
	for _, d := range ds {
		r.descs[d] = true
		r.names[d.name] = true
	}
	r.collectors = append(r.collectors, c)
	return nil
}

// gather collects every registered collector's samples, sorted by family
// name and, within a family, by label values. A family with no sample is
// left out.
func (r *Registry) gather() ([]*family, error) {
	w := &Writer{known: r.descs, families: map[*Desc]*family{}}
	for _, c := range r.collectors {
		c.Collect(w)
	}
	if w.err != nil {
		return nil, w.err
	}
	fs := make([]*family, 0, len(w.families))
	for _, f := range w.families {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *family) int { return strings.Compare(a.desc.name, b.desc.name) })
	for _, f := range fs {
		slices.SortFunc(f.samples, func(a, b sample) int { return slices.Compare(a.labels, b.labels) })
		for i := 1; i < len(f.samples); i++ {
			if slices.Equal(f.samples[i-1].labels, f.samples[i].labels) {
				return nil, fmt.Errorf("metric %s: two samples with labels {%s}", f.desc.name, strings.Join(f.samples[i].labels, ", "))
			}
		}
	}
	return fs, nil
}

// WriteTo writes the exposition of every collector's current samples.
func (r *Registry) WriteTo(out io.Writer) (int64, error) {
	fs, err := r.gather()
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: out}
	b := bufio.NewWriter(cw)
	for _, f := range fs {
		d := f.desc
		b.WriteString("# HELP ")
		b.WriteString(d.name)
		b.WriteByte(' ')
		b.WriteString(escapeHelp(d.help))
		b.WriteString("\n# TYPE ")
		b.WriteString(d.name)
		b.WriteByte(' ')
		b.WriteString(f.typ)
		b.WriteByte('\n')
		for _, s := range f.samples {
			b.WriteString(d.name)
			if len(d.labels) > 0 {
				b.WriteByte('{')
				for i, l := range d.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(l)
					b.WriteString(`="`)
					b.WriteString(escapeLabel(s.labels[i]))
					b.WriteByte('"')
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.value))
			b.WriteByte('\n')
		}
	}
	err = b.Flush()
	return cw.n, err
}

// ServeHTTP serves the exposition; a collector's error is a 500 naming it.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		http.Error(w, "kflow: metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
