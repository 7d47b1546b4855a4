// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/shipper"
)

// shipperStopTimeout bounds the last shipping at shutdown: what is left
// is shipped at the next start (the files are the log).
const shipperStopTimeout = 10 * time.Second

// clickhouseFlags are the ClickHouse options of "kflow collector run" and
// "kflow exporter run".
type clickhouseFlags struct {
	urls      []string
	cluster   string
	retention string
	compress  string
	// killAfterInsert is for the crash test: SIGKILL the process after
	// the Nth acknowledged insert, before the checkpoint records it.
	killAfterInsert int
}

func (f *clickhouseFlags) register(fs *pflag.FlagSet, what string) {
	fs.StringSliceVar(&f.urls, "clickhouse", nil, "also ship "+what+" to ClickHouse at `URL` (http://user:pass@host:8123/db); repeatable or a comma list: one URL per shard of a cluster, inserts go to each in turn")
	fs.StringVar(&f.cluster, "clickhouse-cluster", "", "the ClickHouse servers form this cluster (remote_servers `NAME`): create Distributed tables (flows_dist, ...) over it for queries")
	fs.StringVar(&f.retention, "clickhouse-retention", "flows=15d,1m=7d,1h=365d", "how long ClickHouse keeps raw flows and per-minute and per-hour sums, in days (0: for ever)")
	fs.StringVar(&f.compress, "clickhouse-compression", "auto", "gzip the inserts: `auto` (unless every server is on a loopback address, where it costs CPU and saves nothing), gzip or none")
	fs.IntVar(&f.killAfterInsert, "clickhouse-kill-after-insert", 0, "")
	_ = fs.MarkHidden("clickhouse-kill-after-insert")
}

// parseRetention parses "flows=15d,1m=7d,1h=365d" (any subset).
func parseRetention(s string) (clickhouse.Retention, error) {
	r := clickhouse.DefaultRetention
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return r, fmt.Errorf("retention %q: want TABLE=DAYSd, TABLE one of flows, 1m, 1h", part)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
		if err != nil || n < 0 {
			return r, fmt.Errorf("retention %q: want a number of days (15d)", part)
		}
		d := time.Duration(n) * clickhouse.Day
		switch k {
		case "flows":
			r.Flows = d
		case "1m":
			r.Minute = d
		case "1h":
			r.Hour = d
		default:
			return r, fmt.Errorf("retention %q: unknown table %q (flows, 1m, 1h)", part, k)
		}
	}
	return r, nil
}

// newShipper makes the shipper of the flow files under dir when URLs
// were given (nil otherwise). It touches no file yet: the daemon creates
// it before its flow-file sink, for the retention hook, and starts it
// after (startShipper), once crashed files are recovered.
func (f *clickhouseFlags) newShipper(e *env, dir string, sources []shipper.Source, prefix string, loc *time.Location) (*shipper.Shipper, error) {
	if len(f.urls) == 0 {
		return nil, nil
	}
	ret, err := parseRetention(f.retention)
	if err != nil {
		return nil, fmt.Errorf("%w: --clickhouse-retention: %v", errUsage, err)
	}
	comp, err := shipper.ParseCompression(f.compress)
	if err != nil {
		return nil, fmt.Errorf("%w: --clickhouse-compression: %v", errUsage, err)
	}
	log := e.log
	opts := shipper.Options{
		Dir: dir, Sources: sources, Prefix: prefix, Location: loc, URLs: f.urls, Cluster: f.cluster, Retention: ret,
		Compression: comp, KflowVersion: version, OnEvent: func(ev shipper.Event) { logShipperEvent(log, ev) },
	}
	if n := f.killAfterInsert; n > 0 {
		inserts := 0
		opts.AfterInsert = func() {
			if inserts++; inserts == n {
				log.Warn("killing the process after an insert, before its checkpoint (--clickhouse-kill-after-insert)")
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // until the signal lands
			}
		}
	}
	s, err := shipper.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: --clickhouse: %v", errUsage, err)
	}
	return s, nil
}

// expiring is the retention hook: it tells the shipper, if any.
func expiring(s *shipper.Shipper) func(flowfile.ExpiredFile) {
	if s == nil {
		return nil
	}
	return s.Expiring
}

