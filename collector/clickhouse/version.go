// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version (major.minor; the rest does not
// change what kflow uses).
type Version struct {
	Major, Minor int
}

// Oldest is the oldest version kflow supports: Debian 12's.
var Oldest = Version{18, 16}

// modern is the first version whose features the modern DDL uses: the
// IPv6 type, TTL with ttl_only_drop_parts, column codecs.
var modern = Version{21, 8}

// ParseVersion parses "18.16.1", "24.8.4.13" or "24.8".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("clickhouse version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	var v Version
	var err error
	if v.Major, err = strconv.Atoi(parts[0]); err != nil || v.Major < 0 {
		return Version{}, fmt.Errorf("clickhouse version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	if v.Minor, err = strconv.Atoi(parts[1]); err != nil || v.Minor < 0 {
		return Version{}, fmt.Errorf("clickhouse version %q: want MAJOR.MINOR[.PATCH]", s)
	}
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is o or later.
func (v Version) AtLeast(o Version) bool {
	return v.Major > o.Major || v.Major == o.Major && v.Minor >= o.Minor
}

// Modern reports whether kflow uses the IPv6 type, TTL and codecs on v.
func (v Version) Modern() bool { return v.AtLeast(modern) }
