// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/server"
	"github.com/kflow-dev/kflow/collector/shipper"
	"github.com/kflow-dev/kflow/exporter/promtext"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// collectorFlags are the options of "kflow collector run". nfcapd's
// spellings are accepted where they do not clash with kflow's grammar
// (see nfcapdNotes and README.md).
type collectorFlags struct {
	listen        []string
	noDefault     bool
	port          string // nfcapd -p (--port here: -p is --pretty)
	bind          string // nfcapd -b
	allow         []string
	readyFile     string
	metricsAddr   string
	dir           string
	flowdir       string // nfcapd -w
	prefix        string
	ident         string
	interval      time.Duration
	layout        string
	perExporter   bool
	sources       []string // nfcapd -n IDENT,IP,DIR
	expire        bool     // nfcapd -e
	execCmd       string   // nfcapd -x
	lzo           string   // nfcapd -z (-z=FORMAT in later nfcapd)
	lz4           bool     // nfcapd -y
	daemon        bool     // nfcapd -D
	flushInterval time.Duration
	maxAge        time.Duration
	maxSize       string
	rcvbuf        int
	workers       int
	holdTime      time.Duration
	maxTemplates  int
	statsInterval time.Duration
	stateFile     string
	utc           bool
	cpuProfile    string
	memProfile    string
	web           webFlags
	ch            clickhouseFlags
}

// nfcapdPort is nfcapd's default port, one of kflow's defaults too.
const nfcapdPort = "9995"

