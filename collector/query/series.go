// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Time series: traffic per time bucket for the top values of one or more
// dimensions, the rest folded into "Other". A record counts wholly in the
// bucket of its start (its window selection is nfdump's -t, so the buckets
// sum to what a query of the same window counts). With one bucket spanning
// the window, a series is a group-by over several dimensions (a sankey).

// MaxDims is the number of dimensions a series groups by at most.
const MaxDims = 3

// Dim is a dimension to group by: a single-valued element, with addresses
// optionally cut to a prefix. The cgroup elements (unit, container, pod,
// cgroup) are strings; a record without one has "".
type Dim struct {
	Element Element
	// Bits4 and Bits6 cut IPv4 and IPv6 addresses to their first bits
	// (0: the whole address).
	Bits4, Bits6 int
}

// seriesElements are the elements a dimension may be: one value per
// record.
var seriesElements = []Element{ElemSrcIP, ElemDstIP, ElemSrcPort, ElemDstPort, ElemProto, ElemFlags, ElemTOS,
	ElemInIf, ElemOutIf, ElemVLAN, ElemExporter, ElemDir, ElemUnit, ElemContainer, ElemPod, ElemCgroup}

// ParseDim parses ELEMENT or, for addresses, ELEMENT/BITS4[/BITS6]
// ("srcip/24/64": IPv4 /24 and IPv6 /64 prefixes).
func ParseDim(s string) (Dim, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	var d Dim
	found := false
	for _, n := range elemNames {
		if n.name == parts[0] && slices.Contains(seriesElements, n.e) {
			d.Element, found = n.e, true
			break
		}
	}
	if !found {
		var names []string
		for _, e := range seriesElements {
			names = append(names, e.Name())
		}
		return Dim{}, badRequest("dimension %q: want one of %s (addresses with /BITS4[/BITS6])", s, strings.Join(names, ", "))
	}
	if len(parts) > 1 && !d.Element.IsAddr() || len(parts) > 3 {
		return Dim{}, badRequest("dimension %q: only addresses take prefix lengths (srcip/24/64)", s)
	}
	for i, p := range parts[1:] {
		n, err := strconv.Atoi(p)
		limit := []int{32, 128}[i]
		if err != nil || n < 1 || n > limit {
			return Dim{}, badRequest("dimension %q: prefix length %q: want 1..%d", s, p, limit)
		}
		if i == 0 {
			d.Bits4 = n
		} else {
			d.Bits6 = n
		}
	}
	return d, nil
}

func (d Dim) String() string {
	s := d.Element.Name()
	if d.Bits4 > 0 || d.Bits6 > 0 {
		s += "/" + strconv.Itoa(cmp.Or(d.Bits4, 32))
		if d.Bits6 > 0 {
			s += "/" + strconv.Itoa(d.Bits6)
		}
	}
	return s
}

// value returns r's value of the dimension.
func (d Dim) value(r *flow.Record) Value {
	switch d.Element {
	case ElemSrcIP:
		return Value{Addr: prefix(r.Src, d.Bits4, d.Bits6)}
	case ElemDstIP:
		return Value{Addr: prefix(r.Dst, d.Bits4, d.Bits6)}
	case ElemExporter:
		return Value{Addr: prefix(r.Exporter, d.Bits4, d.Bits6)}
	case ElemSrcPort:
		return Value{Num: uint32(r.SrcPort)}
	case ElemDstPort:
		return Value{Num: uint32(r.NfDstPort())}
	case ElemProto:
		return Value{Num: uint32(r.Proto)}
	case ElemFlags:
		return Value{Num: uint32(r.TCPFlags)}
	case ElemTOS:
		return Value{Num: uint32(r.TOS)}
	case ElemInIf:
		return Value{Num: r.InIf}
	case ElemOutIf:
		return Value{Num: r.OutIf}
	case ElemVLAN:
		return Value{Num: uint32(r.VLAN)}
	case ElemDir:
		return Value{Num: uint32(r.Direction)}
	case ElemUnit, ElemContainer, ElemPod, ElemCgroup:
		return Value{Str: cgroupValue(d.Element, r)}
	}
	return Value{}
}

// mask applies the dimension's prefix lengths to a value of its element.
func (d Dim) mask(v Value) Value {
	if d.Element.IsAddr() {
		v.Addr = prefix(v.Addr, d.Bits4, d.Bits6)
	}
	return v
}

// prefix cuts a to bits4 or bits6 bits (0: unchanged).
func prefix(a netip.Addr, bits4, bits6 int) netip.Addr {
	if bits4 == 0 {
		bits4 = -1
	}
	if bits6 == 0 {
		bits6 = -1
	}
	return mask(a, bits4, bits6)
}

// Unit is what series are ranked and rated in.
type Unit uint8

