// Package table prints the shell's result tables in the layout of upstream
// pegasus_shell's table printer, which operators' scripts parse:
//
//   - a named table starts with a "[name]" line;
//   - a multi-column table has a header row of column names and no borders; each
//     cell is padded to the widest cell of its column plus two, on the right
//     for left-aligned columns and on the left for right-aligned ones, so rows
//     keep their trailing spaces;
//   - a key/value table prints "key<pad>: value<pad>": the key padded to the
//     longest key plus two, then ": value" padded to the longest value plus two;
//     an empty key/value table prints nothing at all;
//   - a group of tables (Multi) prints an empty line after every table;
//   - in JSON mode a table becomes {"name": {...}}, a key/value table
//     {"key": "value"}, a multi-column table {"<first cell>": {"<column>":
//     "<cell>", ...}}; every value is a string, the indent is four spaces.
//
// The text layout is rendered by github.com/olekukonko/tablewriter (v1.1.5)
// with borders, separators, auto-formatting and padding switched off. The
// column widths (widest cell + 2) are computed here and handed to it, because
// its Blueprint renderer repeats a multi-character padding string once per
// column of slack when it right-aligns a cell, so "  " as left padding cannot
// express upstream's right-aligned columns. Cells are measured by display
// width; upstream counts bytes, which only differs for non-ASCII text, and
// tablewriter expands tabs and splits cells at newlines where upstream writes
// them raw. Table names, addresses and numbers never contain such characters.
package table

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Column is one column of a multi-column table.
type Column struct {
	Name  string
	Right bool // right-aligned (numbers in nodes, app_stat, ...)
}

// L is a left-aligned column.
func L(name string) Column { return Column{Name: name} }

// R is a right-aligned column.
func R(name string) Column { return Column{Name: name, Right: true} }

// Table is a key/value or multi-column table.
type Table struct {
	Name string
	kv   bool
	cols []Column
	rows [][]string
}

// New returns a multi-column table; its first column names the rows.
func New(name string, cols ...Column) *Table {
	return &Table{Name: name, cols: cols}
}

// NewKV returns a key/value table.
func NewKV(name string) *Table {
	return &Table{Name: name, kv: true}
}

// Row appends a row of a multi-column table; each value is formatted with Fmt.
// Missing cells are empty, extra ones dropped.
func (t *Table) Row(cells ...any) *Table {
	n := len(t.cols)
	if t.kv {
		n = 2
	}
	row := make([]string, n)
	for i := 0; i < n && i < len(cells); i++ {
		row[i] = Fmt(cells[i])
	}
	t.rows = append(t.rows, row)
	return t
}

// KV appends a key and its value (formatted with Fmt) to a key/value table.
func (t *Table) KV(key string, value any) *Table {
	t.rows = append(t.rows, []string{key, Fmt(value)})
	return t
}

// Len is the number of rows, not counting the header.
func (t *Table) Len() int { return len(t.rows) }

// Rows returns the data rows.
func (t *Table) Rows() [][]string { return t.rows }

