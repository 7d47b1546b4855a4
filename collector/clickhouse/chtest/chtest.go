// SPDX-License-Identifier: Apache-2.0

// Package chtest starts real clickhouse-server processes for tests: each
// with a private configuration, data directory and logs under a temporary
// directory, listening on free loopback ports, never the system service.
// One server (Start, or Shared for a whole test binary) or two shards
// with a cluster definition for Distributed tables (StartCluster).
package chtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// Binary is where Debian's clickhouse-server package installs the server.
const Binary = "/usr/sbin/clickhouse-server"

// startTimeout bounds the wait for a server to answer: a hang guard only
// (a server starts in well under a second here).
const startTimeout = 60 * time.Second

// Options configure a server.
type Options struct {
	// Password of the default user (empty: none).
	Password string
	// Cluster names the remote_servers cluster StartCluster defines.
	Cluster string
	// NS runs the server inside a network namespace (ip netns exec), for
	// daemons there to reach on its loopback; the server is asked whether
	// it is up from inside it too. Nil: the caller's namespace.
	NS *testenv.NS
	// shards are the TCP ports of the cluster's shards.
	shards []int
}

// Server is a running clickhouse-server.
type Server struct {
	Dir      string // holds config.xml, users.xml, data/, log/
	HTTPPort int
	TCPPort  int
	opts     Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// ports are the server's ports (HTTP, TCP, interserver); held keeps
	// them bound while the server is stopped, so that a test's other
	// listeners on ephemeral ports cannot take them before it restarts.
	ports []int
	held  []net.Listener
	// StartTime is how long the last start took until SELECT 1 answered.
	StartTime time.Duration
}

// URL returns the server's HTTP endpoint, with the password when one is
// set, and path as the database ("" for none).
func (s *Server) URL(database string) string {
	u := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", s.HTTPPort), Path: "/" + database}
	if s.opts.Password != "" {
		u.User = url.UserPassword("default", s.opts.Password)
	}
	return u.String()
}

// Require returns the server binary's path, skipping the test (or failing
// it with KFLOW_REQUIRE_PRIVILEGED=1) when it is not installed.
func Require(tb testing.TB) string {
	tb.Helper()
	return testenv.RequireTool(tb, Binary)
}

// Start starts a server for the test and stops it (by its PID) when the
// test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	Require(tb)
	s, err := start(tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Kill() })
	return s
}

// StartCluster starts two servers, each defining the cluster name with
// both as its shards (one replica each), so that a Distributed table on
// either reaches both. They are stopped when the test ends.
func StartCluster(tb testing.TB, name string) [2]*Server {
	tb.Helper()
	Require(tb)
	var out [2]*Server
	var err error
	for try := 0; try < 3; try++ {
		var ports []int
		if ports, err = freePorts(6); err != nil {
			tb.Fatal(err)
		}
		opts := Options{Cluster: name, shards: []int{ports[1], ports[4]}}
		var dirs [2]string
		for i := range dirs {
			dirs[i] = filepath.Join(tb.TempDir(), fmt.Sprintf("shard%d", i+1))
		}
		out[0], err = startOn(dirs[0], opts, ports[0:3])
		if err != nil {
			continue
		}
		out[1], err = startOn(dirs[1], opts, ports[3:6])
		if err != nil {
			out[0].Kill()
			continue
		}
		break
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		out[0].Kill()
		out[1].Kill()
	})
	return out
}

var shared struct {
	mu  sync.Mutex
	dir string
	s   *Server
	err error
}

// Shared returns a server shared by every test of the test binary, started
// on first use. TestMain calls StopShared after the tests.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	Require(tb)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "kflow-clickhouse-")
		if shared.err == nil {
			shared.s, shared.err = start(shared.dir, Options{})
		}
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.s
}

// StopShared stops the shared server, if one was started, and removes its
// directory.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		shared.s.Kill()
		shared.s = nil
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
		shared.dir = ""
	}
}

// StartIn starts a server whose configuration and data live in dir and
// are kept when it stops, for tools that reuse what they loaded (the
// benchmarks). The caller stops it.
func StartIn(dir string) (*Server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return startOn(dir, Options{}, ports)
}

// StartWith starts a server with opts whose configuration and data live
// in dir (kept when it stops), on free ports. The caller stops it.
func StartWith(dir string, opts Options) (*Server, error) { return start(dir, opts) }

