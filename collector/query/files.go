// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/nfdump"
)

// Window is a time window [From, To]; a zero bound is open.
type Window struct {
	From, To time.Time
}

// IsZero reports whether the window selects everything.
func (w Window) IsZero() bool { return w.From.IsZero() && w.To.IsZero() }

// Contains reports whether a flow from start to end lies in the window, as
// nfdump's -t selects: it starts at or after From and ends at or before To.
func (w Window) Contains(start, end time.Time) bool {
	if !w.From.IsZero() && start.Before(w.From) {
		return false
	}
	if !w.To.IsZero() && end.After(w.To) {
		return false
	}
	return true
}

// ParseWindow parses nfdump's -t syntax, START[-END], each
// YYYY/MM/dd.hh:mm:ss with any trailing part omitted (2025/03/14 is the
// whole day onwards, 2025/03/14.09 that hour onwards), or RFC 3339. Times
// without a zone are in loc. An END with omitted parts is the end of the
// period it names (2025/03/14-2025/03/15 runs to the end of the 15th).
func ParseWindow(s string, loc *time.Location) (Window, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Window{}, fmt.Errorf("empty time window")
	}
	from, to, hasTo := cutWindow(s)
	var w Window
	var err error
	if w.From, _, err = parseWindowTime(from, loc); err != nil {
		return Window{}, fmt.Errorf("time window %q: %w", s, err)
	}
	if hasTo {
		t, period, err := parseWindowTime(to, loc)
		if err != nil {
			return Window{}, fmt.Errorf("time window %q: %w", s, err)
		}
		w.To = period(t).Add(-time.Nanosecond)
		if w.To.Before(w.From) {
			return Window{}, fmt.Errorf("time window %q ends before it starts", s)
		}
	}
	return w, nil
}

// cutWindow splits START-END. nfdump's bounds hold no '-'; RFC 3339 bounds
// do, so there the separator is the '-' followed by a four-digit year and
// another '-'.
func cutWindow(s string) (from, to string, ok bool) {
	if !strings.Contains(s, "T") {
		return strings.Cut(s, "-")
	}
	for j := 10; j+5 < len(s); j++ {
		if s[j] == '-' && s[j+5] == '-' {
			return s[:j], s[j+1:], true
		}
	}
	return s, "", false
}

// parseWindowTime parses one bound; period adds the length of the part of
// the calendar it names (a year, a month, ..., a second).
func parseWindowTime(s string, loc *time.Location) (time.Time, func(time.Time) time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, func(t time.Time) time.Time { return t.Add(time.Nanosecond) }, nil
	}
	if loc == nil {
		loc = time.Local
	}
	date, clock, _ := strings.Cut(s, ".")
	dp := strings.Split(date, "/")
	var cp []string
	if clock != "" {
		cp = strings.Split(clock, ":")
	}
	if len(dp) > 3 || len(cp) > 3 {
		return time.Time{}, nil, fmt.Errorf("%q: want YYYY/MM/dd.hh:mm:ss", s)
	}
	v := [6]int{0, 1, 1, 0, 0, 0}
	parts := append(dp, cp...)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return time.Time{}, nil, fmt.Errorf("%q: want YYYY/MM/dd.hh:mm:ss", s)
		}
		v[i] = n
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60 {
		return time.Time{}, nil, fmt.Errorf("%q: date or time out of range", s)
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, loc)
	var period func(time.Time) time.Time
	switch len(parts) {
	case 1:
		period = func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case 2:
		period = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case 3:
		period = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case 4:
		period = func(t time.Time) time.Time { return t.Add(time.Hour) }
	case 5:
		period = func(t time.Time) time.Time { return t.Add(time.Minute) }
	default:
		period = func(t time.Time) time.Time { return t.Add(time.Second) }
	}
	return t, period, nil
}

// DefaultSlack is how far outside its file's slot a record's times may lie:
// a file of slot S holds the records received from S to the next slot, and
// a record ends before it is received, by up to the exporter's timeouts.
const DefaultSlack = 10 * time.Minute

