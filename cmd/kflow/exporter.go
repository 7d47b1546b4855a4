// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/bpf/pcapfilter"
	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/shipper"
	"github.com/kflow-dev/kflow/exporter/agent"
	"github.com/kflow-dev/kflow/exporter/cache"
	"github.com/kflow-dev/kflow/exporter/promtext"
	"github.com/kflow-dev/kflow/exporter/transport"
)

// exporterFlags are the options of "kflow exporter run".
type exporterFlags struct {
	collectors    []string
	interfaces    []string
	hook          string
	drainInterval time.Duration
	idle, active  time.Duration
	endGrace      time.Duration
	cacheFlows    int
	mapEntries    uint32
	kernelCache   uint32
	ringBytes     uint32
	valueMode     string
	timestamps    string
	sampling      uint32
	samplingHow   string
	filter        string
	biflow        bool
	cgroups       bool
	domain        uint32
	mtu           int
	tplRefresh    time.Duration
	pinDir        string
	keepAttached  bool
	readyFile     string
	metricsAddr   string
	ipfixSeq      string
	keepCaps      bool
	dir           string
	interval      time.Duration
	layout        string
	maxAge        time.Duration
	maxSize       string
	web           webFlags
	ch            clickhouseFlags
	// fs is the flag set register filled, to tell set options from defaults.
	fs *pflag.FlagSet
}

func (f *exporterFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringArrayVarP(&f.collectors, "collector", "c", nil, "send records to `URL` (ipfix://, ipfix+tcp://, nfv9://, nfv5://HOST[:PORT]); repeatable")
	fs.StringSliceVarP(&f.interfaces, "interface", "i", nil, "observe interfaces by `NAME` or glob (eth*); repeatable; default: every up interface but loopback")
	fs.StringVar(&f.hook, "hook", "auto", "attach with `HOOK`: tcx, tc, xdp (ingress; egress via tc/tcx) or auto (tcx if the kernel has it, else tc)")
	fs.DurationVar(&f.drainInterval, "drain-interval", agent.DefaultDrainInterval, "how often to drain the kernel flow maps")
	fs.DurationVar(&f.idle, "idle-timeout", cache.DefaultIdleTimeout, "end a flow after this long without packets")
	fs.DurationVar(&f.active, "active-timeout", cache.DefaultActiveTimeout, "report a long flow every this long")
	fs.DurationVar(&f.endGrace, "end-grace", 0, "keep a TCP flow this long after FIN/RST for its last ACKs (default: 2s, or the idle timeout if shorter)")
	fs.IntVar(&f.cacheFlows, "cache-flows", cache.DefaultMaxFlows, "maximum flows in the flow cache")
	fs.Uint32Var(&f.mapEntries, "map-entries", bpf.DefaultMapEntries, "capacity of each kernel flow map (an IPv4 and an IPv6 map, each with a spare for the drain)")
	fs.Uint32Var(&f.kernelCache, "kernel-cache-slots", bpf.DefaultCacheEntries, "slots of each of the kernel's per-CPU flow caches (IPv4, IPv6) in front of the flow maps (power of two; 0: no cache)")
	fs.Uint32Var(&f.ringBytes, "ring-buffer-bytes", bpf.DefaultRingBufferBytes, "size of the map-full fallback ring buffer (power of two)")
	fs.StringVar(&f.valueMode, "map-values", "shared", "kernel flow values: shared (atomic adds) or percpu")
	fs.StringVar(&f.timestamps, "timestamps", "tick", "packet timestamps: tick (kernel tick resolution, free) or precise (nanoseconds, costs per packet)")
	fs.Uint32Var(&f.sampling, "sampling", 1, "count one packet in `N` (1: every packet)")
	fs.StringVar(&f.samplingHow, "sampling-method", "random", "with --sampling N: random (each packet with probability 1/N) or count (every Nth packet of each CPU); exports announce which")
	fs.BoolVar(&f.biflow, "biflow", false, "pair the two directions of each connection into RFC 5103 biflow records (IPFIX collectors only)")
	fs.BoolVar(&f.cgroups, "cgroups", true, "attribute the flows of local sockets to their cgroup (systemd unit, container, pod): --cgroups=false turns it off")
	fs.StringVar(&f.filter, "filter", "", "count only the IP packets this tcpdump `EXPR` accepts (host, net, port, portrange, proto, tcp, udp, icmp, ip6, vlan, and/or/not); the others are counted per interface as filtered")
	fs.Uint32Var(&f.domain, "observation-domain", 0, "IPFIX observation domain id / NetFlow v9 source id")
	fs.StringVar(&f.ipfixSeq, "ipfix-sequence", "flows", "IPFIX sequence numbers count `flows` (flow records, what nfdump checks) or all (options records too, RFC 7011's wording)")
	fs.IntVar(&f.mtu, "mtu", 1400, "maximum export message size (UDP payload bytes)")
	fs.DurationVar(&f.tplRefresh, "template-refresh", 600*time.Second, "resend templates over UDP this often")
	fs.StringVar(&f.pinDir, "pin-dir", bpf.DefaultPinDir, "bpffs `DIR` to pin maps and links in (\"\" disables pinning and restart adoption)")
	fs.BoolVar(&f.keepAttached, "keep-attached", false, "on exit leave the programs attached and pinned for the next exporter (SIGHUP does this too)")
	fs.StringVar(&f.readyFile, "ready-file", "", "write this `FILE` once attached and exporting")
	fs.BoolVar(&f.keepCaps, "keep-capabilities", false, "do not drop capabilities once attached (by default only CAP_BPF and CAP_NET_ADMIN are kept, to attach new interfaces)")
	fs.StringVar(&f.metricsAddr, "metrics-address", "", "serve Prometheus metrics at http://`ADDR`/metrics and the live flows (kflow flow list) at /flows (e.g. 127.0.0.1:9273)")
	fs.StringVarP(&f.dir, "dir", "d", "/var/lib/kflow/flows", "with no --collector, write flow files under `DIR` (embedded collector)")
	fs.DurationVar(&f.interval, "rotate", 300*time.Second, "with no --collector, start a new flow file this often, aligned to the clock")
	fs.StringVar(&f.layout, "layout", "0", "with no --collector, subdirectory layout: nfcapd's -S number (1: %Y/%m/%d ...)")
	fs.Var(ageValue{&f.maxAge}, "max-age", "with no --collector, at each rotation remove files older than this (12h, 30d, 2w; 0: keep)")
	fs.StringVar(&f.maxSize, "max-size", "", "with no --collector, at each rotation remove the oldest files past this total `SIZE` (500M, 10G)")
	f.web.register(fs, "web-")
	f.ch.register(fs, "the flow files written with no --collector")
}