func (f *collectorFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.listen, "listen", "l", nil, "also receive on `URL` (udp://HOST:PORT: NetFlow v5, v9, IPFIX and sFlow v5; tcp://HOST:PORT: IPFIX); repeatable; adds to the defaults udp://[::]:2055, udp://[::]:4739, udp://[::]:9995, udp://[::]:6343, tcp://[::]:4739 (a URL on a default's port replaces that default)")
	fs.BoolVar(&f.noDefault, "no-default-listen", false, "listen only where --listen, --port and -b say, not on the default addresses")
	fs.StringVar(&f.port, "port", "", "nfcapd's -p: also receive NetFlow/IPFIX over UDP on `PORT` (-p is --pretty in kflow)")
	fs.StringVarP(&f.bind, "bind", "b", "", "nfcapd's -b: listen on `ADDR` instead of every address (the default listeners and --port)")
	fs.StringSliceVar(&f.allow, "allow", nil, "accept exporters in `PREFIX` only (198.18.0.0/15, 10.1.2.3); repeatable; default: all")
	fs.StringVar(&f.readyFile, "ready-file", "", "write the bound addresses to this `FILE` once listening")
	fs.StringVar(&f.metricsAddr, "metrics-address", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9274)")
	fs.StringVarP(&f.dir, "dir", "d", "", "write flow files under `DIR` (required, unless every exporter has its -n directory)")
	fs.StringVarP(&f.flowdir, "flowdir", "w", "", "nfcapd's -w: the same as --dir")
	fs.StringVar(&f.prefix, "prefix", flowfile.DefaultPrefix, "flow file name prefix")
	fs.StringVarP(&f.ident, "ident", "I", "kflow collector", "nfcapd's -I: ident written in each file header (file stat shows it)")
	f.interval = flowfile.DefaultInterval
	fs.VarP(secondsValue{&f.interval}, "interval", "t", "rotate files every this long, aligned to the clock: seconds as nfcapd's -t (300) or a duration (5m)")
	fs.StringVarP(&f.layout, "layout", "S", "0", "subdirectory layout: an nfcapd -S number 0-8 or its pattern (%Y/%m/%d ...)")
	fs.BoolVar(&f.perExporter, "per-exporter", false, "write each exporter's files in DIR/<exporter address>")
	fs.StringArrayVarP(&f.sources, "source", "n", nil, "nfcapd's -n `IDENT,IP,DIR`: write the exporter at IP's files in DIR with IDENT in their header; repeatable; others go to --dir")
	fs.Var(ageValue{&f.maxAge}, "max-age", "at each rotation remove files older than this (12h, 30d, 2w; 0: keep)")
	fs.StringVar(&f.maxSize, "max-size", "", "at each rotation remove the oldest files past this total `SIZE` (500M, 10G; empty: no limit)")
	fs.BoolVarP(&f.expire, "expire", "e", false, "nfcapd's -e: expire files at each rotation; needs --max-age or --max-size (kflow applies them at each rotation anyway)")
	fs.StringVarP(&f.execCmd, "exec", "x", "", "nfcapd's -x `CMD`: run CMD (with sh -c) after each rotation; %d directory, %f file (relative to %d), %t slot (YYYYMMddhhmm), %u slot (unix seconds), %i ident")
	fs.StringVarP(&f.lzo, "lzo", "z", "", "nfcapd's -z: accepted; kflow always compresses its files (zstd)")
	fs.Lookup("lzo").NoOptDefVal = "lzo"
	fs.BoolVarP(&f.lz4, "lz4", "y", false, "nfcapd's -y: accepted; kflow always compresses its files (zstd); nfcapd's -j (bzip2) is kflow's --json")
	fs.BoolVarP(&f.daemon, "daemon", "D", false, "nfcapd's -D: refused; run kflow under systemd (docs/service.md) or another supervisor")
	fs.DurationVar(&f.flushInterval, "flush-interval", server.DefaultFlushInterval, "write buffered records to the current file this often (what a crash can lose)")
	fs.IntVarP(&f.rcvbuf, "receive-buffer", "B", server.DefaultReceiveBuffer, "UDP socket receive buffer `BYTES` (nfcapd's -B)")
	fs.IntVar(&f.workers, "workers", 1, "decode workers (each exporter is decoded by one)")
	fs.DurationVar(&f.holdTime, "hold-time", server.DefaultHoldTime, "keep data that arrives before its template this long")
	fs.IntVar(&f.maxTemplates, "max-templates", wire.DefaultMaxTemplates, "templates kept per exporter")
	fs.StringVar(&f.stateFile, "state-file", "", "keep the UDP exporters' templates and sequence numbers as of each flush in `FILE`: after a restart their data decodes at once and what was missed meanwhile is counted (restart_lost_total)")
	fs.DurationVar(&f.statsInterval, "stats-interval", time.Minute, "log new decode errors, sequence gaps and drops this often (0: never)")
	fs.BoolVar(&f.utc, "utc", false, "name files and directories in UTC instead of local time")
	f.web.register(fs, "web-")
	f.ch.register(fs, "the stored records")
	// For performance work (collector/server's BenchmarkCollectorReplay):
	// hidden, not part of the command's interface.
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to `FILE`")
	_ = fs.MarkHidden("cpu-profile")
	fs.StringVar(&f.memProfile, "mem-profile", "", "write a Go heap profile to `FILE` when the collector stops receiving, before the files are closed")
	_ = fs.MarkHidden("mem-profile")
}

// secondsValue is a duration flag that also takes a bare number of
// seconds, as nfcapd's -t does.
type secondsValue struct{ d *time.Duration }

func (v secondsValue) Set(s string) error {
	if n, err := strconv.ParseUint(s, 10, 31); err == nil {
		*v.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want seconds (300) or a duration (5m)")
	}
	*v.d = d
	return nil
}

func (v secondsValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v secondsValue) Type() string { return "duration" }