// Select is what Files selects.
type Select struct {
	// Paths are flow files or directories (searched recursively, any
	// layout) of files named Prefix.STAMP[.n] or Prefix.current.STAMP,
	// and of nfcapd's files (nfcapd.YYYYMMDDhhmm[ss], not the
	// nfcapd.current.* file nfcapd is writing), in either format.
	Paths  []string
	Prefix string // default flowfile.DefaultPrefix
	// Window, when set, skips files whose name says they cannot hold a
	// record of the window (files named explicitly are always read).
	Window Window
	// Slack widens the name match (default DefaultSlack).
	Slack time.Duration
}

// File is a selected file.
type File struct {
	Path string
	Slot time.Time // zero for files given by path whose name has no stamp
}

// Files expands the selection into files, oldest slot first; files given
// by path come in the order given, before the files of directories.
func Files(s Select) ([]File, error) {
	if s.Prefix == "" {
		s.Prefix = flowfile.DefaultPrefix
	}
	if s.Slack == 0 {
		s.Slack = DefaultSlack
	}
	var named, found []File
	for _, p := range s.Paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("select flow files: %w", err)
		}
		if !st.IsDir() {
			f := File{Path: p}
			f.Slot, _ = slotOf(s.Prefix, filepath.Base(p))
			named = append(named, f)
			continue
		}
		var dir []File
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if slot, ok := slotOf(s.Prefix, d.Name()); ok && !slot.IsZero() {
				dir = append(dir, File{Path: path, Slot: slot})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("select flow files under %s: %w", p, err)
		}
		found = append(found, windowed(dir, s.Window, s.Slack)...)
	}
	slices.SortStableFunc(found, func(x, y File) int {
		if c := x.Slot.Compare(y.Slot); c != 0 {
			return c
		}
		return cmp.Compare(x.Path, y.Path)
	})
	return append(named, found...), nil
}

// slotOf returns the slot a flow file's name says, as UTC wall clock:
// kflow's names with the prefix, or nfcapd's (zero for nfcapd.current.*).
func slotOf(prefix, name string) (time.Time, bool) {
	if n, ok := flowfile.ParseName(prefix, name, time.UTC); ok {
		return n.Slot, true
	}
	return nfdump.IsFileName(name, time.UTC)
}

// Format is a flow file's format.
type Format uint8

const (
	FormatKflow  Format = iota // kflow's flow files (collector/flowfile)
	FormatNfdump               // nfcapd's and nfdump's files (collector/nfdump)
)

func (f Format) String() string {
	if f == FormatNfdump {
		return "nfdump"
	}
	return "kflow"
}

// nfdumpMagic are the first bytes of an nfdump file, either byte order.
var nfdumpMagic = [2][2]byte{{0x0C, 0xA5}, {0xA5, 0x0C}}

// FileFormat reads the first bytes of the file at path: an nfdump file, or
// else (whatever it holds: the flow-file reader says what is wrong) a kflow
// flow file.
func FileFormat(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return FormatKflow, fmt.Errorf("open flow file: %w", err)
	}
	defer f.Close()
	var b [2]byte
	if n, _ := f.ReadAt(b[:], 0); n == len(b) && (b == nfdumpMagic[0] || b == nfdumpMagic[1]) {
		return FormatNfdump, nil
	}
	return FormatKflow, nil
}

// windowed keeps the files of one directory tree whose slot may hold
// records of w. Stamps are read as UTC: the comparison only needs the same
// reading for names and window, and names carry local time, so the window
// is moved into the names' frame by comparing wall clocks.
func windowed(files []File, w Window, slack time.Duration) []File {
	if w.IsZero() || len(files) == 0 {
		return files
	}
	slices.SortFunc(files, func(x, y File) int { return x.Slot.Compare(y.Slot) })
	// The interval: the smallest gap between slots, else the default.
	iv := flowfile.DefaultInterval
	for i := 1; i < len(files); i++ {
		if g := files[i].Slot.Sub(files[i-1].Slot); g > 0 && g < iv {
			iv = g
		}
	}
	from, to := wallUTC(w.From), wallUTC(w.To)
	var out []File
	for _, f := range files {
		lo, hi := f.Slot.Add(-slack), f.Slot.Add(iv+slack)
		if !from.IsZero() && hi.Before(from) {
			continue
		}
		if !to.IsZero() && lo.After(to) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// wallUTC returns t's wall clock in its location as a UTC time (file name
// stamps are wall clock times).
func wallUTC(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}
