// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/server"
)

// Limits of the -x runner: commands run at most execWorkers at a time;
// past execQueue waiting, a finished file's command is dropped and logged.
const (
	execWorkers = 2
	execQueue   = 64
	execOutput  = 2048 // bytes of a failed command's output logged
)

// rotateExec runs nfcapd's -x command after each finished flow file. The
// rotator's background goroutine hands the file over without waiting: the
// commands run on goroutines of their own, never on the receive path.
type rotateExec struct {
	tmpl     string
	interval time.Duration
	log      *slog.Logger
	jobs     chan string
	wg       sync.WaitGroup
	once     sync.Once
}

func newRotateExec(tmpl string, interval time.Duration, log *slog.Logger) *rotateExec {
	x := &rotateExec{tmpl: tmpl, interval: interval, log: log, jobs: make(chan string, execQueue)}
	for range execWorkers {
		x.wg.Add(1)
		go func() {
			defer x.wg.Done()
			for cmd := range x.jobs {
				x.run(cmd)
			}
		}()
	}
	return x
}

// expandExec substitutes nfcapd's place holders in tmpl: %d the top
// directory, %f the file relative to it, %t the slot as YYYYMMddhhmm (with
// seconds for intervals under a minute), %u the slot in unix seconds, %i
// the ident, %% a percent sign. Others are left as they are.
func expandExec(tmpl, dir, path, ident string, slot time.Time, interval time.Duration) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		rel = path
	}
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' || i+1 == len(tmpl) {
			b.WriteByte(c)
			continue
		}
		i++
		switch tmpl[i] {
		case 'd':
			b.WriteString(dir)
		case 'f':
			b.WriteString(rel)
		case 't':
			b.WriteString(flowfile.Stamp(slot, interval))
		case 'u':
			b.WriteString(strconv.FormatInt(slot.Unix(), 10))
		case 'i':
			b.WriteString(ident)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(tmpl[i])
		}
	}
	return b.String()
}

// fileDone queues the command for a finished file; it never blocks.
func (x *rotateExec) fileDone(ev server.FileEvent) {
	cmd := expandExec(x.tmpl, ev.Dir, ev.Path, ev.Ident, ev.Slot, x.interval)
	select {
	case x.jobs <- cmd:
	default:
		x.log.Warn("-x command not run: too many still waiting", "command", cmd, "waiting", execQueue)
	}
}

func (x *rotateExec) run(cmd string) {
	var out bytes.Buffer
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	if err != nil {
		tail := out.Bytes()
		if len(tail) > execOutput {
			tail = tail[len(tail)-execOutput:]
		}
		x.log.Warn("-x command failed", "command", cmd, "err", err, "output", string(tail))
		return
	}
	x.log.Debug("-x command done", "command", cmd, "duration", time.Since(start))
}

// close stops taking commands and waits at most d for those queued and
// running; past d it returns and logs that some are still running.
func (x *rotateExec) close(d time.Duration) {
	x.once.Do(func() { close(x.jobs) })
	done := make(chan struct{})
	go func() {
		x.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		x.log.Warn("-x commands still running at exit: not waited for", "waited", d)
	}
}
