// SPDX-License-Identifier: Apache-2.0

// Package server is kflow's bundled collector: a small pipeline of UDP and
// TCP listeners, per-exporter decode sessions (NetFlow v5, v9 and IPFIX,
// detected per message) and a record sink, normally the rotated flow files
// of package flowfile.
//
//	listeners ──► queue per worker ──► Handler (sessions per exporter) ──► RecordSink
//
// Each exporter is decoded by one worker, so its templates need no lock of
// their own. With one worker (the default) a UDP listener decodes what it
// reads itself, under that worker's Handler lock: a queue would only add a
// copy and a thread wake-up per datagram. With more, listeners only read
// and copy. Rotation happens in the sink on the flush tick and never
// stalls the listeners. The package never logs: it counts (Stats) and the
// caller logs.
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/ipfix"
)

// Defaults of Config.
const (
	DefaultFlushInterval = time.Second
	DefaultQueueLen      = 4096
	DefaultMaxConns      = 256
	// drainTime bounds how long a shutdown keeps reading what the sockets
	// already hold.
	drainTime = 200 * time.Millisecond
)

// Config configures a Server.
type Config struct {
	// Listen are the endpoints to open (udp://HOST:PORT, tcp://HOST:PORT).
	Listen []string
	// PacketConns and Listeners are sockets already open (tests, socket
	// activation); the server reads them and closes them at shutdown.
	PacketConns []net.PacketConn
	Listeners   []net.Listener
	// Handler configures decoding and the sink.
	Handler HandlerConfig
	// Workers is the number of decode workers (default 1); an exporter is
	// always decoded by the same one. With one, UDP listeners decode in
	// place and only TCP messages are queued.
	Workers int
	// QueueLen is the number of messages queued per worker (default
	// DefaultQueueLen). A full queue (or, with one worker, a busy decoder)
	// blocks the listeners, so the kernel socket buffer fills and its
	// drops are counted.
	QueueLen int
	// FlushInterval is how often the sink is flushed and rotated (default
	// DefaultFlushInterval).
	FlushInterval time.Duration
	// ReceiveBuffer is the UDP receive buffer size to ask for (default
	// DefaultReceiveBuffer; negative leaves the system default).
	ReceiveBuffer int
	// MaxConns bounds concurrent TCP connections (default DefaultMaxConns).
	MaxConns int
	// StateFile, if set, is where each flush records the sequence state
	// of every UDP exporter as of the records it made durable; a server
	// started with the file counts, per exporter, what the sequence
	// numbers say it missed since (ExporterStats.RestartLost).
	StateFile string
}

type item struct {
	src    Source
	b      []byte
	at     time.Time
	closed bool  // the TCP connection ended
	err    error // why, when not a clean end
}

// Server receives flow messages and stores their records.
type Server struct {
	cfg       Config
	seed      maphash.Seed
	handlers  []*Handler
	queues    []chan item
	listeners []*listener
	allow     *Handler // for the listeners' allow check (read-only)

	notAllowed  atomic.Uint64
	flushErrors atomic.Uint64
	flushes     atomic.Uint64
	// restored are the sequence states of the previous run (StateFile).
	restored  *restored
	seqBuf    []SeqState
	sessBuf   []SavedSession
	lastFlush atomic.Value // string: last flush error

	connMu  sync.Mutex
	conns   map[net.Conn]struct{}
	connSeq atomic.Uint64

	mu   sync.Mutex
	errs []error
	ran  bool
}