// listeners returns where to listen: the defaults (unless
// --no-default-listen), bound to -b's address when given, then --port and
// --listen. An explicit listener on a default's transport and port
// replaces that default (they could not both bind).
func (f *collectorFlags) listeners() ([]string, error) {
	host := "::"
	if f.bind != "" {
		a, err := netip.ParseAddr(f.bind)
		if err != nil {
			return nil, fmt.Errorf("-b %q: want an IP address to listen on", f.bind)
		}
		host = a.String()
	}
	var explicit []server.Endpoint
	var urls []string
	add := func(u string) error {
		ep, err := server.ParseEndpoint(u)
		if err != nil {
			return err
		}
		explicit = append(explicit, ep)
		urls = append(urls, u)
		return nil
	}
	if f.port != "" {
		if n, err := strconv.ParseUint(f.port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("--port %q: want a UDP port number (1-65535)", f.port)
		}
		if err := add("udp://" + net.JoinHostPort(host, f.port)); err != nil {
			return nil, err
		}
	} else if f.bind != "" && f.noDefault {
		// nfcapd -b HOST alone listens on HOST:9995.
		if err := add("udp://" + net.JoinHostPort(host, nfcapdPort)); err != nil {
			return nil, err
		}
	}
	for _, l := range f.listen {
		if err := add(l); err != nil {
			if !strings.Contains(l, "://") {
				return nil, fmt.Errorf("--listen: %v (-l is kflow's --listen URL; nfcapd 1.6's -l DIR is -w DIR)", err)
			}
			return nil, fmt.Errorf("--listen: %v", err)
		}
	}
	var out []string
	if !f.noDefault {
		for _, d := range server.DefaultListen {
			ep, err := server.ParseEndpoint(d)
			if err != nil {
				return nil, err
			}
			_, port, _ := net.SplitHostPort(ep.Addr)
			taken := false
			for _, x := range explicit {
				_, xport, _ := net.SplitHostPort(x.Addr)
				taken = taken || (x.Network == ep.Network && xport == port)
			}
			if !taken {
				out = append(out, ep.Network+"://"+net.JoinHostPort(host, port))
			}
		}
	}
	out = append(out, urls...)
	if len(out) == 0 {
		return nil, errors.New("--no-default-listen and nowhere to listen: give --listen or --port")
	}
	return out, nil
}

// parseSources parses nfcapd's -n IDENT,IP,DIR options.
func parseSources(list []string, mainDir string) ([]server.NamedSource, error) {
	var out []server.NamedSource
	dirs := map[string]bool{}
	if mainDir != "" {
		dirs[filepath.Clean(mainDir)] = true
	}
	for _, s := range list {
		parts := strings.SplitN(s, ",", 3)
		if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
			return nil, fmt.Errorf("-n %q: want IDENT,IP,DIR as nfcapd's -n (kflow's one directory per exporter address is --per-exporter)", s)
		}
		a, err := netip.ParseAddr(parts[1])
		if err != nil {
			return nil, fmt.Errorf("-n %q: %q is not an IP address", s, parts[1])
		}
		d := filepath.Clean(parts[2])
		if dirs[d] {
			return nil, fmt.Errorf("-n %q: directory %s is already used by --dir or another -n", s, parts[2])
		}
		dirs[d] = true
		for _, o := range out {
			if o.Exporter == a.Unmap() {
				return nil, fmt.Errorf("-n %q: exporter %s is already named", s, a)
			}
		}
		out = append(out, server.NamedSource{Ident: parts[0], Exporter: a.Unmap(), Dir: parts[2]})
	}
	return out, nil
}

// nfcapdChecks refuses nfcapd spellings kflow cannot honour, with what to
// write instead.
func (f *collectorFlags) nfcapdChecks(e *env, args []string) error {
	if len(args) > 0 {
		if _, err := strconv.ParseUint(args[0], 10, 16); err == nil && e.pretty {
			return fmt.Errorf("%w: -p is kflow's --pretty (indented JSON); for nfcapd's -p %s write --port %s", errUsage, args[0], args[0])
		}
		return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
	}
	if f.daemon {
		return fmt.Errorf("%w: -D: kflow does not fork to the background; run it in the foreground under systemd (docs/systemd/kflow-collector.service, see docs/service.md) or another supervisor", errUsage)
	}
	if f.dir != "" && f.flowdir != "" && filepath.Clean(f.dir) != filepath.Clean(f.flowdir) {
		return fmt.Errorf("%w: --dir %s and -w %s disagree: give one", errUsage, f.dir, f.flowdir)
	}
	if f.dir == "" {
		f.dir = f.flowdir
	}
	if f.dir == "" && len(f.sources) == 0 {
		return fmt.Errorf("%w: no --dir (-w) given", errUsage)
	}
	if f.expire && f.maxAge == 0 && f.maxSize == "" {
		return fmt.Errorf("%w: -e expires files by --max-age and --max-size (nfcapd reads nfexpire's limits; kflow takes them as options): give at least one", errUsage)
	}
	return nil
}

