// SPDX-License-Identifier: Apache-2.0

// Command vmtest runs a Go test binary inside a real kernel under qemu, as
// a "go test -exec" wrapper:
//
//	CGO_ENABLED=0 go test -exec "$PWD/bin/vmtest -kernel 6.1" ./bpf
//
// It fetches the kernel (Debian's cloud kernels, cached between runs under
// $KFLOW_VMTEST_CACHE or ~/.cache/kflow-vmtest), packs the test binary, the
// package's testdata directory, a small init and the kernel modules the
// datapath needs into an initramfs, boots it, streams the test's own output
// (so -v, -run and -json work) and exits with the test's status.
package main

import (
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/tools/vmtest/internal/guest"
)

// defaultModules are what the datapath tests need beyond the cloud
// kernels' built-ins: veth pairs, the clsact qdisc, legacy TC bpf filters.
const defaultModules = "veth,sch_ingress,cls_bpf,act_bpf"

const initPackage = "github.com/kflow-dev/kflow/tools/vmtest/init"

type options struct {
	kernel   string
	modDir   string
	modules  string
	timeout  time.Duration
	memory   int
	cpus     int
	qemu     string
	accel    string
	verbose  bool
	fetch    bool
	bootLog  bool
	args     []string
	workDir  string
	guestBin string
}

