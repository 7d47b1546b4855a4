// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// Dropped is a partition DropExpired removed.
type Dropped struct {
	Table     string
	Partition string // 2025-03-14 (a day) or 202503 (a month)
}

// DropExpired drops the partitions of the flows and consolidated tables
// whose every row is older than the table's retention at now. It is how
// 18.16 (no TTL) keeps its retention, and on modern servers it applies a
// retention changed after the tables were made with another TTL.
func DropExpired(ctx context.Context, c *Client, s *Schema, now time.Time) ([]Dropped, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	tables := []struct {
		name string
		keep time.Duration
	}{
		{TableFlows, s.Retention.Flows},
		{TableMinute, s.Retention.Minute},
		{TableHour, s.Retention.Hour},
	}
	var out []Dropped
	for _, t := range tables {
		if t.keep == 0 {
			continue
		}
		rows, err := c.QueryRows(ctx, fmt.Sprintf(
			"SELECT DISTINCT partition FROM system.parts WHERE database = '%s' AND table = '%s' AND active",
			quoteString(s.Database), quoteString(t.name)))
		if err != nil {
			return out, fmt.Errorf("retention of %s: %w", t.name, err)
		}
		cutoff := now.Add(-t.keep)
		for _, r := range rows {
			lit, end, ok := partitionEnd(r[0])
			if !ok {
				return out, fmt.Errorf("retention of %s: unexpected partition %q", t.name, r[0])
			}
			if end.After(cutoff) {
				continue
			}
			if err := c.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", s.name(t.name), lit)); err != nil {
				return out, fmt.Errorf("retention of %s: %w", t.name, err)
			}
			out = append(out, Dropped{Table: t.name, Partition: r[0]})
		}
	}
	return out, nil
}

// partitionEnd parses a partition of kflow's tables, a day (2025-03-14)
// or a month (202503), and returns it as a literal for DROP PARTITION and
// the end of the period it holds. Parsing is what keeps the literal safe.
func partitionEnd(p string) (literal string, end time.Time, ok bool) {
	if d, err := time.Parse("2006-01-02", p); err == nil {
		return "'" + d.Format("2006-01-02") + "'", d.AddDate(0, 0, 1), true
	}
	if m, err := time.Parse("200601", p); err == nil && len(p) == 6 {
		return m.Format("200601"), m.AddDate(0, 1, 0), true
	}
	return "", time.Time{}, false
}