// Units.
const (
	UnitL3Bits  Unit = iota // IP bytes × 8
	UnitL2Bits              // (IP bytes + 18 per packet: Ethernet header and FCS) × 8
	UnitPackets             // packets
	UnitFlows               // flow records
)

// L2Overhead is the Ethernet header and FCS per packet that UnitL2Bits
// adds to the IP bytes (no VLAN tag, preamble or gap).
const L2Overhead = 18

var unitNames = []string{"l3bps", "l2bps", "pps", "fps"}

func (u Unit) String() string { return unitNames[u] }

// ParseUnit parses l3bps, l2bps, pps or fps.
func ParseUnit(s string) (Unit, error) {
	if i := slices.Index(unitNames, s); i >= 0 {
		return Unit(i), nil
	}
	return 0, badRequest("unit %q: want l3bps, l2bps, pps or fps", s)
}

// Of returns the unit's count for flows, packets and bytes (bits for the
// bit units).
func (u Unit) Of(flows, packets, bytes uint64) uint64 {
	switch u {
	case UnitL2Bits:
		return (bytes + L2Overhead*packets) * 8
	case UnitPackets:
		return packets
	case UnitFlows:
		return flows
	}
	return bytes * 8
}

// Rank is how the top series are chosen.
type Rank uint8

// Ranks.
const (
	RankAvg  Rank = iota // the average over the window (the total)
	RankPeak             // the largest bucket
	RankLast             // the last bucket
)

var rankNames = []string{"avg", "peak", "last"}

func (k Rank) String() string { return rankNames[k] }

// ParseRank parses avg, peak or last.
func ParseRank(s string) (Rank, error) {
	if i := slices.Index(rankNames, s); i >= 0 {
		return Rank(i), nil
	}
	return 0, badRequest("rank %q: want avg, peak or last", s)
}

// SeriesSpec asks for a time series.
type SeriesSpec struct {
	// Step is the bucket length; 0 chooses one from the window (AutoStep).
	// A step as long as the window gives one bucket.
	Step time.Duration
	// Dims are the dimensions to group by (none: one total line).
	Dims []Dim
	// Top is the number of lines kept (0: 10); the rest is Other.
	Top  int
	Rank Rank
	Unit Unit
	// Keys, when set, are the lines to draw (one value per dimension
	// each), in this order, instead of the top ones; the rest is Other.
	Keys [][]Value
	// Reverse adds the opposite direction of each line (Series.Reverse);
	// Previous adds the total of the window shifted back by that long
	// (Series.Previous). See Overlays.
	Reverse  bool
	Previous time.Duration
}

// MaxPoints bounds the buckets of a series.
const MaxPoints = 5000

func (s *SeriesSpec) validate(w Window) error {
	if w.From.IsZero() || w.To.IsZero() {
		return badRequest("a time series needs a window with a start and an end")
	}
	if len(s.Dims) > MaxDims {
		return badRequest("a time series groups by %d dimensions at most", MaxDims)
	}
	if s.Step < 0 || s.Step > 0 && s.Step < time.Second {
		return badRequest("step %v: want at least a second", s.Step)
	}
	if s.Top < 0 {
		return badRequest("negative top")
	}
	for _, k := range s.Keys {
		if len(k) != len(s.Dims) {
			return badRequest("a key of %d values for %d dimensions", len(k), len(s.Dims))
		}
	}
	if step, _, _ := s.layout(w); s.Previous < 0 || s.Previous > 0 && s.Previous%step != 0 {
		return badRequest("previous period %v: want a multiple of the step %v", s.Previous, step)
	}
	if _, _, n := s.layout(w); n > MaxPoints {
		return badRequest("step %v over %v gives %d points; at most %d", s.Step, w.To.Sub(w.From), n, MaxPoints)
	}
	return nil
}

// steps are the bucket lengths AutoStep picks from.
var steps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// AutoStep is the shortest of the usual steps that gives a window at most
// 500 points (so 15 minutes in 5 s, a day in 5 min, 30 days in 2 h).
func AutoStep(span time.Duration) time.Duration {
	for _, s := range steps {
		if span/s <= 500 {
			return s
		}
	}
	return steps[len(steps)-1]
}

// layout returns the step, the first bucket's start (the window's start
// rounded down to the step) and the number of buckets covering the
// window.
func (s *SeriesSpec) layout(w Window) (step time.Duration, start time.Time, n int) {
	step = s.Step
	if step == 0 {
		step = AutoStep(w.To.Sub(w.From))
	}
	start = w.From.Truncate(step)
	n = int(w.To.Sub(start)/step) + 1
	if w.To.Sub(start)%step == 0 && w.To.After(start) {
		n--
	}
	return step, start, max(n, 1)
}