func main() {
	var o options
	flag.StringVar(&o.kernel, "kernel", "", "kernel to boot: 6.1 or 6.12 (Debian cloud kernels, fetched and cached), or the path of a bzImage")
	flag.StringVar(&o.modDir, "modules-dir", "", "with a bzImage path: its lib/modules/VERSION directory")
	flag.StringVar(&o.modules, "modules", defaultModules, "kernel modules to load in the guest, comma separated (with their dependencies)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop the VM and fail after this long")
	flag.IntVar(&o.memory, "memory", 1024, "guest memory in MiB")
	flag.IntVar(&o.cpus, "smp", 2, "guest CPUs")
	flag.StringVar(&o.qemu, "qemu", "qemu-system-x86_64", "qemu binary")
	// TCG by default: CI machines are VMs themselves, where /dev/kvm may
	// open but fail (nested virtualisation).
	flag.StringVar(&o.accel, "accel", "tcg", "qemu accelerator: tcg, or kvm where /dev/kvm works")
	flag.BoolVar(&o.verbose, "verbose", false, "report the kernel and timings on stderr")
	flag.BoolVar(&o.fetch, "fetch", false, "only fetch the kernel into the cache, run nothing")
	flag.BoolVar(&o.bootLog, "boot-log", false, "print the guest console before the test starts on stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: vmtest -kernel 6.1|6.12|BZIMAGE [flags] TEST-BINARY [ARGS...]\n"+
			"  as go test's wrapper: CGO_ENABLED=0 go test -exec \"vmtest -kernel 6.1\" ./bpf\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.args = flag.Args()
	status, err := run(&o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: %v\n", err)
		if status == 0 {
			status = 1
		}
	}
	os.Exit(status)
}

func run(o *options) (int, error) {
	if o.kernel == "" {
		flag.Usage()
		return 2, errors.New("-kernel is required")
	}
	k, err := findKernel(o.kernel, o.modDir)
	if err != nil {
		return 1, err
	}
	if o.fetch {
		fmt.Fprintf(os.Stderr, "vmtest: %s: %s\n", o.kernel, k.Image)
		return 0, nil
	}
	if len(o.args) == 0 {
		flag.Usage()
		return 2, errors.New("no test binary given")
	}
	if err := checkStatic(o.args[0]); err != nil {
		return 1, err
	}
	if o.workDir, err = os.Getwd(); err != nil {
		return 1, err
	}
	tmp, err := os.MkdirTemp("", "kflow-vmtest-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)

	began := time.Now()
	initrd := filepath.Join(tmp, "initramfs.cpio")
	cfg, err := o.initramfs(k, tmp, initrd)
	if err != nil {
		return 1, err
	}
	packed := time.Now()
	status, err := o.boot(k, initrd, cfg.Nonce)
	if o.verbose {
		fmt.Fprintf(os.Stderr, "vmtest: kernel %s (%s): packed in %v, ran in %v, status %d\n",
			o.kernel, filepath.Base(k.Image), packed.Sub(began).Round(time.Millisecond),
			time.Since(packed).Round(time.Millisecond), status)
	}
	return status, err
}

// checkStatic refuses binaries that need a dynamic loader: the guest has
// no libc.
func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("test binary %s: %w", bin, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("test binary %s is for %v; the VM is x86-64", bin, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("test binary %s is dynamically linked: the VM has no libc; build the tests with CGO_ENABLED=0", bin)
		}
	}
	return nil
}

// initramfs writes the guest's initramfs and returns the run's config.
func (o *options) initramfs(k *Kernel, tmp, dst string) (*guest.Config, error) {
	initBin := filepath.Join(tmp, "init")
	build := exec.Command(goTool(), "build", "-trimpath", "-o", initBin, initPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build guest init: %w: %s", err, out)
	}

	var mods []string
	if o.modules != "" {
		if k.Modules == "" {
			return nil, fmt.Errorf("kernel %s: modules %s wanted but no module tree (-modules-dir)", k.Name, o.modules)
		}
		set, err := newModuleSet(k.Modules, tmp)
		if err != nil {
			return nil, err
		}
		for _, m := range strings.Split(o.modules, ",") {
			if err := set.Add(strings.TrimSpace(m)); err != nil {
				return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
			}
		}
		mods = set.order
	}

	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	cfg := &guest.Config{
		Nonce: hex.EncodeToString(nonce),
		Dir:   o.workDir,
		Env:   guestEnv(o.kernel),
	}
	o.guestBin = "/vmtest/bin/" + filepath.Base(o.args[0])
	cfg.Args = append([]string{o.guestBin}, guestArgs(o.args[1:], &cfg.Dirs)...)

	f, err := os.Create(dst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := newCpio(f)
	c.CharDev("/dev/console", 5, 1)
	for _, d := range []string{"/proc", "/sys", "/tmp", "/run", "/root"} {
		c.Dir(d)
	}
	c.File("/init", initBin, 0o755)
	for _, m := range mods {
		gp := "/vmtest/modules/" + filepath.Base(m)
		c.File(gp, m, 0o644)
		cfg.Modules = append(cfg.Modules, gp)
	}
	c.File(o.guestBin, o.args[0], 0o755)
	c.Dir(o.workDir)
	if st, err := os.Stat("testdata"); err == nil && st.IsDir() {
		c.Tree(path.Join(o.workDir, "testdata"), "testdata")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	c.Bytes(guest.ConfigPath, 0o644, b)
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	return cfg, f.Close()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// guestEnv is the test's environment in the guest: kflow's own switches
// (KFLOW_REQUIRE_PRIVILEGED among them) and Go's debugging variables pass
// through; KFLOW_VMTEST_KERNEL tells tests where they run.
func guestEnv(kernel string) []string {
	env := []string{
		"PATH=/vmtest/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"TMPDIR=/tmp",
		"KFLOW_VMTEST_KERNEL=" + kernel,
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "KFLOW_VMTEST_CACHE" || name == "KFLOW_VMTEST_KERNEL":
		case strings.HasPrefix(name, "KFLOW_"),
			name == "GOTRACEBACK", name == "GODEBUG", name == "GOMAXPROCS":
			env = append(env, kv)
		}
	}
	return env
}

// guestArgs adapts go test's arguments to the guest: the test log that
// feeds go test's cache stays on the host (without it the run is simply
// not cached), and output directories are created in the guest.
func guestArgs(args []string, dirs *[]string) []string {
	var out []string
	for _, a := range args {
		name, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "test.testlogfile":
			continue
		case "test.gocoverdir", "test.outputdir":
			if val != "" {
				*dirs = append(*dirs, val)
			}
		}
		out = append(out, a)
	}
	return out
}

// boot runs qemu and returns the test's exit status.
func (o *options) boot(k *Kernel, initrd, nonce string) (int, error) {
	cpu := "max"
	if o.accel == "kvm" {
		cpu = "host"
	}
	args := append([]string{"-accel", o.accel},
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", "stdio", "-no-reboot",
		"-cpu", cpu, "-smp", fmt.Sprint(o.cpus), "-m", fmt.Sprint(o.memory),
		"-kernel", k.Image, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=0 panic=-1 rdinit=/init",
	)
	filter := newConsoleFilter(os.Stdout, nonce)
	cmd := exec.Command(o.qemu, args...)
	cmd.Stdin = nil
	cmd.Stdout = filter
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("start %s (apt-get install qemu-system-x86): %w", o.qemu, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	timedOut := false
	select {
	case werr = <-done:
	case <-time.After(o.timeout):
		timedOut = true
		_ = cmd.Process.Kill()
		werr = <-done
	}
	filter.Flush()
	if o.bootLog {
		fmt.Fprintf(os.Stderr, "vmtest: guest console outside the test:\n%s\n", filter.BootLog())
	}
	switch {
	case timedOut:
		return 1, fmt.Errorf("kernel %s: no result within %v (-timeout); VM stopped", o.kernel, o.timeout)
	case filter.state == stBoot && strings.Contains(filter.BootLog(), guest.ExitMarkerPrefix(nonce)):
		return 1, fmt.Errorf("kernel %s: guest init failed before the test started; guest console:\n%s",
			o.kernel, filter.BootLog())
	case filter.status < 0:
		return 1, fmt.Errorf("kernel %s: the VM stopped before the test ended (qemu: %v); guest console:\n%s",
			o.kernel, werr, filter.BootLog())
	}
	return filter.status, nil
}
