// SPDX-License-Identifier: Apache-2.0

// Command init is PID 1 of vmtest's virtual machines: it mounts the
// kernel file systems, brings loopback up, loads the kernel modules the
// tests need, runs the test binary with its arguments and environment,
// prints the exit marker with the test's status on the console, and powers
// the machine off. It is built static (CGO_ENABLED=0) by vmtest.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/vmtest/internal/guest"
)

func main() {
	status := guest.InitFailed
	nonce := "0"
	defer func() {
		// PID 1 must never return: report, flush and power off.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "vmtest init: panic: %v\n", r)
		}
		fmt.Printf("\n%s\n", guest.ExitMarker(nonce, status))
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		select {}
	}()
	rawConsole()
	cfg, err := readConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtest init: %v\n", err)
		return
	}
	nonce = cfg.Nonce
	if err := setup(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "vmtest init: %v\n", err)
		return
	}
	status = run(cfg)
}

func readConfig() (*guest.Config, error) {
	b, err := os.ReadFile(guest.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("read run config: %w", err)
	}
	var cfg guest.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("parse run config: %w", err)
	}
	if len(cfg.Args) == 0 {
		return nil, errors.New("run config names no test binary")
	}
	return &cfg, nil
}

// rawConsole turns off output post-processing on the console so the
// test's bytes reach the host unchanged (no \n to \r\n).
func rawConsole() {
	t, err := unix.IoctlGetTermios(1, unix.TCGETS)
	if err != nil {
		return
	}
	t.Oflag &^= unix.OPOST
	_ = unix.IoctlSetTermios(1, unix.TCSETS, t)
}

func setup(cfg *guest.Config) error {
	for _, m := range []struct {
		src, dir, fstype, data string
	}{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"bpf", "/sys/fs/bpf", "bpf", "mode=0700"},
		// The cgroup v2 hierarchy: the cgroup attribution tests make
		// cgroups of their own in it.
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", ""},
		// No tmpfs on /tmp: the root (the initramfs) is writable, and
		// the test's package directory may itself be under /tmp (a
		// checkout there): a mount would hide it.
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dir, err)
		}
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	if err := os.MkdirAll("/tmp", 0o1777); err != nil {
		return fmt.Errorf("mkdir /tmp: %w", err)
	}
	if err := os.Chmod("/tmp", 0o1777|os.ModeSticky); err != nil {
		return fmt.Errorf("chmod /tmp: %w", err)
	}
	if err := linkUp("lo"); err != nil {
		return err
	}
	for _, d := range cfg.Dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, path := range cfg.Modules {
		if err := loadModule(path); err != nil {
			return err
		}
	}
	return nil
}

// linkUp sets IFF_UP on an interface of the initial network namespace.
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	params := []byte{0}
	_, _, errno := unix.Syscall(unix.SYS_FINIT_MODULE, f.Fd(), uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 && errno != unix.EEXIST {
		return fmt.Errorf("load module %s: %w", path, errno)
	}
	return nil
}

// run runs the test binary on the console and returns its exit status.
func run(cfg *guest.Config) int {
	if err := os.Chdir(cfg.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "vmtest init: %v\n", err)
		return guest.InitFailed
	}
	cmd := exec.Command(cfg.Args[0], cfg.Args[1:]...)
	cmd.Env = cfg.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	fmt.Printf("\n%s\n", guest.StartMarker(cfg.Nonce))
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(os.Stderr, "vmtest init: test killed by %v after %v\n", ws.Signal(), time.Since(start).Round(time.Millisecond))
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "vmtest init: run %s: %v\n", cfg.Args[0], err)
	return guest.InitFailed
}
