// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Migration upgrades the schema from the version before it to Version.
// Its steps must be safe to run again: a failure midway leaves the
// version unrecorded and the next start runs them all again (use IF
// EXISTS / IF NOT EXISTS, and Step.Done where 18.16 has no such clause,
// as for ADD COLUMN). A migration that changes a consolidated table
// changes its view in the same migration: drop the view, change the
// table, create the view (a view that no longer matches its table fails
// every insert into flows).
type Migration struct {
	Version int
	Summary string
	Steps   func(s *Schema) []Step
}

// Step is one statement of a migration.
type Step struct {
	SQL string
	// Done, if set, is a query that returns 1 when the step's work is
	// already there; the step is skipped then.
	Done string
}

// AddColumn is the step that adds a column to a table unless it is there
// (18.16 has no ADD COLUMN IF NOT EXISTS).
func AddColumn(s *Schema, table, column, typ, after string) Step {
	return Step{
		SQL: fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s AFTER %s", s.name(table), column, typ, after),
		Done: fmt.Sprintf("SELECT count() FROM system.columns WHERE database = '%s' AND table = '%s' AND name = '%s'",
			quoteString(s.Database), quoteString(table), quoteString(column)),
	}
}

// migrations is the schema's history. Version 1 is the first schema: its
// objects are made by Statements, which every start runs.
var migrations = []Migration{
	{Version: 1, Summary: "flows, per-minute and per-hour sums", Steps: func(*Schema) []Step { return nil }},
	{Version: 2, Summary: "the records' position in their flow files; per-minute and per-hour sums keyed by the records' start and end bound (the version 1 tables are kept as flows_1m_v1 and flows_1h_v1)",
		Steps: func(s *Schema) []Step { return append(positions(s), startKeyedSums(s)...) }},
	{Version: 3, Summary: "the local socket's cgroup of each record: its id and path, and the systemd unit, container id and pod UID the path shows",
		Steps: cgroups},
}

// positions (version 2) adds the position columns to flows (rows shipped
// before have none: an empty file, position 0).
func positions(s *Schema) []Step {
	return addColumns(s, flowColumns[len(flowColumns)-1].name, positionColumns)
}

// cgroups (version 3) adds the cgroup columns to flows, after the
// position columns. Rows shipped before read as records without a
// cgroup (0 and empty strings, the columns' defaults). The consolidated
// tables and their views do not change: they keep no cgroup, and
// questions about cgroups read the flows table.
func cgroups(s *Schema) []Step {
	return addColumns(s, positionColumns[len(positionColumns)-1].name, cgroupColumns)
}

// addColumns adds cols to flows after the column named after, in order,
// and has the cluster's Distributed table made again over them.
func addColumns(s *Schema, after string, cols []column) []Step {
	var steps []Step
	for _, c := range cols {
		steps = append(steps, AddColumn(s, TableFlows, c.name, s.typ(c), after))
		after = c.name
	}
	if s.Cluster != "" {
		// Made again over the new columns by Statements.
		steps = append(steps, Step{SQL: "DROP TABLE IF EXISTS " + s.name(TableFlows+DistSuffix)})
	}
	return steps
}

// startKeyedSums (version 2) rebuilds the consolidated tables keyed by
// the records' start bucket and end bound, from what the flows table
// still holds. The version 1 tables (keyed by the records' end) are
// renamed, not dropped: they may hold sums older than the flows. Run it
// with the shippers stopped: rows inserted between the backfill and the
// view's creation would be missed.
func startKeyedSums(s *Schema) []Step {
	var steps []Step
	for _, c := range consolidations {
		old := c.table + "_v1"
		steps = append(steps,
			Step{SQL: "DROP TABLE IF EXISTS " + s.name(c.view)},
			Step{SQL: fmt.Sprintf("RENAME TABLE %s TO %s", s.name(c.table), s.name(old)), Done: tableExists(s, old)},
			// A table of a run that failed after making it.
			Step{SQL: "DROP TABLE IF EXISTS " + s.name(c.table)},
			Step{SQL: s.consolidatedTable(c)},
			Step{SQL: fmt.Sprintf("INSERT INTO %s (%s) %s", s.name(c.table), strings.Join(consolidatedColumns(), ", "), s.consolidatedSelect(c))},
			Step{SQL: s.consolidatedView(c)},
		)
		if s.Cluster != "" {
			// Made again over the new columns by Statements.
			steps = append(steps, Step{SQL: "DROP TABLE IF EXISTS " + s.name(c.table+DistSuffix)})
		}
	}
	return steps
}

