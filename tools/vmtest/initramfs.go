// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// cpioWriter writes a newc ("070701") archive, the format the kernel
// unpacks as initramfs. Parent directories are written before their
// entries (the kernel does not create them).
type cpioWriter struct {
	w    *bufio.Writer
	ino  int
	dirs map[string]bool
	err  error
}

func newCpio(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1, dirs: map[string]bool{"": true, "/": true}}
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

func (c *cpioWriter) header(name string, mode uint32, size int64, rdevMajor, rdevMinor int) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(name, "/")
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	c.ino++
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if c.err != nil {
		return
	}
	c.write([]byte(name + "\x00"))
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir adds a directory and its parents.
func (c *cpioWriter) Dir(name string) {
	name = path.Clean("/" + name)
	if c.dirs[name] {
		return
	}
	c.Dir(path.Dir(name))
	c.dirs[name] = true
	c.header(name, modeDir|0o755, 0, 0, 0)
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, major, minor int) {
	c.Dir(path.Dir(name))
	c.header(name, modeChar|0o600, 0, major, minor)
}

// Bytes adds a regular file with the given contents.
func (c *cpioWriter) Bytes(name string, perm uint32, b []byte) {
	c.Dir(path.Dir(name))
	c.header(name, modeFile|perm, int64(len(b)), 0, 0)
	c.write(b)
	c.pad(len(b))
}

// File adds a copy of a host file.
func (c *cpioWriter) File(name, src string, perm uint32) {
	if c.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.err = err
		return
	}
	c.Dir(path.Dir(name))
	c.header(name, modeFile|perm, st.Size(), 0, 0)
	if c.err != nil {
		return
	}
	n, err := io.Copy(c.w, f)
	if err == nil && n != st.Size() {
		err = fmt.Errorf("%s changed size while archived", src)
	}
	if err != nil {
		c.err = err
		return
	}
	c.pad(int(n % 4))
}

// Tree adds a host directory tree (regular files and directories).
func (c *cpioWriter) Tree(name, src string) {
	if c.err != nil {
		return
	}
	c.err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := path.Join(name, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			c.Dir(dst)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			c.File(dst, p, uint32(info.Mode().Perm()))
		}
		return c.err
	})
}

// Close writes the trailer and flushes.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// moduleSet resolves kernel modules by name in a module tree, with the
// modules they depend on first (read from each module's .modinfo: the
// packages ship no modules.dep, depmod builds it at install time).
type moduleSet struct {
	tree    string
	byName  map[string]string // module name -> file in tree
	builtin map[string]bool
	order   []string // decompressed files, dependencies first
	seen    map[string]bool
	tmp     string
}

func newModuleSet(tree, tmp string) (*moduleSet, error) {
	s := &moduleSet{tree: tree, byName: map[string]string{}, builtin: map[string]bool{}, seen: map[string]bool{}, tmp: tmp}
	err := filepath.WalkDir(filepath.Join(tree, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if n, ok := moduleName(d.Name()); ok {
				s.byName[n] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", tree, err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			if n, ok := moduleName(path.Base(l)); ok {
				s.builtin[n] = true
			}
		}
	}
	return s, nil
}

// moduleName returns the canonical name of a module file (dashes become
// underscores, as the kernel does).
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(file, ext) {
			return strings.ReplaceAll(strings.TrimSuffix(file, ext), "-", "_"), true
		}
	}
	return "", false
}

// Add adds a module and its dependencies. A module built into the kernel
// needs nothing.
func (s *moduleSet) Add(name string) error {
	name = strings.ReplaceAll(name, "-", "_")
	if s.seen[name] || s.builtin[name] {
		return nil
	}
	s.seen[name] = true
	src, ok := s.byName[name]
	if !ok {
		return fmt.Errorf("module %s: not in %s and not built in", name, s.tree)
	}
	b, err := readModule(src)
	if err != nil {
		return err
	}
	deps, err := moduleDepends(b)
	if err != nil {
		return fmt.Errorf("module %s: %w", name, err)
	}
	for _, d := range deps {
		if err := s.Add(d); err != nil {
			return err
		}
	}
	dst := filepath.Join(s.tmp, name+".ko")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return err
	}
	s.order = append(s.order, dst)
	return nil
}

// readModule returns a module file's ELF bytes, decompressing it (the
// guest loads plain modules only).
func readModule(p string) ([]byte, error) {
	switch {
	case strings.HasSuffix(p, ".xz"):
		out, err := exec.Command("xz", "-dc", p).Output()
		if err != nil {
			return nil, fmt.Errorf("decompress %s (needs xz-utils): %w", p, err)
		}
		return out, nil
	case strings.HasSuffix(p, ".zst"):
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		d, err := zstd.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", p, err)
		}
		defer d.Close()
		return io.ReadAll(d)
	case strings.HasSuffix(p, ".gz"):
		out, err := exec.Command("gzip", "-dc", p).Output()
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", p, err)
		}
		return out, nil
	}
	return os.ReadFile(p)
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("parse module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