// Fmt formats a cell value as upstream does: doubles with two decimals (and
// 0.00 for anything below 1e-6 in magnitude), booleans as true/false, integers
// as is.
func Fmt(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return Float(x, 2)
	case float32:
		return Float(float64(x), 2)
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case fmt.Stringer:
		return x.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// Float formats a double with prec decimals, printing tiny values as 0.00.
func Float(v float64, prec int) string {
	if math.Abs(v) < 1e-6 {
		return "0.00"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// Single writes one table alone: no empty line after it.
func Single(w io.Writer, asJSON bool, t *Table) error {
	if asJSON {
		return writeJSON(w, []*Table{t})
	}
	return t.writeText(w)
}

// Multi writes a group of tables, each followed by an empty line, or one JSON
// object holding them all.
func Multi(w io.Writer, asJSON bool, ts ...*Table) error {
	if asJSON {
		return writeJSON(w, ts)
	}
	for _, t := range ts {
		if err := t.writeText(w); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}

func (t *Table) writeText(w io.Writer) error {
	if t.kv && len(t.rows) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if t.Name != "" {
		buf.WriteString("[" + t.Name + "]\n")
	}
	var rows [][]string
	var aligns []tw.Align
	widths := tw.NewMapper[int, int]()
	widen := func(col int, s string, extra int) {
		if n := twwidth.Width(s) + extra; n > widths.Get(col) {
			widths.Set(col, n)
		}
	}
	if t.kv {
		aligns = []tw.Align{tw.AlignLeft, tw.AlignLeft}
		for _, r := range t.rows {
			rows = append(rows, []string{r[0], ": " + r[1]})
			widen(0, r[0], 2)
			widen(1, ": "+r[1], 0)
		}
	} else {
		head := make([]string, len(t.cols))
		for i, c := range t.cols {
			head[i] = c.Name
			if c.Right {
				aligns = append(aligns, tw.AlignRight)
			} else {
				aligns = append(aligns, tw.AlignLeft)
			}
		}
		rows = append(rows, head)
		rows = append(rows, t.rows...)
		for _, r := range rows {
			for i, c := range r {
				widen(i, c, 2)
			}
		}
	}
	tab := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders:  tw.BorderNone,
			Symbols:  tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{Separators: tw.SeparatorsNone, Lines: tw.LinesNone},
		})),
		tablewriter.WithRowConfig(tw.CellConfig{
			Formatting: tw.CellFormatting{AutoWrap: tw.WrapNone, AutoFormat: tw.Off},
			Alignment:  tw.CellAlignment{PerColumn: aligns},
			Padding:    tw.CellPadding{Global: tw.PaddingNone},
		}),
		tablewriter.WithColumnWidths(widths),
		tablewriter.WithBehavior(tw.Behavior{AutoHide: tw.Off, TrimSpace: tw.Off, TrimLine: tw.Off, TrimTab: tw.Off}),
	)
	for _, r := range rows {
		if err := tab.Append(r); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	if err := tab.Render(); err != nil {
		return fmt.Errorf("table %s: %w", t.Name, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// jsonWriter writes pretty JSON with keys in insertion order.
type jsonWriter struct {
	buf bytes.Buffer
}

func (j *jsonWriter) str(s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	j.buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
}

func (j *jsonWriter) indent(depth int) {
	for i := 0; i < depth; i++ {
		j.buf.WriteString("    ")
	}
}

// object writes {"k": <v>, ...} where each value is written by fn.
func (j *jsonWriter) object(depth int, keys []string, fn func(i int)) {
	if len(keys) == 0 {
		j.buf.WriteString("{}")
		return
	}
	j.buf.WriteString("{\n")
	for i, k := range keys {
		j.indent(depth + 1)
		j.str(k)
		j.buf.WriteString(": ")
		fn(i)
		if i < len(keys)-1 {
			j.buf.WriteByte(',')
		}
		j.buf.WriteByte('\n')
	}
	j.indent(depth)
	j.buf.WriteByte('}')
}

func (j *jsonWriter) table(depth int, t *Table) {
	if t.kv {
		keys, vals := dedupe(t.rows, func(r []string) string { return r[0] })
		j.object(depth, keys, func(i int) { j.str(vals[i][1]) })
		return
	}
	keys, rows := dedupe(t.rows, func(r []string) string { return r[0] })
	j.object(depth, keys, func(i int) {
		names := make([]string, len(t.cols))
		for c, col := range t.cols {
			names[c] = col.Name
		}
		j.object(depth+1, names, func(c int) { j.str(rows[i][c]) })
	})
}

// dedupe keeps one row per key, the last one, at the place of the first: a JSON
// object cannot hold a key twice.
func dedupe(rows [][]string, key func([]string) string) ([]string, [][]string) {
	idx := map[string]int{}
	var keys []string
	var out [][]string
	for _, r := range rows {
		k := key(r)
		if i, ok := idx[k]; ok {
			out[i] = r
			continue
		}
		idx[k] = len(keys)
		keys = append(keys, k)
		out = append(out, r)
	}
	return keys, out
}

func writeJSON(w io.Writer, ts []*Table) error {
	var j jsonWriter
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	j.object(0, names, func(i int) { j.table(1, ts[i]) })
	j.buf.WriteByte('\n')
	_, err := w.Write(j.buf.Bytes())
	return err
}
