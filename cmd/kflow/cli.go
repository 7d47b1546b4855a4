// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// errUsage marks an error in how kflow was called (exit status 2).
var errUsage = querycli.ErrUsage

// env is what a command may touch: everything a test replaces.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	json   bool
	pretty bool
	log    *slog.Logger
	// logLevel and logFormat configure log; set by the common flags.
	logLevel, logFormat string
}

// command is a node of the OBJECT COMMAND tree.
type command struct {
	name    string
	aliases []string
	summary string
	usage   string // arguments after the command name
	// flags registers the command's options on fs; nil for none.
	flags func(fs *pflag.FlagSet)
	// run runs the leaf command with its positional arguments.
	run func(e *env, args []string) error
	// sub are the commands of an object; def runs when none is given.
	sub []*command
	def string
	// fullPath is the command's words after "kflow", set at start.
	fullPath string
}

func (c *command) names() []string { return append([]string{c.name}, c.aliases...) }

// lookup finds a subcommand by name, alias or unambiguous prefix.
func (c *command) lookup(word string) (*command, error) {
	var matches []*command
	for _, s := range c.sub {
		for _, n := range s.names() {
			if n == word {
				return s, nil
			}
		}
	}
	for _, s := range c.sub {
		for _, n := range s.names() {
			if strings.HasPrefix(n, word) {
				matches = append(matches, s)
				break
			}
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, fmt.Errorf("%w: unknown %s %q (try: kflow %shelp)", errUsage, c.kind(), word, c.path())
	}
	var names []string
	for _, m := range matches {
		names = append(names, m.name)
	}
	return nil, fmt.Errorf("%w: %q is ambiguous: %s", errUsage, word, strings.Join(names, ", "))
}

func (c *command) kind() string {
	if c.name == "kflow" {
		return "object"
	}
	return "command"
}

// parent pointers are not stored; path is rebuilt from the walk.
func (c *command) path() string {
	if c.name == "kflow" || c.fullPath == "" {
		return ""
	}
	return c.fullPath + " "
}

// run parses args and runs the command they name; it returns the exit
// status and prints errors to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	root := commands()
	setPaths(root, "")
	err := dispatch(e, root, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	msg := err.Error()
	if errors.Is(err, errUsage) {
		msg = strings.TrimPrefix(msg, errUsage.Error()+": ")
		fmt.Fprintf(stderr, "kflow: %s\n", msg)
		return exitUsage
	}
	if e.log != nil && e.logFormat == "json" {
		e.log.Error(msg)
	} else {
		fmt.Fprintf(stderr, "kflow: %s\n", msg)
	}
	var ex exitCode
	if errors.As(err, &ex) {
		return int(ex)
	}
	return exitError
}

// exitCode lets a command choose its exit status (feature probe).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func setPaths(c *command, prefix string) {
	c.fullPath = strings.TrimSpace(prefix)
	for _, s := range c.sub {
		setPaths(s, prefix+s.name+" ")
	}
}

func dispatch(e *env, c *command, args []string) error {
	c, rest, help, err := resolve(c, args)
	if err != nil {
		return err
	}
	if help {
		return printHelp(e, c)
	}
	return runLeaf(e, c, rest)
}

// resolve walks args down the tree from c as kflow reads them: names,
// aliases and unambiguous prefixes, an object's default command, options
// before the object or after it, and help (-h, --help, "help", "help
// PATH") at any depth. It returns the leaf command and its arguments, or,
// with help set, the object whose help the words ask for.
func resolve(c *command, args []string) (cmd *command, rest []string, help bool, err error) {
	// Options before the object (kflow -j map show) apply to the leaf.
	var leading []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && c.sub != nil {
		if args[0] == "-h" || args[0] == "--help" {
			return c, nil, true, nil
		}
		leading = append(leading, args[0])
		args = args[1:]
		if len(args) > 0 && flagTakesValue(leading[len(leading)-1]) && !strings.HasPrefix(args[0], "-") {
			leading = append(leading, args[0])
			args = args[1:]
		}
	}
	for c.sub != nil {
		if len(args) == 0 {
			if c.def == "" {
				return c, nil, true, nil
			}
			args = []string{c.def}
		}
		if args[0] == "help" {
			if len(args) > 1 && args[1] != "help" {
				// "help prog show" is "prog show help", at any depth.
				return resolve(c, append(append([]string(nil), args[1:]...), "help"))
			}
			return c, nil, true, nil
		}
		if args[0] == "-h" || args[0] == "--help" {
			return c, nil, true, nil
		}
		if strings.HasPrefix(args[0], "-") && c.def != "" {
			// Options after an object go to its default command.
			args = append([]string{c.def}, args...)
		}
		sub, err := c.lookup(args[0])
		if err != nil {
			return nil, nil, false, err
		}
		c, args = sub, args[1:]
	}
	return c, append(leading, args...), false, nil
}

// flagTakesValue reports whether a common option consumes the next word.
func flagTakesValue(f string) bool {
	return (f == "--log-level" || f == "--log-format") && !strings.Contains(f, "=")
}

func runLeaf(e *env, c *command, args []string) error {
	fs := pflag.NewFlagSet("kflow "+c.fullPath, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&e.json, "json", "j", false, "print JSON")
	fs.BoolVarP(&e.pretty, "pretty", "p", false, "print indented JSON (implies --json)")
	fs.StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&e.logFormat, "log-format", "text", "log format: text or json")
	help := fs.BoolP("help", "h", false, "show this help")
	if c.flags != nil {
		c.flags(fs)
	}
	if len(args) > 0 && args[0] == "help" {
		return printLeafHelp(e, c, fs)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, c.fullPath, err)
	}
	if *help {
		return printLeafHelp(e, c, fs)
	}
	if e.pretty {
		e.json = true
	}
	logger, err := newLogger(e.stderr, e.logLevel, e.logFormat)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	e.log = logger
	return c.run(e, fs.Args())
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func printHelp(e *env, c *command) error {
	w := e.stdout
	if c.name == "kflow" {
		fmt.Fprintf(w, "Usage: kflow [OPTIONS] OBJECT COMMAND [ARGS]\n       kflow OBJECT help\n\nObjects:\n")
	} else {
		fmt.Fprintf(w, "Usage: kflow %s COMMAND [OPTIONS] [ARGS]\n\n%s\n\nCommands:\n", c.fullPath, c.summary)
	}
	subs := append([]*command(nil), c.sub...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		name := s.name
		if len(s.aliases) > 0 {
			name += " | " + strings.Join(s.aliases, " | ")
		}
		def := ""
		if s.name == c.def {
			def = " (default)"
		}
		fmt.Fprintf(w, "  %-22s %s%s\n", name, s.summary, def)
	}
	fmt.Fprintf(w, "\nOptions everywhere: -j/--json, -p/--pretty, -h/--help, --log-level, --log-format.\n")
	fmt.Fprintf(w, "Commands and objects may be abbreviated to any unambiguous prefix.\n")
	return nil
}

func printLeafHelp(e *env, c *command, fs *pflag.FlagSet) error {
	fmt.Fprintf(e.stdout, "Usage: kflow %s [OPTIONS] %s\n\n%s\n\nOptions:\n%s", c.fullPath, c.usage, c.summary, fs.FlagUsages())
	return nil
}

// query is the environment of the query commands.
func (e *env) query() *querycli.Env {
	return &querycli.Env{Ctx: e.ctx, Stdout: e.stdout, JSON: e.json, Pretty: e.pretty, Log: e.log}
}

// printJSON writes v as JSON (indented with --pretty).
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	if e.pretty {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}