// tableExists is a Step.Done query: 1 when the table exists.
func tableExists(s *Schema, table string) string {
	return fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s'",
		quoteString(s.Database), quoteString(table))
}

// SchemaVersion is the version of the schema this kflow makes.
func SchemaVersion() int { return migrations[len(migrations)-1].Version }

// Applied is what Migrate did.
type Applied struct {
	From, To   int      // schema version before and after
	Migrations []string // summaries of the migrations run
}

// Migrate brings the schema on the client's server to the latest
// version: it creates the database and the version table, runs the
// migrations newer than the recorded version, records each, then
// creates whatever is still missing. A recorded version newer than this
// kflow knows is an error: an older kflow must not write into a schema
// it does not know. kflowVersion is recorded with each version.
func Migrate(ctx context.Context, c *Client, s *Schema, kflowVersion string) (Applied, error) {
	return migrate(ctx, c, s, migrations, kflowVersion)
}

func migrate(ctx context.Context, c *Client, s *Schema, list []Migration, kflowVersion string) (Applied, error) {
	if err := s.Validate(); err != nil {
		return Applied{}, err
	}
	stmts := s.Statements()
	// The database and the version table first.
	for _, q := range stmts[:2] {
		if err := c.Exec(ctx, q); err != nil {
			return Applied{}, fmt.Errorf("create schema: %w", err)
		}
	}
	cur, err := recordedVersion(ctx, c, s)
	if err != nil {
		return Applied{}, err
	}
	latest := list[len(list)-1].Version
	a := Applied{From: cur, To: cur}
	if cur > latest {
		return a, fmt.Errorf("clickhouse schema in %s is version %d, newer than this kflow's %d: upgrade kflow", s.Database, cur, latest)
	}
	if cur == 0 {
		// A new schema: Statements makes the latest version at once.
		if err := execAll(ctx, c, stmts[2:]); err != nil {
			return a, fmt.Errorf("create schema: %w", err)
		}
		if err := recordVersion(ctx, c, s, latest, kflowVersion); err != nil {
			return a, err
		}
		a.To = latest
		a.Migrations = append(a.Migrations, fmt.Sprintf("created version %d", latest))
		return a, nil
	}
	for _, m := range list {
		if m.Version <= cur {
			continue
		}
		if err := runSteps(ctx, c, m.Steps(s)); err != nil {
			return a, fmt.Errorf("migrate schema to version %d (%s): %w", m.Version, m.Summary, err)
		}
		if err := recordVersion(ctx, c, s, m.Version, kflowVersion); err != nil {
			return a, err
		}
		a.To = m.Version
		a.Migrations = append(a.Migrations, fmt.Sprintf("version %d: %s", m.Version, m.Summary))
	}
	// Whatever is missing (a table dropped by hand, a new cluster's
	// Distributed tables).
	if err := execAll(ctx, c, stmts[2:]); err != nil {
		return a, fmt.Errorf("create missing schema objects: %w", err)
	}
	return a, nil
}

func runSteps(ctx context.Context, c *Client, steps []Step) error {
	for _, st := range steps {
		if st.Done != "" {
			b, err := c.Query(ctx, st.Done)
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == "1" {
				continue
			}
		}
		if err := c.Exec(ctx, st.SQL); err != nil {
			return err
		}
	}
	return nil
}

func execAll(ctx context.Context, c *Client, stmts []string) error {
	for _, q := range stmts {
		if err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func recordedVersion(ctx context.Context, c *Client, s *Schema) (int, error) {
	b, err := c.Query(ctx, fmt.Sprintf("SELECT max(version) FROM %s", s.name(TableVersion)))
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read schema version: %q is not a number", b)
	}
	return v, nil
}

func recordVersion(ctx context.Context, c *Client, s *Schema, v int, kflowVersion string) error {
	q := fmt.Sprintf("INSERT INTO %s (version, applied, kflow) VALUES (%d, now(), '%s')",
		s.name(TableVersion), v, quoteString(kflowVersion))
	if err := c.Exec(ctx, q); err != nil {
		return fmt.Errorf("record schema version %d: %w", v, err)
	}
	return nil
}

// quoteString escapes s for a single-quoted ClickHouse string literal.
func quoteString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