func (f *exporterFlags) config(e *env) (agent.Config, error) {
	var cfg agent.Config
	for _, c := range f.collectors {
		t, err := transport.ParseTarget(c)
		if err != nil {
			return cfg, fmt.Errorf("%w: --collector %v", errUsage, err)
		}
		cfg.Collectors = append(cfg.Collectors, t)
	}
	hook, err := bpf.ParseHook(f.hook)
	if err != nil {
		return cfg, fmt.Errorf("%w: --hook: %v", errUsage, err)
	}
	var shared bool
	switch f.valueMode {
	case "shared":
		shared = true
	case "percpu":
	default:
		return cfg, fmt.Errorf("%w: --map-values %q: want shared or percpu", errUsage, f.valueMode)
	}
	var precise bool
	switch f.timestamps {
	case "tick":
	case "precise":
		precise = true
	default:
		return cfg, fmt.Errorf("%w: --timestamps %q: want tick or precise", errUsage, f.timestamps)
	}
	if f.keepAttached && f.pinDir == "" {
		return cfg, fmt.Errorf("%w: --keep-attached needs a --pin-dir", errUsage)
	}
	var count bool
	switch f.samplingHow {
	case "random":
	case "count":
		count = true
	default:
		return cfg, fmt.Errorf("%w: --sampling-method %q: want random or count", errUsage, f.samplingHow)
	}
	if _, err := pcapfilter.Compile(f.filter); err != nil {
		return cfg, querycli.FilterError(err)
	}
	cfg.Datapath = bpf.Config{MapEntries: f.mapEntries, RingBufferBytes: f.ringBytes, Sampling: f.sampling,
		SamplingCount: count, PerCPUValues: !shared, PreciseTime: precise, PinDir: f.pinDir, Filter: f.filter,
		Cgroups: f.cgroups, CacheEntries: f.kernelCache, NoCache: f.kernelCache == 0}
	cfg.Hook = hook
	cfg.Interfaces = f.interfaces
	cfg.DrainInterval = f.drainInterval
	// An unset --end-grace leaves the cache's default, which shrinks to a
	// shorter --idle-timeout instead of refusing it.
	endGrace := f.endGrace
	if f.fs == nil || !f.fs.Changed("end-grace") {
		endGrace = 0
	}
	cfg.Cache = cache.Config{IdleTimeout: f.idle, ActiveTimeout: f.active, EndGrace: endGrace, MaxFlows: f.cacheFlows}
	cfg.ObservationDomain = f.domain
	cfg.Biflow = f.biflow
	for _, t := range cfg.Collectors {
		if f.biflow && t.Format != transport.IPFIX {
			return cfg, fmt.Errorf("%w: --biflow with collector %s: biflows (RFC 5103) exist in IPFIX only; NetFlow v9 and v5 have no reverse elements", errUsage, t)
		}
	}
	switch f.ipfixSeq {
	case "flows":
	case "all":
		cfg.IPFIXSequenceAll = true
	default:
		return cfg, fmt.Errorf("%w: --ipfix-sequence %q: want flows or all", errUsage, f.ipfixSeq)
	}
	cfg.MTU = f.mtu
	cfg.TemplateRefresh = f.tplRefresh
	cfg.ReadyFile = f.readyFile
	cfg.Logger = e.log
	return cfg, nil
}