// parseLayout accepts an nfcapd -S number or the pattern of one.
func parseLayout(s string) (flowfile.Layout, error) {
	if l, err := flowfile.ParseLayout(s); err == nil {
		return l, nil
	}
	for l := flowfile.LayoutFlat; l <= flowfile.LayoutDateHour; l++ {
		if s != "" && l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("--layout %q: want 0-8 or one of %%Y/%%m/%%d, %%Y/%%m/%%d/%%H, %%Y/%%W/%%u, %%Y/%%W/%%u/%%H, %%Y/%%j, %%Y/%%j/%%H, %%F, %%F/%%H", s)
}

// parseSize parses a byte count with an optional K, M, G or T suffix
// (powers of 1024).
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b"))
	switch {
	case strings.HasSuffix(t, "K"):
		mult = 1 << 10
	case strings.HasSuffix(t, "M"):
		mult = 1 << 20
	case strings.HasSuffix(t, "G"):
		mult = 1 << 30
	case strings.HasSuffix(t, "T"):
		mult = 1 << 40
	}
	if mult > 1 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional K, M, G or T suffix", s)
	}
	return n * mult, nil
}

func parseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--allow %q: want an address or prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func collectorCmd() *command {
	return &command{
		name:    "collector",
		summary: "the bundled flow collector (NetFlow v5/v9 and IPFIX to flow files)",
		sub:     []*command{collectorRunCmd()},
	}
}

func collectorRunCmd() *command {
	f := &collectorFlags{}
	return &command{
		name:    "run",
		summary: "receive NetFlow v5, v9 and IPFIX and write rotated flow files",
		flags:   f.register,
		run: func(e *env, args []string) error {
			if err := f.nfcapdChecks(e, args); err != nil {
				return err
			}
			return f.run(e)
		},
	}
}