// New opens the listening sockets (so that an address in use fails here)
// and returns a server ready to Run.
func New(cfg Config) (*Server, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.ReceiveBuffer == 0 {
		cfg.ReceiveBuffer = DefaultReceiveBuffer
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	s := &Server{cfg: cfg, seed: maphash.MakeSeed(), conns: make(map[net.Conn]struct{})}
	if cfg.StateFile != "" {
		r, err := readState(cfg.StateFile)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.restored = r
	}
	for range cfg.Workers {
		h, err := NewHandler(cfg.Handler)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		h.restored = s.restored
		s.handlers = append(s.handlers, h)
		s.queues = append(s.queues, make(chan item, cfg.QueueLen))
	}
	s.allow = s.handlers[0]
	fail := func(err error) (*Server, error) {
		s.closeSockets()
		return nil, fmt.Errorf("server: %w", err)
	}
	for _, l := range cfg.Listen {
		ep, err := ParseEndpoint(l)
		if err != nil {
			return fail(err)
		}
		switch ep.Network {
		case "udp":
			c, err := listenUDP(context.Background(), ep.Addr, cfg.ReceiveBuffer)
			if err != nil {
				return fail(err)
			}
			s.listeners = append(s.listeners, &listener{name: listenerName("udp", c.LocalAddr()), pc: c})
		case "tcp":
			ln, err := listenTCP(context.Background(), ep.Addr)
			if err != nil {
				return fail(err)
			}
			s.listeners = append(s.listeners, &listener{name: listenerName("tcp", ln.Addr()), ln: ln})
		}
	}
	for _, pc := range cfg.PacketConns {
		if sc, ok := pc.(syscallConn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				_ = setSockopts(rc, cfg.ReceiveBuffer)
			}
		}
		s.listeners = append(s.listeners, &listener{name: listenerName("udp", pc.LocalAddr()), pc: pc})
	}
	for _, ln := range cfg.Listeners {
		s.listeners = append(s.listeners, &listener{name: listenerName("tcp", ln.Addr()), ln: ln})
	}
	if len(s.listeners) == 0 {
		return nil, errors.New("server: nothing to listen on")
	}
	return s, nil
}

// Addrs returns the bound endpoints, as udp://ADDR:PORT and
// tcp://ADDR:PORT (with the ports the system chose for port 0).
func (s *Server) Addrs() []string {
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.name)
	}
	return out
}

// Handlers returns the decode stage of each worker (tests, benchmarks).
func (s *Server) Handlers() []*Handler { return s.handlers }

func (s *Server) closeSockets() {
	for _, l := range s.listeners {
		if l.pc != nil {
			l.pc.Close()
		}
		if l.ln != nil {
			l.ln.Close()
		}
	}
}

func (s *Server) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

// worker returns the queue of an exporter.
func (s *Server) worker(src Source) int {
	if len(s.queues) == 1 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(s.seed)
	a := src.Addr.Addr().As16()
	h.Write(a[:])
	p := src.Addr.Port()
	h.Write([]byte{byte(p >> 8), byte(p)})
	return int(h.Sum64() % uint64(len(s.queues)))
}

// Run receives until ctx is done, then stops reading (after draining what
// the sockets hold, for at most a fraction of a second), decodes what is
// queued, and flushes the sink. The caller closes the sink.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return errors.New("server: already run")
	}
	s.ran = true
	s.mu.Unlock()

	var workers sync.WaitGroup
	for i, q := range s.queues {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.work(s.handlers[i], q)
		}()
	}
	var readers sync.WaitGroup
	for _, l := range s.listeners {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if l.pc != nil {
				s.readUDP(l)
			} else {
				s.acceptTCP(l, &readers)
			}
		}()
	}
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			s.flush()
			for _, h := range s.handlers {
				h.ExpireHeld(now)
			}
		}
	}
	// Shutdown: read what the sockets already hold, then close them.
	deadline := time.Now().Add(drainTime)
	for _, l := range s.listeners {
		if l.pc != nil {
			_ = l.pc.SetReadDeadline(deadline)
		} else {
			l.ln.Close()
		}
	}
	// A TCP connection is closed only once its socket holds nothing
	// unread (bounded by tcpDrainMax): closing with unread data resets
	// it, and the reset does not acknowledge what was read, so the
	// exporter would count delivered messages as lost. On a slow machine
	// the readers may need longer than drainTime for that.
	for end := time.Now().Add(tcpDrainMax); time.Now().Before(end) && s.tcpUnread() > 0; {
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(drainTime)
	s.connMu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(deadline)
	}
	s.connMu.Unlock()
	readers.Wait()
	s.closeSockets()
	for _, q := range s.queues {
		close(q)
	}
	workers.Wait()
	for _, h := range s.handlers {
		h.DropHeld()
	}
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

