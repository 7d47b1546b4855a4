// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/kflow-dev/kflow/collector/query"
)

// cells reads the fields of one result row in order; the first field
// that does not parse sets err (the answer is outside data).
type cells struct {
	row []string
	i   int
	err error
}

func (c *cells) next() string {
	if c.i >= len(c.row) {
		if c.err == nil {
			c.err = fmt.Errorf("clickhouse answer: row of %d fields, want more", len(c.row))
		}
		return "0"
	}
	s := c.row[c.i]
	c.i++
	return s
}

func (c *cells) u64() uint64 {
	s := c.next()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("clickhouse answer: %q is not a number", s)
	}
	return v
}

func (c *cells) i64() int64 {
	s := c.next()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("clickhouse answer: %q is not a number", s)
	}
	return v
}

// counter reads the fields of counterCols.
func (c *cells) counter() query.Counter {
	return query.Counter{Flows: c.u64(), Packets: c.u64(), Bytes: c.u64(), First: c.i64(), Last: c.i64()}
}

// addr reads the three fields of an addrKey.
func (c *cells) addr() netip.Addr {
	fam, hi, lo := c.u64(), c.u64(), c.u64()
	return addrFromKey(fam, hi, lo)
}

// hexStr reads a string given in hexadecimal (strValue).
func (c *cells) hexStr() string {
	s := c.next()
	b, err := hex.DecodeString(s)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("clickhouse answer: %.40q is not hexadecimal", s)
	}
	return string(b)
}
