// Package lex splits a shell line into arguments and converts byte strings to and
// from the C-style escaped form the shell prints.
//
// Split follows the rules of redis' sdssplitargs, which upstream pegasus_shell
// uses, so that scripts written for it tokenize the same way: whitespace
// separates arguments; "double quotes" understand \n \r \t \b \a, \xHH and a
// backslash before any other character; 'single quotes' understand only \';
// a closing quote must be followed by whitespace or the end of the line.
package lex

import (
	"errors"
	"strings"
)

// ErrUnbalancedQuotes is returned for a line with an unterminated quote or a
// closing quote followed by something other than whitespace.
var ErrUnbalancedQuotes = errors.New("unbalanced quotes")

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == 0
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Split tokenizes line. A line of only whitespace gives no arguments.
func Split(line string) ([]string, error) {
	var out []string
	i, n := 0, len(line)
	for {
		for i < n && isSpace(line[i]) {
			i++
		}
		if i >= n {
			return out, nil
		}
		var cur []byte
		inDouble, inSingle := false, false
	token:
		for {
			if i >= n {
				if inDouble || inSingle {
					return nil, ErrUnbalancedQuotes
				}
				break
			}
			c := line[i]
			switch {
			case inDouble:
				switch {
				case c == '\\' && i+3 < n && line[i+1] == 'x':
					hi, ok1 := hexVal(line[i+2])
					lo, ok2 := hexVal(line[i+3])
					if ok1 && ok2 {
						cur = append(cur, hi<<4|lo)
						i += 4
						continue
					}
					cur = append(cur, 'x')
					i += 2
				case c == '\\' && i+1 < n:
					switch e := line[i+1]; e {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, e)
					}
					i += 2
				case c == '"':
					if i+1 < n && !isSpace(line[i+1]) {
						return nil, ErrUnbalancedQuotes
					}
					i++
					break token
				default:
					cur = append(cur, c)
					i++
				}
			case inSingle:
				switch {
				case c == '\\' && i+1 < n && line[i+1] == '\'':
					cur = append(cur, '\'')
					i += 2
				case c == '\'':
					if i+1 < n && !isSpace(line[i+1]) {
						return nil, ErrUnbalancedQuotes
					}
					i++
					break token
				default:
					cur = append(cur, c)
					i++
				}
			default:
				switch {
				case isSpace(c):
					i++
					break token
				case c == '"':
					inDouble = true
				case c == '\'':
					inSingle = true
				default:
					cur = append(cur, c)
				}
				i++
			}
		}
		out = append(out, string(cur))
	}
}

const hexDigits = "0123456789ABCDEF"

// Escape renders b for display: printable ASCII as is, the usual C escapes for
// \n \r \t " ' and backslash, \xHH for every other byte. With all, every byte
// is written as \xHH (the shell's "escape_all true").
func Escape(b []byte, all bool) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if all {
			sb.WriteString(`\x`)
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&15])
			continue
		}
		switch c {
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '"':
			sb.WriteString(`\"`)
		case '\'':
			sb.WriteString(`\'`)
		case '\\':
			sb.WriteString(`\\`)
		default:
			if c >= 0x20 && c < 0x7f {
				sb.WriteByte(c)
			} else {
				sb.WriteString(`\x`)
				sb.WriteByte(hexDigits[c>>4])
				sb.WriteByte(hexDigits[c&15])
			}
		}
	}
	return sb.String()
}

// Unescape reverses Escape: it decodes \n \r \t \" \' \\ and \xHH; any other
// backslash sequence is kept as written. Filter patterns go through it, so that
// a pattern typed with escapes inside single quotes still matches binary keys.
func Unescape(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			continue
		}
		switch e := s[i+1]; e {
		case 'n':
			out = append(out, '\n')
			i++
		case 'r':
			out = append(out, '\r')
			i++
		case 't':
			out = append(out, '\t')
			i++
		case '"', '\'', '\\':
			out = append(out, e)
			i++
		case 'x':
			if i+3 < len(s) {
				hi, ok1 := hexVal(s[i+2])
				lo, ok2 := hexVal(s[i+3])
				if ok1 && ok2 {
					out = append(out, hi<<4|lo)
					i += 3
					continue
				}
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}