func (s *Server) flush() {
	defer s.flushes.Add(1)
	if s.cfg.StateFile != "" {
		s.flushState()
		return
	}
	if err := s.cfg.Handler.Sink.Flush(); err != nil {
		s.flushErrors.Add(1)
		s.lastFlush.Store(err.Error())
	}
}

// flushState flushes with the decoders held, so that the sequence states
// read are exactly those of the records flushed, and then records them
// in the state file (unless the flush failed: the previous states stay,
// and what the records in memory held counts as missed after a crash).
func (s *Server) flushState() {
	for _, h := range s.handlers {
		h.mu.Lock()
	}
	now := time.Now()
	seqs, sess := s.seqBuf[:0], s.sessBuf[:0]
	for _, h := range s.handlers {
		seqs = h.sequences(seqs, now)
		sess = h.sessions(sess, now)
	}
	err := s.cfg.Handler.Sink.Flush()
	for _, h := range s.handlers {
		h.mu.Unlock()
	}
	if err == nil {
		seqs = s.restored.rest(seqs, now)
		sess = s.restored.restSessions(sess, now)
		err = writeState(s.cfg.StateFile, seqs, sess)
	}
	s.seqBuf, s.sessBuf = seqs, sess
	if err != nil {
		s.flushErrors.Add(1)
		s.lastFlush.Store(err.Error())
	}
}

func (s *Server) work(h *Handler, q chan item) {
	for it := range q {
		if it.closed {
			if it.err != nil {
				h.StreamError(it.src, it.err, it.at)
			}
			h.CloseSession(it.src)
			continue
		}
		h.HandlePacket(it.src, it.b, it.at)
	}
}

// udpBatch is the number of datagrams read per recvmmsg(2) call: the
// replayed streams of the benchmarks come in bursts of 32.
const udpBatch = 32

func (s *Server) readUDP(l *listener) {
	if uc, ok := l.pc.(*net.UDPConn); ok {
		if rc, err := uc.SyscallConn(); err == nil {
			s.readUDPBatch(l, rc)
			return
		}
	}
	buf := make([]byte, 1<<16)
	for {
		n, a, err := l.pc.ReadFrom(buf)
		if err != nil {
			if !isClosed(err) {
				s.fail(fmt.Errorf("read %s: %w", l.name, err))
			}
			return
		}
		var from netip.AddrPort
		if ua, ok := a.(*net.UDPAddr); ok {
			from = ua.AddrPort()
		}
		s.deliver(l, from, buf[:n], time.Now())
	}
}

// readUDPBatch reads up to udpBatch datagrams per system call (recvmmsg),
// each with its SO_RXQ_OVFL control message.
func (s *Server) readUDPBatch(l *listener, rc syscall.RawConn) {
	r := newMMsgReader(rc, udpBatch, 1<<16)
	for {
		n, err := r.Read()
		if err != nil {
			if !isClosed(err) {
				s.fail(fmt.Errorf("read %s: %w", l.name, err))
			}
			return
		}
		now := time.Now()
		for i := range n {
			b, from, oob := r.Datagram(i)
			if len(oob) > 0 {
				if d, ok := rxqOvfl(oob); ok {
					l.drops.Store(uint64(d))
				}
			}
			s.deliver(l, from, b, now)
		}
	}
}

