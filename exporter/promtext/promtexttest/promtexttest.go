// SPDX-License-Identifier: Apache-2.0

// Package promtexttest reads back what a promtext registry serves with
// Prometheus's own parser, for tests.
package promtexttest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kflow-dev/kflow/exporter/promtext"
)

// Scrape registers the collectors, writes their exposition and parses it
// with Prometheus's text parser. Each sample is keyed by its family name
// followed by ",label=value" for each label in label-name order.
func Scrape(t testing.TB, cs ...promtext.Collector) map[string]float64 {
	t.Helper()
	reg, err := promtext.NewRegistry(cs...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := reg.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	return got
}

// Parse parses an exposition in the text format into samples keyed as
// Scrape keys them.
func Parse(text []byte) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse exposition: %w", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			ls := slices.Clone(m.GetLabel())
			slices.SortFunc(ls, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
			key := name
			for _, l := range ls {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			default:
				return nil, fmt.Errorf("parse exposition: %s has type %s", name, mf.GetType())
			}
		}
	}
	return out, nil
}