func (f *collectorFlags) run(e *env) error {
	if f.cpuProfile != "" {
		stop, err := querycli.StartCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	layout, err := parseLayout(f.layout)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	maxSize, err := parseSize(f.maxSize)
	if err != nil {
		return fmt.Errorf("%w: --max-size: %v", errUsage, err)
	}
	allow, err := parseAllow(f.allow)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if f.interval < time.Second || f.interval%time.Second != 0 {
		return fmt.Errorf("%w: --interval %v: want whole seconds", errUsage, f.interval)
	}
	listen, err := f.listeners()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	sources, err := parseSources(f.sources, f.dir)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	loc := time.Local
	if f.utc {
		loc = time.UTC
	}
	log := e.log
	if f.lzo != "" || f.lz4 || e.json {
		msg := "kflow always compresses its flow files (zstd blocks): nfcapd's -z and -y choose nothing here"
		if e.json {
			msg += "; -j is kflow's --json (the statistics at exit are printed as JSON), not nfcapd's bzip2"
		}
		log.Info(msg)
	}
	var execs *rotateExec
	if f.execCmd != "" {
		execs = newRotateExec(f.execCmd, f.interval, log)
		defer execs.close(time.Minute)
	}
	var shipSources []shipper.Source
	for _, src := range sources {
		shipSources = append(shipSources, shipper.Source{Dir: src.Dir, Key: src.Exporter.String()})
	}
	sh, err := f.ch.newShipper(e, f.dir, shipSources, f.prefix, loc)
	if err != nil {
		return err
	}
	sink, err := server.NewFileSink(server.FileSinkOptions{
		Expiring: expiring(sh),
		Rotator: flowfile.RotatorOptions{
			Dir: f.dir, Prefix: f.prefix, Interval: f.interval, Layout: layout, PerExporter: f.perExporter,
			Location: loc, Writer: flowfile.WriterOptions{Ident: f.ident},
		},
		Sources:  sources,
		MaxAge:   f.maxAge,
		MaxBytes: maxSize,
		OnFile: func(ev server.FileEvent) {
			if execs != nil && ev.Err == nil {
				execs.fileDone(ev)
			}
			attrs := []any{"path", ev.Path, "flows", ev.Summary.Total.Flows, "packets", ev.Summary.Total.Packets,
				"bytes", ev.Summary.Total.Octets, "size", ev.Size}
			switch {
			case ev.Err != nil:
				log.Error("flow file finished with an error", append(attrs, "err", ev.Err, "requeued", ev.Requeued, "lost", len(ev.Lost))...)
			case len(ev.Lost) > 0:
				log.Error("records lost", append(attrs, "lost", len(ev.Lost))...)
			default:
				log.Info("flow file finished", attrs...)
			}
			for _, x := range ev.Expired {
				log.Info("flow file expired", "path", x.Path, "size", x.Size)
			}
			if ev.ExpireErr != nil {
				log.Warn("retention", "err", ev.ExpireErr)
			}
		},
	})
	if err != nil {
		return err
	}
	for _, r := range sink.Recovered() {
		if r.Err != nil {
			log.Warn("could not finish a file left by a previous run", "path", r.Current, "err", r.Err)
		} else {
			log.Info("finished a file left by a previous run", "path", r.Path, "flows", r.Result.Summary.Total.Flows)
		}
	}
	srv, err := server.New(server.Config{
		StateFile:     f.stateFile,
		Listen:        listen,
		Handler:       server.HandlerConfig{Sink: sink, Allow: allow, Limits: wire.Limits{MaxTemplates: f.maxTemplates}, HoldTime: f.holdTime},
		Workers:       f.workers,
		FlushInterval: f.flushInterval,
		ReceiveBuffer: f.rcvbuf,
	})
	if err != nil {
		sink.Close()
		return err
	}
	stopShipper := startShipper(e, sh, f.ch.urls, f.ch.cluster)
	defer stopShipper() // on early returns; a no-op after the call below
	if f.metricsAddr != "" {
		metrics := []promtext.Collector{server.NewMetrics(srv)}
		if sh != nil {
			metrics = append(metrics, shipper.NewMetrics(sh))
		}
		stopMetrics, err := serveMetrics(e.ctx, f.metricsAddr, log, nil, metrics...)
		if err != nil {
			sink.Close()
			return err
		}
		defer stopMetrics()
	}
	stopWeb, err := f.web.serveNext(e.ctx, log, f.dir, f.prefix, true)
	if err != nil {
		sink.Close()
		return err
	}
	defer stopWeb()
	if f.readyFile != "" {
		if err := writeReadyFile(f.readyFile, srv.Addrs()); err != nil {
			sink.Close()
			return err
		}
	}
	log.Info("kflow collector starting", "version", version, "listen", strings.Join(srv.Addrs(), ","), "dir", f.dir,
		"sources", len(sources), "interval", f.interval, "layout", layout.String())
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		logStats(ctx, log, srv, f.statsInterval)
	}()
	writesDone := make(chan struct{})
	go func() {
		defer close(writesDone)
		logWrites(ctx, log, srv, f.flushInterval)
	}()
	runErr := srv.Run(ctx)
	cancel()
	<-logDone
	<-writesDone
	if f.memProfile != "" {
		if err := writeHeapProfile(f.memProfile); err != nil {
			log.Warn("heap profile", "err", err)
		}
	}
	closeErr := sink.Close()
	stopShipper()
	st := srv.Stats()
	tot := st.Totals()
	log.Info("kflow collector stopped", "packets", tot.Packets, "records", tot.Records, "decode_errors", sumMap(tot.DecodeErrors),
		"sequence_gaps", tot.SequenceGaps, "held_dropped", tot.HeldDropped, "kernel_drops", kernelDrops(st), "files", st.Files.Files)
	if e.json {
		if err := e.printJSON(st); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("close flow files: %w", closeErr)
	}
	return nil
}