// Series is the answer to a SeriesSpec: Points buckets of Step from
// Start; Lines holds the top lines in rank order, then Other when
// anything was folded into it. Total sums every line.
type Series struct {
	Start    time.Time
	Step     time.Duration
	Points   int
	Dims     []Dim
	Unit     Unit
	Rank     Rank
	Lines    []Line
	Total    Line
	Distinct int // distinct keys seen
	// Reverse holds the opposite direction of each line, in the same
	// order (SeriesSpec.Reverse); Previous the total of the previous
	// period, on the same buckets (SeriesSpec.Previous).
	Reverse  []Line
	Previous *Line
	// IfNames names the interfaces of interface dimensions in line names
	// (what exporters said in options records); nil when none are known.
	IfNames *IfNames
}

// Line is the traffic of one key per bucket.
type Line struct {
	Key                   []Value // one value per dimension; nil for Other and Total
	Other                 bool
	Flows, Packets, Bytes []uint64
}

func newLine(points int) Line {
	return Line{Flows: make([]uint64, points), Packets: make([]uint64, points), Bytes: make([]uint64, points)}
}

// Value returns the unit's count in bucket i.
func (l *Line) Value(u Unit, i int) uint64 { return u.Of(l.Flows[i], l.Packets[i], l.Bytes[i]) }

// LineStats are a line's figures in a unit, rates per second.
type LineStats struct {
	Min, Avg, P95, Max, Last float64
	Total                    uint64 // the unit's count over the window
}

// Stats returns the line's minimum, average, 95th percentile (nearest
// rank), maximum and last bucket as rates per second over step, and its
// total.
func (l *Line) Stats(u Unit, step time.Duration) LineStats {
	n := len(l.Flows)
	if n == 0 {
		return LineStats{}
	}
	sec := step.Seconds()
	vals := make([]uint64, n)
	var st LineStats
	for i := range vals {
		vals[i] = l.Value(u, i)
		st.Total += vals[i]
	}
	st.Last = float64(vals[n-1]) / sec
	slices.Sort(vals)
	st.Min, st.Max = float64(vals[0])/sec, float64(vals[n-1])/sec
	st.Avg = float64(st.Total) / float64(n) / sec
	st.P95 = float64(vals[int(math.Ceil(0.95*float64(n)))-1]) / sec
	return st
}

// seriesKey is a line's key: one value per dimension.
type seriesKey [MaxDims]Value

