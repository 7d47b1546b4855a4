// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultPrefix is the file name prefix: kflow.YYYYMMDDhhmm, like
// nfcapd.YYYYMMDDhhmm.
const DefaultPrefix = "kflow"

// DefaultInterval is the default rotation interval, nfcapd's -t 300.
const DefaultInterval = 300 * time.Second

const (
	stampMinutes = "200601021504"
	stampSeconds = "20060102150405"
)

// Layout is a subdirectory hierarchy, numbered like nfcapd's -S option.
type Layout int

// The layouts of nfcapd -S 0..8.
const (
	LayoutFlat              Layout = iota // no subdirectories
	LayoutYearMonthDay                    // %Y/%m/%d
	LayoutYearMonthDayHour                // %Y/%m/%d/%H
	LayoutYearWeekDay                     // %Y/%W/%u
	LayoutYearWeekDayHour                 // %Y/%W/%u/%H
	LayoutYearDayOfYear                   // %Y/%j
	LayoutYearDayOfYearHour               // %Y/%j/%H
	LayoutDate                            // %F (%Y-%m-%d)
	LayoutDateHour                        // %F/%H
	numLayouts
)

var layoutFormats = [numLayouts]string{
	"", "%Y/%m/%d", "%Y/%m/%d/%H", "%Y/%W/%u", "%Y/%W/%u/%H",
	"%Y/%j", "%Y/%j/%H", "%F", "%F/%H",
}

// ParseLayout parses an nfcapd -S number ("0".."8").
func ParseLayout(s string) (Layout, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= int(numLayouts) {
		return 0, fmt.Errorf("subdirectory layout %q: want 0..%d", s, numLayouts-1)
	}
	return Layout(n), nil
}

// String returns the strftime pattern of the layout ("" for flat).
func (l Layout) String() string {
	if l < 0 || l >= numLayouts {
		return fmt.Sprintf("Layout(%d)", int(l))
	}
	return layoutFormats[l]
}

// Dir returns the subdirectory for a file of slot t, in t's location, as
// nfcapd would name it ("" for LayoutFlat or an unknown layout).
func (l Layout) Dir(t time.Time) string {
	if l <= 0 || l >= numLayouts {
		return ""
	}
	return strftime(layoutFormats[l], t)
}

// strftime implements the conversions the layouts use.
func strftime(f string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'u': // weekday, Monday = 1 .. Sunday = 7
			fmt.Fprintf(&b, "%d", (int(t.Weekday())+6)%7+1)
		case 'W': // week of year, Monday first, 00..53
			fmt.Fprintf(&b, "%02d", (t.YearDay()+6-(int(t.Weekday())+6)%7)/7)
		case 'F':
			fmt.Fprintf(&b, "%04d-%02d-%02d", t.Year(), int(t.Month()), t.Day())
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

// SlotStart returns the start of the rotation slot holding t: slots are
// aligned to the Unix epoch (so to the wall clock for intervals that divide
// a day), as nfcapd aligns them. The result is in t's location.
func SlotStart(t time.Time, interval time.Duration) time.Time {
	if interval < time.Second {
		interval = time.Second
	}
	iv := int64(interval / time.Second)
	s := t.Unix()
	s -= ((s % iv) + iv) % iv
	return time.Unix(s, 0).In(t.Location())
}

// Stamp formats a slot start as file names carry it: YYYYMMDDhhmm, or
// YYYYMMDDhhmmss when the interval is not a whole number of minutes (as
// nfcapd does for intervals under 60 s).
func Stamp(slot time.Time, interval time.Duration) string {
	if interval%time.Minute != 0 {
		return slot.Format(stampSeconds)
	}
	return slot.Format(stampMinutes)
}

// FileName returns the name of a finished file: prefix.STAMP.
func FileName(prefix string, slot time.Time, interval time.Duration) string {
	return prefix + "." + Stamp(slot, interval)
}

// CurrentName returns the name of the file being written for a slot:
// prefix.current.STAMP. The stamp lets a restart finish and rename a file a
// crash left behind.
func CurrentName(prefix string, slot time.Time, interval time.Duration) string {
	return prefix + ".current." + Stamp(slot, interval)
}

// Name is a parsed flow file name.
type Name struct {
	Slot    time.Time // slot start, in the location given to ParseName
	Stamp   string    // YYYYMMDDhhmm[ss]
	Current bool      // a .current file (unfinished)
	Seq     int       // n of a ".n" suffix that avoids overwriting; 0 if none
}

// ParseName parses prefix.STAMP[.n] and prefix.current.STAMP[.n]; ok is
// false for any other name.
func ParseName(prefix, name string, loc *time.Location) (n Name, ok bool) {
	rest, found := strings.CutPrefix(name, prefix+".")
	if !found {
		return Name{}, false
	}
	if r, cur := strings.CutPrefix(rest, "current."); cur {
		rest, n.Current = r, true
	}
	stamp, seq, hasSeq := strings.Cut(rest, ".")
	if hasSeq {
		v, err := strconv.Atoi(seq)
		if err != nil || v <= 0 || strconv.Itoa(v) != seq {
			return Name{}, false
		}
		n.Seq = v
	}
	layout := stampMinutes
	if len(stamp) == len(stampSeconds) {
		layout = stampSeconds
	}
	if len(stamp) != len(layout) || strings.Trim(stamp, "0123456789") != "" {
		return Name{}, false
	}
	if loc == nil {
		loc = time.Local
	}
	t, err := time.ParseInLocation(layout, stamp, loc)
	if err != nil {
		return Name{}, false
	}
	n.Slot, n.Stamp = t, stamp
	return n, true
}

// withSeq returns name with a ".n" suffix for n > 0.
func withSeq(name string, n int) string {
	if n == 0 {
		return name
	}
	return name + "." + strconv.Itoa(n)
}
