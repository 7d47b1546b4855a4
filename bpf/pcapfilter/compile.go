// SPDX-License-Identifier: Apache-2.0

package pcapfilter

import (
	"fmt"
	"slices"

	"github.com/kflow-dev/kflow/collector/filter"
)

// Compile parses a capture filter and compiles it into a program. An
// empty filter compiles to an empty program, which accepts every packet.
// Errors are *filter.SyntaxError, pointing at the offending token, for
// syntax errors and unsupported primitives alike.
func Compile(expr string) (Program, error) {
	n, err := parse(expr)
	if err != nil || n == nil {
		return nil, err
	}
	var c compiler
	entry := c.gen(n, Accept, Reject)
	// The instructions were emitted last first, so that every jump goes to
	// one emitted before it: reversed, every jump goes forward.
	prog := Program(c.out)
	slices.Reverse(prog)
	last := len(prog) - 1
	remap := func(j int) uint8 {
		if j == Accept || j == Reject {
			return uint8(j)
		}
		return uint8(last - j)
	}
	for i := range prog {
		prog[i].JT, prog[i].JF = remap(c.jt[last-i]), remap(c.jf[last-i])
	}
	if len(prog) > MaxInsns {
		return nil, filter.NewSyntaxError(expr, 0, expr,
			fmt.Sprintf("the filter needs %d tests; the datapath runs at most %d", len(prog), MaxInsns))
	}
	if last-entry != 0 {
		return nil, fmt.Errorf("compile filter: entry %d is not the first instruction", last-entry)
	}
	if err := prog.Check(); err != nil {
		return nil, fmt.Errorf("compile filter: %w", err)
	}
	return prog, nil
}

type compiler struct {
	out    []Insn
	jt, jf []int // emission-order jump targets (indexes into out, or Accept/Reject)
}

// gen emits n so that it continues at t when it holds and at f when not,
// and returns the index of its first instruction. Children are emitted
// right to left, so a test's targets are always emitted before it.
func (c *compiler) gen(n *node, t, f int) int {
	switch n.kind {
	case nAnd:
		b := c.gen(n.b, t, f)
		return c.gen(n.a, b, f)
	case nOr:
		b := c.gen(n.b, t, f)
		return c.gen(n.a, t, b)
	case nNot:
		return c.gen(n.a, f, t)
	}
	c.out = append(c.out, n.leaf)
	c.jt = append(c.jt, t)
	c.jf = append(c.jf, f)
	return len(c.out) - 1
}