func compareKeys(a, b *seriesKey) int {
	for i := range a {
		if c := a[i].compare(b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// bucketCount is a line's count in one bucket.
type bucketCount struct {
	i                     int32
	flows, packets, bytes uint64
}

// lineAcc accumulates a line sparsely: a record adds to the last entry
// when it falls in the same bucket, else appends one.
type lineAcc struct {
	key     seriesKey
	buckets []bucketCount
}

// seriesAcc accumulates a series over records.
type seriesAcc struct {
	spec   *SeriesSpec
	start  int64 // ns
	step   int64 // ns
	points int
	index  map[seriesKey]int32 // two or three dimensions
	one    *valueIndex         // one dimension
	lines  []lineAcc
}

func newSeriesAcc(spec *SeriesSpec, w Window) *seriesAcc {
	step, start, n := spec.layout(w)
	a := &seriesAcc{spec: spec, start: start.UnixNano(), step: int64(step), points: n, index: make(map[seriesKey]int32)}
	if len(spec.Dims) == 1 {
		a.one = newValueIndex(spec.Dims[0].Element.IsAddr())
		a.one.strs = spec.Dims[0].Element.IsCgroup()
	}
	return a
}

// line returns the line of key k, added if new.
func (a *seriesAcc) line(k *seriesKey) *lineAcc {
	var li int32
	var added bool
	switch {
	case len(a.spec.Dims) == 0:
		added = len(a.lines) == 0
	case a.one != nil:
		li, added = a.one.value(k[0])
	default:
		var ok bool
		if li, ok = a.index[*k]; !ok {
			li, added = int32(len(a.lines)), true
			a.index[*k] = li
		}
	}
	if added {
		a.lines = append(a.lines, lineAcc{key: *k})
	}
	return &a.lines[li]
}

// fields returns the record fields the series reads.
func (a *seriesAcc) fields() flowfile.Fields {
	f := CounterFields
	for _, d := range a.spec.Dims {
		f |= d.Element.Fields()
	}
	return f
}

func (a *seriesAcc) add(r *flow.Record) {
	t := r.Start
	if t.IsZero() {
		t = r.End
	}
	var k seriesKey
	for i, d := range a.spec.Dims {
		k[i] = d.value(r)
	}
	a.addCounts(t.UnixNano(), &k, 1, r.Packets, r.Octets)
}

// bucket returns the bucket of time t (ns).
func (a *seriesAcc) bucket(t int64) int {
	return int(min(max(floorDiv(t-a.start, a.step), 0), int64(a.points-1)))
}

// addCounts adds counts at time t (ns) to the line of key k.
func (a *seriesAcc) addCounts(t int64, k *seriesKey, flows, packets, bytes uint64) {
	b := a.bucket(t)
	l := a.line(k)
	if n := len(l.buckets); n > 0 && l.buckets[n-1].i == int32(b) {
		c := &l.buckets[n-1]
		c.flows += flows
		c.packets += packets
		c.bytes += bytes
		return
	}
	l.buckets = append(l.buckets, bucketCount{i: int32(b), flows: flows, packets: packets, bytes: bytes})
}

// merge adds o's lines (another worker's).
func (a *seriesAcc) merge(o *seriesAcc) {
	for i := range o.lines {
		ol := &o.lines[i]
		l := a.line(&ol.key)
		l.buckets = append(l.buckets, ol.buckets...)
	}
}

// dense returns a line's buckets as a Line.
func (a *seriesAcc) dense(l *lineAcc, dst *Line) {
	for _, c := range l.buckets {
		dst.Flows[c.i] += c.flows
		dst.Packets[c.i] += c.packets
		dst.Bytes[c.i] += c.bytes
	}
}

// rankedLine is a line's index and its rank value.
type rankedLine struct {
	i    int
	rank uint64
}

// rank returns the lines in rank order: by the rank value, largest first,
// ties by key.
func (a *seriesAcc) rank() []rankedLine {
	spec := a.spec
	rs := make([]rankedLine, len(a.lines))
	per := make([]uint64, a.points)
	for i := range a.lines {
		clear(per)
		for _, c := range a.lines[i].buckets {
			per[c.i] += spec.Unit.Of(c.flows, c.packets, c.bytes)
		}
		var v uint64
		switch spec.Rank {
		case RankPeak:
			v = slices.Max(per)
		case RankLast:
			v = per[a.points-1]
		default:
			for _, x := range per {
				v += x
			}
		}
		rs[i] = rankedLine{i, v}
	}
	slices.SortFunc(rs, func(x, y rankedLine) int {
		if c := cmp.Compare(y.rank, x.rank); c != 0 {
			return c
		}
		return compareKeys(&a.lines[x.i].key, &a.lines[y.i].key)
	})
	return rs
}

// top is the number of lines a series keeps.
func (s *SeriesSpec) top() int {
	if s.Top == 0 {
		return 10
	}
	return s.Top
}

// result builds the series from ranked lines: the top ones, and the rest
// folded into Other together with rest (traffic of keys not known one by
// one; nil for none).
func (a *seriesAcc) result(start time.Time, rs []rankedLine, rest *Line) *Series {
	spec := a.spec
	top := spec.top()
	s := &Series{Start: start, Step: time.Duration(a.step), Points: a.points, Dims: spec.Dims, Unit: spec.Unit,
		Rank: spec.Rank, Total: newLine(a.points), Distinct: len(a.lines)}
	other := newLine(a.points)
	folded := false
	if rest != nil {
		addLine(&other, rest)
		addLine(&s.Total, rest)
		folded = !rest.zero()
	}
	for k, r := range rs {
		l := &a.lines[r.i]
		a.dense(l, &s.Total)
		if k >= top {
			a.dense(l, &other)
			folded = true
			continue
		}
		line := newLine(a.points)
		line.Key = slices.Clone(l.key[:len(spec.Dims)])
		a.dense(l, &line)
		s.Lines = append(s.Lines, line)
	}
	if folded {
		other.Other = true
		s.Lines = append(s.Lines, other)
	}
	return s
}

func addLine(dst, src *Line) {
	for i := range src.Flows {
		dst.Flows[i] += src.Flows[i]
		dst.Packets[i] += src.Packets[i]
		dst.Bytes[i] += src.Bytes[i]
	}
}

func (l *Line) zero() bool {
	for i := range l.Flows {
		if l.Flows[i] != 0 || l.Packets[i] != 0 || l.Bytes[i] != 0 {
			return false
		}
	}
	return true
}

// LineName names a series line for people: its key values joined by " · ".
func (s *Series) LineName(l *Line) string {
	switch {
	case l.Other:
		return "Other"
	case len(l.Key) == 0:
		return "Total"
	}
	parts := make([]string, len(l.Key))
	for i, v := range l.Key {
		parts[i] = s.Dims[i].Element.Format(v)
		if s.Dims[i].Element.IsInterface() && v.Num != 0 {
			if n := s.IfNames.Index(v.Num); n != "" {
				parts[i] = n
			}
		}
	}
	return strings.Join(parts, " · ")
}

// hasInterface reports whether a dimension is an interface.
func (s *SeriesSpec) hasInterface() bool {
	if s == nil {
		return false
	}
	for _, d := range s.Dims {
		if d.Element.IsInterface() {
			return true
		}
	}
	return false
}