// deliver hands a datagram to its exporter's worker. With one worker the
// reader decodes it itself, under the Handler's lock (shared with the
// worker, which decodes TCP messages): a queue would add a copy, a channel
// send and a thread wake-up per datagram, 15-35% of the collector's CPU
// in BenchmarkCollectorReplay. With more, a copy is
// queued for the worker the exporter hashes to. b is only read during the
// call (the Handler clones what it holds), so the caller reuses it.
func (s *Server) deliver(l *listener, from netip.AddrPort, b []byte, at time.Time) {
	l.packets.Add(1)
	if !s.allow.Allowed(from.Addr()) {
		s.notAllowed.Add(1)
		return
	}
	src := Source{Addr: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
	if len(s.handlers) == 1 {
		s.handlers[0].HandlePacket(src, b, at)
		return
	}
	s.queues[s.worker(src)] <- item{src: src, b: append([]byte(nil), b...), at: at}
}

func (s *Server) acceptTCP(l *listener, readers *sync.WaitGroup) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if !isClosed(err) {
				s.fail(fmt.Errorf("accept %s: %w", l.name, err))
			}
			return
		}
		var from netip.AddrPort
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			from = ta.AddrPort()
		}
		s.connMu.Lock()
		full := len(s.conns) >= s.cfg.MaxConns
		if !full && s.allow.Allowed(from.Addr()) {
			s.conns[c] = struct{}{}
		} else {
			full = true
			if !s.allow.Allowed(from.Addr()) {
				s.notAllowed.Add(1)
			}
		}
		s.connMu.Unlock()
		if full {
			l.refused.Add(1)
			c.Close()
			continue
		}
		l.conns.Add(1)
		src := Source{Addr: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), Conn: s.connSeq.Add(1)}
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.readTCP(l, c, src)
		}()
	}
}

func (s *Server) readTCP(l *listener, c net.Conn, src Source) {
	defer func() {
		s.connMu.Lock()
		delete(s.conns, c)
		s.connMu.Unlock()
		c.Close()
	}()
	q := s.queues[s.worker(src)]
	br := bufio.NewReaderSize(c, 1<<16)
	var buf []byte
	for {
		msg, err := ipfix.ReadMessage(br, buf)
		if err != nil {
			var streamErr error
			if !errors.Is(err, io.EOF) && !isClosed(err) {
				streamErr = err
			}
			q <- item{src: src, closed: true, err: streamErr, at: time.Now()}
			return
		}
		buf = msg
		l.packets.Add(1)
		q <- item{src: src, b: append([]byte(nil), msg...), at: time.Now()}
	}
}

// Stats returns a snapshot of every counter.
func (s *Server) Stats() Stats {
	var st Stats
	for _, h := range s.handlers {
		hs := h.Stats()
		st.Exporters = append(st.Exporters, hs.Exporters...)
		st.NotAllowed += hs.NotAllowed
		st.Evicted += hs.Evicted
	}
	sortExporters(st.Exporters)
	st.NotAllowed += s.notAllowed.Load()
	for _, l := range s.listeners {
		st.Listeners = append(st.Listeners, l.stats())
	}
	st.Flushes = s.flushes.Load()
	st.FlushErrors = s.flushErrors.Load()
	if v, ok := s.lastFlush.Load().(string); ok {
		st.LastFlushError = v
	}
	if fs, ok := s.cfg.Handler.Sink.(interface{ Stats() FileStats }); ok {
		st.Files = fs.Stats()
	}
	return st
}

// tcpDrainMax bounds how long a shutdown waits for the TCP connections'
// sockets to be read empty (an exporter that keeps sending keeps them
// full).
const tcpDrainMax = 5 * time.Second

// tcpUnread returns the bytes waiting in the TCP connections' sockets.
func (s *Server) tcpUnread() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	n := 0
	for c := range s.conns {
		sc, ok := c.(syscallConn)
		if !ok {
			continue
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
				n += v
			}
		})
	}
	return n
}

type syscallConn interface {
	SyscallConn() (syscall.RawConn, error)
}
