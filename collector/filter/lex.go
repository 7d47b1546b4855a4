// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"fmt"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tWord
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
	tNot // !
	tAnd // &&
	tOr  // ||
	tOp  // comparison operator
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the source
}

func (t token) String() string {
	if t.kind == tEOF {
		return "end of filter"
	}
	return fmt.Sprintf("%q", t.text)
}

// lower returns the token's text in lower case (keywords are case
// insensitive).
func (t token) lower() string { return strings.ToLower(t.text) }

// wordByte reports whether c may be part of a word: addresses (with ':',
// '.', '/'), numbers with suffixes, keywords with '-'.
func wordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', '(', ')', '[', ']', ',', '!', '&', '|', '<', '>', '=', '#', '"', '\'':
		return false
	}
	return c > ' ' && c < 0x7f
}

// lex splits src into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tLBrack, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tRBrack, "]", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '&' || c == '|':
			if i+1 < len(src) && src[i+1] == c {
				k := tAnd
				if c == '|' {
					k = tOr
				}
				toks = append(toks, token{k, src[i : i+2], i})
				i += 2
				continue
			}
			return nil, NewSyntaxError(src, i, string(c), fmt.Sprintf("unexpected %q (use %c%c or %s)", c, c, c, map[byte]string{'&': "and", '|': "or"}[c]))
		case c == '!':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{tOp, "!=", i})
				i += 2
				continue
			}
			toks = append(toks, token{tNot, "!", i})
			i++
		case c == '<' || c == '>' || c == '=':
			n := 1
			if i+1 < len(src) && src[i+1] == '=' {
				n = 2
			}
			toks = append(toks, token{tOp, src[i : i+n], i})
			i += n
		case wordByte(c):
			// '#' starts a comment only where a token could start: inside
			// a word it is part of it (nfcapd's idents, "Exporter_#1").
			j := i
			for j < len(src) && (wordByte(src[j]) || src[j] == '#') {
				j++
			}
			toks = append(toks, token{tWord, src[i:j], i})
			i = j
		default:
			return nil, NewSyntaxError(src, i, src[i:i+1], fmt.Sprintf("unexpected character %q", c))
		}
	}
	toks = append(toks, token{tEOF, "", len(src)})
	return toks, nil
}

// Token is one token of a filter as Lex returns it: the lexer is shared
// with the exporter's capture filters (bpf/pcapfilter), whose language
// has the same words, parentheses and !, && and ||.
type Token struct {
	Kind TokenKind
	Text string
	Pos  int // byte offset in the source
}

// TokenKind is the kind of a Token.
type TokenKind uint8

// Token kinds.
const (
	TokEOF     = TokenKind(tEOF)
	TokWord    = TokenKind(tWord)
	TokLParen  = TokenKind(tLParen)
	TokRParen  = TokenKind(tRParen)
	TokLBrack  = TokenKind(tLBrack)
	TokRBrack  = TokenKind(tRBrack)
	TokComma   = TokenKind(tComma)
	TokNot     = TokenKind(tNot) // !
	TokAnd     = TokenKind(tAnd) // &&
	TokOr      = TokenKind(tOr)  // ||
	TokCompare = TokenKind(tOp)  // < <= > >= = == !=
)

// Lex splits src into tokens, the last of kind TokEOF; words are
// addresses, numbers and keywords; # starts a comment to the end of the
// line. Errors are *SyntaxError.
func Lex(src string) ([]Token, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(toks))
	for i, t := range toks {
		out[i] = Token{Kind: TokenKind(t.kind), Text: t.text, Pos: t.pos}
	}
	return out, nil
}