// startShipper runs s on its own goroutine. stop ends it at shutdown,
// after the daemon closed its files: it ships what is left for at most
// shipperStopTimeout (the rest ships at the next start).
func startShipper(e *env, s *shipper.Shipper, urls []string, cluster string) (stop func()) {
	if s == nil {
		return func() {}
	}
	log := e.log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			log.Error("clickhouse shipper stopped", "err", err)
		}
	}()
	var servers []string
	for _, u := range urls {
		if c, err := clickhouse.NewClient(u, nil); err == nil {
			servers = append(servers, c.String())
		}
	}
	log.Info("shipping flow files to clickhouse", "servers", strings.Join(servers, ","), "cluster", cluster)
	var once sync.Once
	return func() { once.Do(func() { stopRun(log, s, done, cancel) }) }
}

// stopRun lets s finish shipping for at most shipperStopTimeout, then
// ends it.
func stopRun(log *slog.Logger, s *shipper.Shipper, done chan struct{}, cancel context.CancelFunc) {
	s.Finish()
	select {
	case <-done:
	case <-time.After(shipperStopTimeout):
		log.Warn("clickhouse shipper: stopping before everything was shipped; the rest ships at the next start",
			"lag_blocks", s.Stats().LagBlocks)
	}
	cancel()
	<-done
	st := s.Stats()
	log.Info("clickhouse shipper stopped", "rows", st.Rows, "inserts", st.Inserts, "errors", st.Errors,
		"duplicates_skipped", st.Duplicates)
}

func logShipperEvent(log *slog.Logger, ev shipper.Event) {
	switch ev.Kind {
	case shipper.EventSchema:
		log.Info("clickhouse schema ready", "server", ev.Server, "detail", ev.Detail)
	case shipper.EventFailed:
		log.Error("clickhouse: shipping failed; retrying, nothing is lost (the flow files keep everything)", "err", ev.Err)
	case shipper.EventRecovered:
		log.Info("clickhouse: shipping works again")
	case shipper.EventDuplicates:
		log.Warn("clickhouse: blocks of an unacknowledged insert found in ClickHouse, not sent again", "rows", ev.Rows, "blocks", ev.Blocks)
	case shipper.EventUnshippedRemoved:
		log.Error("clickhouse: flow file removed before it was shipped", "path", ev.Path, "unshipped_bytes", ev.Bytes, "detail", ev.Detail)
	case shipper.EventCorruptBlock:
		log.Error("clickhouse: corrupt flow-file block skipped", "path", ev.Path, "err", ev.Err)
	case shipper.EventUnrepresentable:
		log.Warn("clickhouse: records with a time outside 1970-2106 not shipped (they stay in the files)", "rows", ev.Rows)
	case shipper.EventRetention:
		log.Info("clickhouse: partitions dropped by retention", "server", ev.Server, "partitions", ev.Detail)
	case shipper.EventUnverifiable:
		log.Warn("clickhouse: "+ev.Detail, "server", ev.Server, "blocks", ev.Blocks)
	default:
		log.Info("clickhouse", "event", ev.Kind, "detail", ev.Detail, "err", ev.Err)
	}
}

func clickhouseCmd() *command {
	return &command{
		name:    "clickhouse",
		summary: "kflow's ClickHouse schema",
		sub:     []*command{clickhouseSchemaCmd()},
		def:     "schema",
	}
}

func clickhouseSchemaCmd() *command {
	var (
		ver, db, cluster, retention string
	)
	return &command{
		name:    "schema",
		summary: "print the DDL kflow runs on a ClickHouse server of a version",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&ver, "version", "24.8", "the server's `VERSION` (18.16: Debian 12's; 21.8 and later: IPv6 type, TTL, codecs)")
			fs.StringVar(&db, "database", clickhouse.DefaultDatabase, "the `DATABASE`")
			fs.StringVar(&cluster, "cluster", "", "with Distributed tables over this cluster `NAME`")
			fs.StringVar(&retention, "retention", "flows=15d,1m=7d,1h=365d", "retention in days, as --clickhouse-retention")
		},
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			v, err := clickhouse.ParseVersion(ver)
			if err != nil {
				return fmt.Errorf("%w: --version: %v", errUsage, err)
			}
			ret, err := parseRetention(retention)
			if err != nil {
				return fmt.Errorf("%w: --retention: %v", errUsage, err)
			}
			s := clickhouse.Schema{Version: v, Database: db, Cluster: cluster, Retention: ret}
			if err := s.Validate(); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			if e.json {
				return e.printJSON(struct {
					Version       string   `json:"version"`
					SchemaVersion int      `json:"schema_version"`
					Statements    []string `json:"statements"`
				}{v.String(), clickhouse.SchemaVersion(), s.Statements()})
			}
			fmt.Fprintf(e.stdout, "-- kflow schema version %d for ClickHouse %s\n", clickhouse.SchemaVersion(), v)
			_, err = fmt.Fprint(e.stdout, s.SQL())
			return err
		},
	}
}