func exporterRunCmd() *command {
	f := &exporterFlags{}
	return &command{
		name:    "run",
		summary: "count every packet on the chosen interfaces in the kernel and export flow records",
		usage:   "",
		flags:   f.register,
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			cfg, err := f.config(e)
			if err != nil {
				return err
			}
			var sh *shipper.Shipper
			if len(cfg.Collectors) > 0 && len(f.ch.urls) > 0 {
				return fmt.Errorf("%w: --clickhouse ships the embedded collector's files: it needs no --collector", errUsage)
			}
			if len(cfg.Collectors) == 0 {
				layout, err := flowfile.ParseLayout(f.layout)
				if err != nil {
					return fmt.Errorf("%w: --layout: %v", errUsage, err)
				}
				maxBytes, err := parseSize(f.maxSize)
				if err != nil {
					return fmt.Errorf("%w: --max-size: %v", errUsage, err)
				}
				if err := os.MkdirAll(f.dir, 0o750); err != nil {
					return fmt.Errorf("flow file directory: %w", err)
				}
				if sh, err = f.ch.newShipper(e, f.dir, nil, flowfile.DefaultPrefix, time.Local); err != nil {
					return err
				}
				sink, err := agent.NewFileSink(flowfile.RotatorOptions{Dir: f.dir, Interval: f.interval, Layout: layout,
					MaxAge: f.maxAge, MaxBytes: maxBytes, Expiring: expiring(sh),
					OnClose: func(cf flowfile.ClosedFile) {
						if cf.Err != nil {
							e.log.Error("finish flow file", "path", cf.Path, "err", cf.Err)
						}
						for _, x := range cf.Expired {
							e.log.Info("flow file expired", "path", x.Path, "size", x.Size)
						}
						if cf.ExpireErr != nil {
							e.log.Warn("retention", "err", cf.ExpireErr)
						}
					}})
				if err != nil {
					return err
				}
				cfg.Sink = sink
				e.log.Info("no --collector: writing flow files locally", "dir", f.dir, "rotate", f.interval)
			}
			if f.pinDir != "" {
				if err := bpf.EnsureBPFFS(f.pinDir); err != nil {
					return err
				}
			}
			if !f.keepCaps {
				cfg.OnAttached = func() error {
					dropped, err := keepOnlyCaps(unix.CAP_BPF, unix.CAP_NET_ADMIN)
					if err != nil {
						e.log.Warn("could not drop capabilities; running with all of them", "err", err)
						return nil
					}
					e.log.Info("dropped capabilities no longer needed", "dropped", capList(dropped), "kept", "CAP_BPF,CAP_NET_ADMIN")
					return nil
				}
			}
			a, err := agent.New(e.ctx, cfg)
			if err != nil {
				var ve *bpf.VerifierError
				if errors.As(err, &ve) {
					e.log.Debug("verifier log", "program", ve.Program, "tail", strings.Join(ve.Tail(40), "\n"))
				}
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			go func() {
				select {
				case <-hup:
					e.log.Info("SIGHUP: stopping and leaving the programs attached for the next exporter")
					a.KeepAttached()
					cancel()
				case <-ctx.Done():
				}
			}()
			if f.keepAttached {
				a.KeepAttached()
			}
			stopShipper := startShipper(e, sh, f.ch.urls, f.ch.cluster)
			defer stopShipper() // after a.Run closed the files
			if f.metricsAddr != "" {
				metrics := []promtext.Collector{agent.NewMetrics(a)}
				if sh != nil {
					metrics = append(metrics, shipper.NewMetrics(sh))
				}
				stopMetrics, err := serveMetrics(ctx, f.metricsAddr, e.log, map[string]http.Handler{
					agent.FlowsPath: a.FlowsHandler(), agent.InterfacesPath: a.InterfacesHandler()}, metrics...)
				if err != nil {
					return errors.Join(err, a.Close())
				}
				defer stopMetrics()
			}
			stopWeb, err := f.web.serveNext(ctx, e.log, f.dir, flowfile.DefaultPrefix, len(cfg.Collectors) == 0)
			if err != nil {
				return errors.Join(err, a.Close())
			}
			defer stopWeb()
			var targets []string
			for _, t := range cfg.Collectors {
				targets = append(targets, t.String())
			}
			e.log.Info("kflow exporter starting", "version", version, "collectors", strings.Join(targets, ","), "hook", f.hook)
			err = a.Run(ctx)
			st := a.Stats()
			e.log.Info("kflow exporter stopped", "drains", st.Drains, "records", st.RecordsExported,
				"ignored_packets", st.Datapath.IgnoredPackets, "unparsed_packets", st.Datapath.UnparsedPackets)
			return err
		},
	}
}
