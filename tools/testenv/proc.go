// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Processes for end-to-end tests: the kflow binary built once per test
// binary, and daemons (kflow, third-party collectors) started inside a
// namespace, each ended by its own PID.

var builds struct {
	mu   sync.Mutex
	dir  string
	path map[string]string
}

// KflowBinary builds ./cmd/kflow once per test binary into a temporary
// directory and returns the binary's path. RemoveBuilds deletes it.
func KflowBinary(tb testing.TB) string {
	tb.Helper()
	return Binary(tb, "kflow")
}

// Binary builds the command ./cmd/NAME (kflow, kflow-query) once per test
// binary into a temporary directory and returns the binary's path.
// RemoveBuilds deletes it.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if p, ok := builds.path[name]; ok {
		return p
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "kflow-test-bin-")
		if err != nil {
			tb.Fatal(err)
		}
		builds.dir, builds.path = dir, map[string]string{}
	}
	p := filepath.Join(builds.dir, name)
	// Static, as make build: without cgo, kflow can drop capabilities
	// on every thread.
	cmd := exec.Command("go", "build", "-o", p, "github.com/kflow-dev/kflow/cmd/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v: %s", name, err, out)
	}
	builds.path[name] = p
	return p
}

// RemoveBuilds deletes what Binary built; call it from TestMain.
func RemoveBuilds() {
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
}

// RequireTool returns the path of an outside program a test needs. When
// it is missing the test skips, or fails with KFLOW_REQUIRE_PRIVILEGED=1
// (CI installs every tool the tests use).
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s not found (%v); install it (tools/install-deps.sh) (%s=1)", name, err, RequireEnv)
	}
	tb.Skipf("%s not found: %v (tools/install-deps.sh installs it)", name, err)
	return ""
}

// Proc is a process a test started. Its output (stdout and stderr
// together) is kept in memory.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  LockedBuffer
	done chan struct{}
	err  error // valid once done is closed
}

// LockedBuffer is a bytes.Buffer safe to read while another goroutine
// (a process, a command run in-process) writes it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartIn starts name with args inside the namespace with "ip netns exec",
// which execs the program in place: the PID is the program's own, so
// signals reach it. When the test ends a process still running is killed
// and its output logged.
func StartIn(tb testing.TB, ns *NS, name string, args ...string) *Proc {
	tb.Helper()
	return start(tb, exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...), name, "in "+ns.Name)
}

// StartInE is StartIn for programs that are not tests: the caller ends the
// process (Stop, Kill).
func StartInE(ns *NS, name string, args ...string) (*Proc, error) {
	p, err := launch(exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...), name)
	if err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns.Name, err)
	}
	return p, nil
}

// Kill sends SIGKILL to the process (by its PID) and waits for it to end.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Start starts name with args in the test's own network namespace, for
// daemons that only use loopback. It is ended and logged as StartIn's.
func Start(tb testing.TB, name string, args ...string) *Proc {
	tb.Helper()
	return start(tb, exec.Command(name, args...), name, "")
}

// StartAs is Start with the process running as uid and gid (no
// supplementary groups): a root test dropping to an unprivileged user,
// which leaves the process without any capability.
func StartAs(tb testing.TB, uid, gid uint32, name string, args ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	return start(tb, cmd, name, fmt.Sprintf("as uid %d", uid))
}

func start(tb testing.TB, cmd *exec.Cmd, name, where string) *Proc {
	tb.Helper()
	p, err := launch(cmd, name)
	if err != nil {
		tb.Fatalf("start %s %s: %v", name, where, err)
	}
	tb.Cleanup(func() {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
			tb.Logf("%s (pid %d) was still running at the end of the test: killed; output:\n%s", p.Name, p.PID(), p.Output())
		}
	})
	return p
}

// launch starts cmd with its output kept in memory, in its own process
// group, so a ^C on the caller does not reach it first.
func launch(cmd *exec.Cmd, name string) (*Proc, error) {
	p := &Proc{Name: filepath.Base(name), cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Output returns what the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process by its PID.
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}

// ErrTimeout is returned when a bounded wait runs out.
var ErrTimeout = errors.New("timed out")

// Patience bounds every wait for something that must happen (a daemon
// ready, records stored, a process gone): far longer than anything takes
// on a loaded or emulated machine, so only a hang reaches it. Tests wait
// for the event itself and never assert how long it took.
const Patience = 2 * time.Minute

// Wait waits at most d for the process to end and returns its exit error.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running after %v: %w", p.Name, p.PID(), d, ErrTimeout)
	}
}

// Stop sends sig to the process (by its PID) and waits at most d for it to
// end; past d it kills the process and returns ErrTimeout.
func (p *Proc) Stop(sig os.Signal, d time.Duration) error {
	if p.Exited() {
		return fmt.Errorf("%s (pid %d) had already exited: %v", p.Name, p.PID(), p.err)
	}
	if err := p.Signal(sig); err != nil {
		return err
	}
	err := p.Wait(d)
	if errors.Is(err, ErrTimeout) {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return err
}

// WaitFile waits at most d for path to exist, failing early if p (when not
// nil) exits meanwhile.
func WaitFile(path string, d time.Duration, p *Proc) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s (pid %d) exited before writing %s: %v", p.Name, p.PID(), path, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v: %w", path, d, ErrTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitFor polls cond every 50ms for at most d.
func WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
