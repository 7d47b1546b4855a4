// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// runCLI runs kflow in-process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// walk calls fn for every command of the tree, with its words.
func walk(c *command, words []string, fn func(c *command, words []string)) {
	fn(c, words)
	for _, s := range c.sub {
		walk(s, append(append([]string(nil), words...), s.name), fn)
	}
}

// TestHelpEverywhere checks that every object and command answers help,
// -h and --help, and "kflow help PATH", with a usage on stdout and exit 0.
func TestHelpEverywhere(t *testing.T) {
	root := commands()
	n := 0
	walk(root, nil, func(c *command, words []string) {
		path := strings.Join(words, " ")
		want := strings.TrimSpace("Usage: kflow " + path)
		for _, args := range [][]string{
			append(append([]string(nil), words...), "help"),
			append(append([]string(nil), words...), "-h"),
			append(append([]string(nil), words...), "--help"),
			append([]string{"help"}, words...),
		} {
			code, out, errOut := runCLI(t, args...)
			if code != exitOK || errOut != "" {
				t.Errorf("kflow %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
				continue
			}
			if !strings.HasPrefix(out, want) {
				t.Errorf("kflow %s: stdout starts %q, want %q", strings.Join(args, " "), firstLine(out), want)
			}
			if c.sub != nil {
				for _, s := range c.sub {
					if !strings.Contains(out, s.summary) {
						t.Errorf("kflow %s: help does not list %s", strings.Join(args, " "), s.name)
					}
				}
			}
		}
		n++
	})
	if n < 15 {
		t.Errorf("walked only %d commands", n)
	}
}

func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestPrefixes checks unambiguous prefixes, aliases and defaults, and that
// ambiguous prefixes fail with exit status 2 and name the candidates.
func TestPrefixes(t *testing.T) {
	root := commands()
	setPaths(root, "")
	// resolve is dispatch's own walk (dispatch only runs what it returns).
	for _, tc := range []struct {
		args []string
		want string // fullPath of the command reached
		rest []string
		help bool // the object's help, not a command
	}{
		{[]string{"p", "s"}, "prog show", nil, false},
		{[]string{"pr", "list"}, "prog show", nil, false},
		{[]string{"prog"}, "prog show", nil, false},
		{[]string{"m", "d", "flows_a"}, "map dump", []string{"flows_a"}, false},
		{[]string{"ma", "l"}, "map show", nil, false},
		{[]string{"map"}, "map show", nil, false},
		{[]string{"map", "-j"}, "map show", []string{"-j"}, false},
		{[]string{"-j", "--log-level", "debug", "ma"}, "map show", []string{"-j", "--log-level", "debug"}, false},
		{[]string{"l"}, "link show", nil, false},
		{[]string{"n", "sh"}, "net show", nil, false},
		{[]string{"fea"}, "feature probe", nil, false},
		{[]string{"fea", "p"}, "feature probe", nil, false},
		{[]string{"v"}, "version", nil, false},
		{[]string{"help", "m"}, "map", nil, true},
		{[]string{"help", "m", "d"}, "map dump", []string{"help"}, false},
		{[]string{"ma", "-h"}, "map", nil, true},
		{[]string{"-h"}, "", nil, true},
	} {
		got, rest, help, err := resolve(root, tc.args)
		if err != nil {
			t.Errorf("kflow %s: %v", strings.Join(tc.args, " "), err)
			continue
		}
		if got.fullPath != tc.want || strings.Join(rest, " ") != strings.Join(tc.rest, " ") || help != tc.help {
			t.Errorf("kflow %s reached %q %q help=%v, want %q %q help=%v", strings.Join(tc.args, " "),
				got.fullPath, rest, help, tc.want, tc.rest, tc.help)
		}
	}
	if _, _, _, err := resolve(root, []string{"map", "nosuch"}); !errors.Is(err, errUsage) {
		t.Errorf("kflow map nosuch: %v, want a usage error", err)
	}
	// Every ambiguous prefix of the real tree (e.g. "f": file, feature)
	// fails with exit status 2 and names the candidates.
	ambiguous := 0
	walk(root, nil, func(c *command, words []string) {
		for i, a := range c.sub {
			for _, b := range c.sub[i+1:] {
				p := commonPrefix(a.name, b.name)
				if p == "" || p == a.name || p == b.name {
					continue
				}
				args := append(append([]string(nil), words...), p)
				code, out, errOut := runCLI(t, args...)
				if code != exitUsage || out != "" {
					t.Errorf("kflow %s: exit %d, want %d (stdout %q)", strings.Join(args, " "), code, exitUsage, out)
				}
				if !strings.Contains(errOut, "ambiguous") || !strings.Contains(errOut, a.name) || !strings.Contains(errOut, b.name) {
					t.Errorf("kflow %s: stderr %q does not name %s and %s", strings.Join(args, " "), errOut, a.name, b.name)
				}
				ambiguous++
			}
		}
	})
	t.Logf("%d ambiguous prefixes in the tree", ambiguous)
	// And in a tree made to have one, whatever the real tree holds.
	tree := &command{name: "kflow", sub: []*command{{name: "probe"}, {name: "prog"}, {name: "map"}}}
	if _, err := tree.lookup("pro"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "probe, prog") {
		t.Errorf("lookup pro: %v, want a usage error naming probe, prog", err)
	}
	// Options after an object go to its default command.
	t.Run("options to default", func(t *testing.T) {
		testenv.RequirePrivileged(t)
		if code, out, errOut := runCLI(t, "map", "-j", "--pin-dir", t.TempDir(), "--pinned"); code != exitOK || out != "[]\n" {
			t.Errorf("kflow map -j: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	code, _, errOut := runCLI(t, "map", "nosuch")
	if code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Errorf("kflow map nosuch: exit %d, stderr %q", code, errOut)
	}
}