// writeHeapProfile writes the heap profile to path, after a garbage
// collection (so that it counts every allocation).
func writeHeapProfile(path string) error {
	runtime.GC()
	pf, err := os.Create(path)
	if err != nil {
		return err
	}
	err = pprof.WriteHeapProfile(pf)
	if cerr := pf.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeReadyFile(path string, addrs []string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

func sumMap[K comparable](m map[K]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func kernelDrops(st server.Stats) uint64 {
	var n uint64
	for _, l := range st.Listeners {
		n += l.KernelDrops
	}
	return n
}

// logWrites says, whatever --stats-interval, when the flow files stop
// taking records (a full disk: the records stay in memory, up to a bound,
// and what is past it is dropped and counted) and when they take them
// again. It looks at the flush counters once per flush interval.
func logWrites(ctx context.Context, log interface {
	Error(string, ...any)
	Info(string, ...any)
}, srv *server.Server, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastFlushes, lastFails, lastRefused, lastPackets, droppedSince, lastRestart uint64
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := srv.Stats()
		tot := st.Totals()
		refused, packets := tot.StoreErrors+st.Files.LostRecords, tot.StoreErrorPackets+st.Files.LostPackets
		switch {
		case st.FlushErrors != lastFails && !failing:
			failing, droppedSince = true, refused
			log.Error("cannot write the flow files: records are kept in memory and retried; past the bound they are dropped and counted",
				"err", st.LastFlushError)
		case st.FlushErrors == lastFails && st.Flushes != lastFlushes && failing:
			failing = false
			log.Info("writing the flow files again", "records_dropped", refused-droppedSince)
		}
		if refused != lastRefused {
			log.Error("flow records dropped: the flow files cannot take them", "records", refused-lastRefused,
				"packets", packets-lastPackets, "err", st.LastFlushError)
		}
		if tot.RestartLost != lastRestart {
			log.Error("exporters' sequence numbers say records were lost across the restart: sent while the collector was down, or received and not flushed when it ended",
				"lost", tot.RestartLost-lastRestart)
			lastRestart = tot.RestartLost
		}
		lastFlushes, lastFails, lastRefused, lastPackets = st.Flushes, st.FlushErrors, refused, packets
	}
}

// logStats logs, at most once per interval, what went wrong since the last
// time: the library counts per-packet problems, the log stays readable.
func logStats(ctx context.Context, log interface {
	Warn(string, ...any)
}, srv *server.Server, every time.Duration) {
	if every <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	type seen struct{ errs, gaps, held, store uint64 }
	last := map[string]seen{}
	var lastDrops, lastNotAllowed uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := srv.Stats()
		for _, x := range st.Exporters {
			k := x.Transport + " " + x.Exporter.String()
			now := seen{sumMap(x.DecodeErrors), x.SequenceGaps, x.HeldDropped, x.StoreErrors}
			if p := last[k]; now != p {
				log.Warn("exporter problems", "exporter", x.Exporter, "transport", x.Transport,
					"decode_errors", now.errs-p.errs, "sequence_gaps", now.gaps-p.gaps,
					"held_dropped", now.held-p.held, "store_errors", now.store-p.store, "last_error", x.LastError)
			}
			last[k] = now
		}
		if d := kernelDrops(st); d != lastDrops {
			log.Warn("kernel dropped datagrams: socket receive buffer full", "drops", d-lastDrops)
			lastDrops = d
		}
		if st.NotAllowed != lastNotAllowed {
			log.Warn("messages from exporters outside --allow ignored", "count", st.NotAllowed-lastNotAllowed)
			lastNotAllowed = st.NotAllowed
		}
	}
}
