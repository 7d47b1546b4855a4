// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"strings"
	"time"
)

// FilePrefix is the prefix of the files nfcapd writes.
const FilePrefix = "nfcapd"

// IsFileName reports whether name is the name of a file nfcapd writes:
// nfcapd.YYYYMMDDhhmm, nfcapd.YYYYMMDDhhmmss (intervals under a minute),
// either followed by a +hhmm or -hhmm zone (nfcapd -Z), or
// nfcapd.current.* (the file being written). slot is the start of the
// file's interval, read in loc (nfcapd names files in local time; nil
// means time.Local) unless the name carries its zone; it is the zero time
// for a current file, whose name has no time.
func IsFileName(name string, loc *time.Location) (slot time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, FilePrefix+".")
	if !found {
		return time.Time{}, false
	}
	if cur, isCur := strings.CutPrefix(rest, "current."); isCur {
		return time.Time{}, cur != ""
	}
	stamp, zone := rest, ""
	if i := strings.IndexAny(rest, "+-"); i >= 0 {
		stamp, zone = rest[:i], rest[i:]
	}
	var layout string
	switch len(stamp) {
	case len("200601021504"):
		layout = "200601021504"
	case len("20060102150405"):
		layout = "20060102150405"
	default:
		return time.Time{}, false
	}
	if strings.Trim(stamp, "0123456789") != "" {
		return time.Time{}, false
	}
	if loc == nil {
		loc = time.Local
	}
	var t time.Time
	var err error
	if zone != "" {
		if len(zone) != len("+0000") || strings.Trim(zone[1:], "0123456789") != "" {
			return time.Time{}, false
		}
		t, err = time.Parse(layout+"-0700", stamp+zone)
		if err == nil {
			t = t.In(loc)
		}
	} else {
		t, err = time.ParseInLocation(layout, stamp, loc)
	}
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