// start starts a server in dir on free ports, trying new ports when one
// was taken meanwhile.
func start(dir string, opts Options) (*Server, error) {
	var err error
	for try := 0; try < 3; try++ {
		var ports []int
		if ports, err = freePorts(3); err != nil {
			return nil, err
		}
		var s *Server
		if s, err = startOn(filepath.Join(dir, fmt.Sprintf("ch%d", try)), opts, ports); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// freePorts returns n distinct loopback TCP ports free at the time of the
// call.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startOn writes the configuration for ports (HTTP, TCP, interserver) into
// dir and starts the server.
func startOn(dir string, opts Options, ports []int) (*Server, error) {
	s := &Server{Dir: dir, HTTPPort: ports[0], TCPPort: ports[1], opts: opts, ports: ports}
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("clickhouse test server: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(s.config(ports[2])), 0o644); err != nil {
		return nil, fmt.Errorf("clickhouse test server: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(usersXML(opts.Password)), 0o644); err != nil {
		return nil, fmt.Errorf("clickhouse test server: %w", err)
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) config(interserver int) string {
	p := func(sub string) string { return filepath.Join(s.Dir, sub) + "/" }
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>%[1]slog/server.log</log>
    <errorlog>%[1]slog/error.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>%[2]d</http_port>
  <tcp_port>%[3]d</tcp_port>
  <interserver_http_port>%[4]d</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>%[5]s</path>
  <tmp_path>%[6]s</tmp_path>
  <user_files_path>%[7]s</user_files_path>
  <format_schema_path>%[8]s</format_schema_path>
  <users_config>%[1]susers.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <!-- A graceful stop waits for idle keep-alive connections: keep them short. -->
  <keep_alive_timeout>1</keep_alive_timeout>
  <mlock_executable>false</mlock_executable>
`, s.Dir+"/", s.HTTPPort, s.TCPPort, interserver, p("data"), p("tmp"), p("user_files"), p("format_schemas"))
	if s.opts.Cluster != "" {
		fmt.Fprintf(&b, "  <remote_servers>\n    <%s>\n", s.opts.Cluster)
		for _, port := range s.opts.shards {
			fmt.Fprintf(&b, "      <shard><replica><host>127.0.0.1</host><port>%d</port>", port)
			if s.opts.Password != "" {
				fmt.Fprintf(&b, "<user>default</user><password>%s</password>", s.opts.Password)
			}
			b.WriteString("</replica></shard>\n")
		}
		fmt.Fprintf(&b, "    </%s>\n  </remote_servers>\n", s.opts.Cluster)
	}
	b.WriteString("</yandex>\n")
	return b.String()
}

func usersXML(password string) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
    </default>
    <readonly>
      <readonly>1</readonly>
    </readonly>
  </profiles>
  <users>
    <default>
      <password>%s</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`, password)
}

// Start starts the server (again, after Stop or Kill, on the same
// configuration and data) and waits until it answers SELECT 1.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("clickhouse test server: already running")
	}
	for _, l := range s.held {
		l.Close()
	}
	s.held = nil
	out, err := os.OpenFile(filepath.Join(s.Dir, "log", "stdout.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("clickhouse test server: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(Binary, "--config-file="+filepath.Join(s.Dir, "config.xml"))
	if s.opts.NS != nil {
		// ip netns exec execs the server in place: the PID is its own.
		cmd = exec.Command("ip", "netns", "exec", s.opts.NS.Name, Binary, "--config-file="+filepath.Join(s.Dir, "config.xml"))
	}
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a ^C on the test does not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clickhouse test server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := began.Add(startTimeout)
	for {
		if s.ping() == nil {
			s.StartTime = time.Since(began)
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("clickhouse test server exited at start: %s", s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd = nil
			return fmt.Errorf("clickhouse test server did not answer within %v: %s", startTimeout, s.logTail())
		}
	}
}

func (s *Server) ping() error {
	c := s.HTTPClient(time.Second)
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/?query=SELECT%%201", s.HTTPPort), nil)
	if err != nil {
		return err
	}
	if s.opts.Password != "" {
		req.SetBasicAuth("default", s.opts.Password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "1" {
		return fmt.Errorf("ping: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// HTTPClient returns a client that reaches the server: one whose
// connections are made inside the server's network namespace when it
// runs in one.
func (s *Server) HTTPClient(timeout time.Duration) *http.Client {
	if s.opts.NS == nil {
		return &http.Client{Timeout: timeout}
	}
	ns := s.opts.NS
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dial}}
}

// logTail returns the end of the server's error log and output.
func (s *Server) logTail() string {
	var parts []string
	for _, f := range []string{"error.log", "stdout.log"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "log", f))
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		if len(b) > 0 {
			parts = append(parts, f+": "+string(b))
		}
	}
	return strings.Join(parts, "\n")
}

// PID is the running server's process id (0 when it is not running).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop ends the server with SIGTERM (by its PID) and waits for it, killing
// it after the hang guard.
func (s *Server) Stop() error { return s.end(syscall.SIGTERM) }

// Kill ends the server with SIGKILL (by its PID), as a crash would.
func (s *Server) Kill() { _ = s.end(syscall.SIGKILL) }

// hold binds the stopped server's loopback ports until it starts again
// (the ports of a server in a namespace are not the host's).
func (s *Server) hold() {
	if s.opts.NS != nil {
		return
	}
	for _, p := range s.ports {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			s.held = append(s.held, l)
		}
	}
}

func (s *Server) end(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	defer func() {
		s.cmd = nil
		s.hold()
	}()
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("stop clickhouse test server (pid %d): %w", s.cmd.Process.Pid, err)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(startTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("clickhouse test server (pid %d) did not stop within %v: killed", s.cmd.Process.Pid, startTimeout)
	}
}
