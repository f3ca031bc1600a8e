package rpc

// Helpers of vectors_test.go.
//
// Every golden frame file of ../shared/vectors/frames documents its content in a
// "decoded content" comment section: one line per thrift field, list element or map
// entry, with nested values indented below their parent. The test does not keep a
// copy of those values in Go; it parses the comment into a tree (commentNode) and
// relates the tree to the generated Go types by reflection:
//
//   - the matcher (vecMatcher) asserts that a decoded Go value has exactly the listed fields and
//     values (and that every optional field the comment does not list is unset);
//   - the filler (fillValue, fillStruct) builds a Go value from the tree, so that a response can be encoded
//     from the documented values and compared with the golden bytes.
//
// Field lines are matched by field id only: names are informational (they never
// travel on the wire, and the 2022 client uses other names in places).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
)

// commentNode is one non-empty line of a "decoded content" section. Lines indented
// deeper than it, up to the next line at its own depth, are its kids.
type commentNode struct {
	line   int    // 1-based line number in the .hex file, for error messages
	indent int    // number of spaces after '#'
	text   string // the line without '#' and indentation
	kids   []*commentNode
}

// vectorFile is one golden frame file: the frame bytes and its parsed comment.
type vectorFile struct {
	name    string
	frame   []byte
	content *commentNode // synthetic root; its kids are the top-level content lines
}

// loadVector reads a frame file: '#' lines are comments, the other non-blank lines
// are the hex of one whole frame.
func loadVector(path string) (*vectorFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	root := &commentNode{indent: -1}
	stack := []*commentNode{root}
	var hexText strings.Builder
	inContent, sawContent := false, false
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimRight(raw, "\r")
		if !strings.HasPrefix(line, "#") {
			hexText.WriteString(strings.TrimSpace(line))
			continue
		}
		body := line[1:]
		text := strings.TrimLeft(body, " ")
		switch {
		case text == "decoded content:":
			inContent, sawContent = true, true
			continue
		case text == "verification:":
			inContent = false
			continue
		case !inContent || text == "":
			continue
		}
		n := &commentNode{line: i + 1, indent: len(body) - len(text), text: text}
		for stack[len(stack)-1].indent >= n.indent {
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1]
		parent.kids = append(parent.kids, n)
		stack = append(stack, n)
	}
	if !sawContent {
		return nil, fmt.Errorf("%s: no \"decoded content\" section", path)
	}
	frame, err := hex.DecodeString(hexText.String())
	if err != nil {
		return nil, fmt.Errorf("%s: frame hex: %w", path, err)
	}
	if len(frame) == 0 {
		return nil, fmt.Errorf("%s: empty frame", path)
	}
	return &vectorFile{name: path, frame: frame, content: root}, nil
}

// topLine returns the first top-level content line starting with prefix, or nil.
func (v *vectorFile) topLine(prefix string) *commentNode {
	for _, n := range v.content.kids {
		if strings.HasPrefix(n.text, prefix) {
			return n
		}
	}
	return nil
}

var keyValueRe = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|[^\s,]+)`)

// keyValues extracts the key=value pairs of a descriptive line such as
// `app_id=2 partition_index=4 ...` or `... name="RPC_RRDB_RRDB_GET" seqid=7, ...`.
// Quoted values are unquoted.
func keyValues(text string) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range keyValueRe.FindAllStringSubmatch(text, -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			s, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %w", m[1], err)
			}
			v = s
		}
		out[m[1]] = v
	}
	return out, nil
}

// commentEntryKind tells what a content line describes.
type commentEntryKind int

const (
	fieldLine commentEntryKind = iota // "field <id> <name>: ..."
	elemLine                          // "[<i>]: ..." (list or set element)
	keyLine                           // "[key <k>]: ..." (map entry)
)

// commentEntry is the parsed form of one content line.
type commentEntry struct {
	node     *commentNode
	kind     commentEntryKind
	id       int16  // field id (fieldLine)
	name     string // field name; informational only
	index    int    // element index (elemLine)
	key      string // key text (keyLine), in the notation of a leaf value
	typ      string // type without " [optional]": "i32", "blob*", "enum x", "struct x", "list<x>", ...
	optional bool   // the field is optional in the interface definition
	value    string // text after " = " (leaves only)
	count    int    // number of elements or entries (containers only)
	wire     []thrift.TType
}

var (
	fieldLineRe   = regexp.MustCompile(`^field (-?\d+) (\w+): (.*)$`)
	elemLineRe    = regexp.MustCompile(`^\[(\d+)\]: (.*)$`)
	containerRe   = regexp.MustCompile(`^(\d+) (?:element\(s\)|entry|entries), (?:element wire type (\d+)|key wire type (\d+), value wire type (\d+))$`)
	enumValueRe   = regexp.MustCompile(`^(-?\d+) \((\w+)\)$`)
	blobValueRe   = regexp.MustCompile(`^\((\d+) bytes\) (.*)$`)
	gpidValueRe   = regexp.MustCompile(`^app_id=(-?\d+) partition_index=(-?\d+) \(raw i64 0x([0-9a-f]{16})\)$`)
	addrValueRe   = regexp.MustCompile(`^(.*) \(raw i64 0x([0-9a-f]{16})\)$`)
	addrDescRe    = regexp.MustCompile(`^(\S+) type=(\d+)$`)
	hostPortRe    = regexp.MustCompile(`^host=(".*") port=(\d+) type=(\d+)$`)
	hexSuffixRe   = regexp.MustCompile(`^\(0x([0-9a-f]+)\)$`)
	compositeNote = "[composite key: "
)

// parseEntry parses a field, element or map-entry line.
func parseEntry(n *commentNode) (commentEntry, error) {
	e := commentEntry{node: n, count: -1}
	var spec string
	switch {
	case strings.HasPrefix(n.text, "field "):
		m := fieldLineRe.FindStringSubmatch(n.text)
		if m == nil {
			return e, fmt.Errorf("line %d: malformed field line %q", n.line, n.text)
		}
		id, err := strconv.ParseInt(m[1], 10, 16)
		if err != nil {
			return e, fmt.Errorf("line %d: field id: %v", n.line, err)
		}
		e.kind, e.id, e.name, spec = fieldLine, int16(id), m[2], m[3]
	case strings.HasPrefix(n.text, "[key "):
		rest := n.text[len("[key "):]
		if strings.HasPrefix(rest, `"`) {
			// A quoted key may contain "]: " itself, so take the exact quoted prefix.
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return e, fmt.Errorf("line %d: map key: %v", n.line, err)
			}
			e.key, rest = q, rest[len(q):]
			if !strings.HasPrefix(rest, "]: ") {
				return e, fmt.Errorf("line %d: malformed map entry %q", n.line, n.text)
			}
			rest = rest[len("]: "):]
		} else {
			i := strings.Index(rest, "]: ")
			if i < 0 {
				return e, fmt.Errorf("line %d: malformed map entry %q", n.line, n.text)
			}
			e.key, rest = rest[:i], rest[i+len("]: "):]
		}
		e.kind, e.name, spec = keyLine, "[key "+e.key+"]", rest
	case strings.HasPrefix(n.text, "["):
		m := elemLineRe.FindStringSubmatch(n.text)
		if m == nil {
			return e, fmt.Errorf("line %d: malformed element line %q", n.line, n.text)
		}
		e.index, _ = strconv.Atoi(m[1])
		e.kind, e.name, spec = elemLine, "["+m[1]+"]", m[2]
	default:
		return e, fmt.Errorf("line %d: not a field, element or map entry: %q", n.line, n.text)
	}

	var containerInfo string
	hasValue := false
	if i := strings.Index(spec, " = "); i >= 0 {
		e.typ, e.value, hasValue = spec[:i], spec[i+len(" = "):], true
	} else if i := strings.Index(spec, ", "); i >= 0 {
		// Container types never contain ", " ("map<i32,i64>"), so the first one ends the type.
		e.typ, containerInfo = spec[:i], spec[i+len(", "):]
	} else {
		e.typ = spec
	}
	e.typ, e.optional = strings.CutSuffix(e.typ, " [optional]")

	switch typeClass(e.typ) {
	case "list", "set", "map":
		m := containerRe.FindStringSubmatch(containerInfo)
		if m == nil {
			return e, fmt.Errorf("line %d: malformed container description %q", n.line, containerInfo)
		}
		e.count, _ = strconv.Atoi(m[1])
		for _, w := range m[2:] {
			if w != "" {
				t, _ := strconv.Atoi(w)
				e.wire = append(e.wire, thrift.TType(t))
			}
		}
		if want := map[bool]int{true: 2, false: 1}[typeClass(e.typ) == "map"]; len(e.wire) != want {
			return e, fmt.Errorf("line %d: %s needs %d wire type(s)", n.line, e.typ, want)
		}
		if e.count != len(n.kids) {
			return e, fmt.Errorf("line %d: %d element(s) announced, %d listed", n.line, e.count, len(n.kids))
		}
	case "struct":
		if hasValue || containerInfo != "" {
			return e, fmt.Errorf("line %d: struct line with a value: %q", n.line, n.text)
		}
	default:
		if !hasValue || len(n.kids) != 0 {
			return e, fmt.Errorf("line %d: leaf %s without a value or with children", n.line, e.typ)
		}
	}
	return e, nil
}

// typeClass returns "list", "set", "map", "struct", "enum" or the leaf type itself.
func typeClass(typ string) string {
	for _, c := range []string{"list", "set", "map"} {
		if strings.HasPrefix(typ, c+"<") {
			return c
		}
	}
	for _, c := range []string{"struct", "enum"} {
		if strings.HasPrefix(typ, c+" ") {
			return c
		}
	}
	return typ
}

// mapKeyType returns K of "map<K,V>", splitting at the top-level comma.
func mapKeyType(typ string) (string, error) {
	inner, ok := strings.CutPrefix(typ, "map<")
	if !ok || !strings.HasSuffix(inner, ">") {
		return "", fmt.Errorf("not a map type: %q", typ)
	}
	depth := 0
	for i, c := range inner {
		switch c {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				return inner[:i], nil
			}
		}
	}
	return "", fmt.Errorf("map type without key: %q", typ)
}

// commentWireType is the thrift type byte that a comment type travels under.
func commentWireType(typ string) thrift.TType {
	switch typeClass(typ) {
	case "bool":
		return thrift.BOOL
	case "byte", "i8":
		return thrift.BYTE
	case "i16":
		return thrift.I16
	case "i32", "enum":
		return thrift.I32
	case "i64":
		return thrift.I64
	case "double":
		return thrift.DOUBLE
	case "string", "binary":
		return thrift.STRING
	case "list":
		return thrift.LIST
	case "set":
		return thrift.SET
	case "map":
		return thrift.MAP
	}
	// Structs and every placeholder type ("blob*", "gpid*", ...) are announced as STRUCT.
	return thrift.STRUCT
}

var (
	blobType      = reflect.TypeOf((*base.Blob)(nil))
	gpidType      = reflect.TypeOf((*base.Gpid)(nil))
	addrType      = reflect.TypeOf((*base.RPCAddress)(nil))
	hostPortType  = reflect.TypeOf((*base.HostPort)(nil))
	errorCodeType = reflect.TypeOf((*base.ErrorCode)(nil))
)

// placeholderTypes maps the comment name of each placeholder type to its Go type.
var placeholderTypes = map[string]reflect.Type{
	"blob*":        blobType,
	"gpid*":        gpidType,
	"rpc_address*": addrType,
	"host_port*":   hostPortType,
	"error_code*":  errorCodeType,
}

func isPlaceholder(t reflect.Type) bool {
	for _, p := range placeholderTypes {
		if t == p {
			return true
		}
	}
	return false
}

// goWireType is the thrift type byte the generated code writes for a Go type.
func goWireType(t reflect.Type) thrift.TType {
	if isPlaceholder(t) {
		return thrift.STRUCT
	}
	switch t.Kind() {
	case reflect.Ptr:
		if t.Elem().Kind() == reflect.Struct {
			return thrift.STRUCT
		}
		return goWireType(t.Elem()) // an optional scalar
	case reflect.Bool:
		return thrift.BOOL
	case reflect.Int8:
		return thrift.BYTE
	case reflect.Int16:
		return thrift.I16
	case reflect.Int32:
		return thrift.I32
	case reflect.Int64:
		if t.PkgPath() != "" {
			return thrift.I32 // generated enums are named int64 types written as i32
		}
		return thrift.I64
	case reflect.Float64:
		return thrift.DOUBLE
	case reflect.String:
		return thrift.STRING
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return thrift.STRING
		}
		return thrift.LIST // or SET: Go uses slices for both
	case reflect.Map:
		return thrift.MAP
	}
	return thrift.STOP
}

// sameWireType compares a comment wire type with a Go one; Go cannot tell a set from
// a list, both are slices.
func sameWireType(comment, goType thrift.TType) bool {
	return comment == goType || (comment == thrift.SET && goType == thrift.LIST)
}

// genField describes one field of a generated struct.
type genField struct {
	index    int
	id       int16
	name     string // thrift name from the tag
	goName   string
	optional bool
}

// genStructFields indexes the fields of a generated struct type by thrift field id.
func genStructFields(t reflect.Type) (map[int16]genField, error) {
	out := map[int16]genField{}
	ptr := reflect.PointerTo(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("thrift")
		if tag == "" {
			continue
		}
		parts := strings.Split(tag, ",")
		if len(parts) < 2 {
			return nil, fmt.Errorf("%s.%s: thrift tag %q has no id", t, f.Name, tag)
		}
		id, err := strconv.ParseInt(parts[1], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: thrift tag %q: %v", t, f.Name, tag, err)
		}
		// The generator marks optional fields with omitempty in the json tag, except
		// optional fields with a default value: those are plain values whose IsSet
		// method compares with the default. (Non-optional struct fields are pointers
		// and have an IsSet method too, hence the kind test.)
		_, hasIsSet := ptr.MethodByName("IsSet" + f.Name)
		optional := strings.Contains(f.Tag.Get("json"), ",omitempty") || (hasIsSet && f.Type.Kind() != reflect.Ptr)
		if _, dup := out[int16(id)]; dup {
			return nil, fmt.Errorf("%s: duplicate field id %d", t, id)
		}
		out[int16(id)] = genField{index: i, id: int16(id), name: parts[0], goName: f.Name, optional: optional}
	}
	return out, nil
}

// sortedFieldIDs returns the field ids of a struct in ascending order, for stable messages.
func sortedFieldIDs(fields map[int16]genField) []int16 {
	ids := make([]int16, 0, len(fields))
	for id := range fields {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// genFieldIsSet reports whether a field of the struct that sp points to would be written.
func genFieldIsSet(sp reflect.Value, f genField) bool {
	if m := sp.MethodByName("IsSet" + f.goName); m.IsValid() {
		return m.Call(nil)[0].Bool()
	}
	v := sp.Elem().Field(f.index)
	switch v.Kind() {
	case reflect.Ptr, reflect.Slice, reflect.Map:
		return !v.IsNil()
	}
	return !v.IsZero()
}

// parseLeaf turns the text of a leaf value (or of a map key) of comment type typ into
// a Go value of type t. The textual redundancy of the comments (raw i64 of gpids and
// addresses, escaped text of blobs, composite key breakdown, enum names) is checked
// on the way, so a comment that contradicts itself or the Go enum names is an error.
func parseLeaf(typ, text string, t reflect.Type) (reflect.Value, error) {
	if ph, ok := placeholderTypes[typ]; ok {
		if t != ph {
			return reflect.Value{}, fmt.Errorf("comment type %s, Go type %s", typ, t)
		}
		return parsePlaceholder(typ, text)
	}
	if t.Kind() == reflect.Ptr {
		// An optional scalar field is a pointer in the generated code.
		if t.Elem().Kind() == reflect.Struct {
			return reflect.Value{}, fmt.Errorf("comment type %s, Go type %s", typ, t)
		}
		v, err := parseLeaf(typ, text, t.Elem())
		if err != nil {
			return v, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(v)
		return p, nil
	}
	v := reflect.New(t).Elem()
	mismatch := fmt.Errorf("comment type %s, Go type %s", typ, t)
	switch typeClass(typ) {
	case "enum":
		if t.Kind() != reflect.Int64 || t.PkgPath() == "" {
			return v, mismatch
		}
		m := enumValueRe.FindStringSubmatch(text)
		if m == nil {
			return v, fmt.Errorf("malformed enum value %q", text)
		}
		n, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil {
			return v, err
		}
		v.SetInt(n)
		if s, ok := v.Interface().(fmt.Stringer); ok && s.String() != m[2] {
			return v, fmt.Errorf("enum value %d is %s in Go, %s in the comment", n, s.String(), m[2])
		}
	case "bool":
		if t.Kind() != reflect.Bool {
			return v, mismatch
		}
		switch text {
		case "true":
			v.SetBool(true)
		case "false":
		default:
			return v, fmt.Errorf("malformed bool %q", text)
		}
	case "byte", "i8", "i16", "i32", "i64":
		bits := map[string]int{"byte": 8, "i8": 8, "i16": 16, "i32": 32, "i64": 64}[typ]
		kind := map[int]reflect.Kind{8: reflect.Int8, 16: reflect.Int16, 32: reflect.Int32, 64: reflect.Int64}[bits]
		if t.Kind() != kind || t.PkgPath() != "" {
			return v, mismatch
		}
		num, rest, _ := strings.Cut(text, " ")
		n, err := strconv.ParseInt(num, 10, bits)
		if err != nil {
			return v, err
		}
		// Some i64 values repeat themselves in hex: "8855609959117400348 (0x7ae5...)".
		if rest != "" {
			m := hexSuffixRe.FindStringSubmatch(rest)
			if m == nil {
				return v, fmt.Errorf("unexpected text after integer: %q", rest)
			}
			if h, err := strconv.ParseUint(m[1], 16, 64); err != nil || h != uint64(n) {
				return v, fmt.Errorf("integer %d does not match its hex form %s", n, rest)
			}
		}
		v.SetInt(n)
	case "double":
		if t.Kind() != reflect.Float64 {
			return v, mismatch
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return v, err
		}
		v.SetFloat(f)
	case "string", "binary":
		s, err := strconv.Unquote(text)
		if err != nil {
			return v, fmt.Errorf("malformed string %q: %v", text, err)
		}
		switch {
		case t.Kind() == reflect.String:
			v.SetString(s)
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
			v.SetBytes([]byte(s))
		default:
			return v, mismatch
		}
	default:
		return v, fmt.Errorf("unknown leaf type %q", typ)
	}
	return v, nil
}

// parsePlaceholder parses the value of one of the raw placeholder types.
func parsePlaceholder(typ, text string) (reflect.Value, error) {
	switch typ {
	case "blob*":
		data, err := parseBlob(text)
		if err != nil {
			return reflect.Value{}, err
		}
		return reflect.ValueOf(&base.Blob{Data: data}), nil
	case "error_code*":
		s, err := strconv.Unquote(text)
		if err != nil {
			return reflect.Value{}, fmt.Errorf("malformed error_code %q: %v", text, err)
		}
		return reflect.ValueOf(base.NewErrorCode(s)), nil
	case "gpid*":
		m := gpidValueRe.FindStringSubmatch(text)
		if m == nil {
			return reflect.Value{}, fmt.Errorf("malformed gpid %q", text)
		}
		app, err1 := strconv.ParseInt(m[1], 10, 32)
		pidx, err2 := strconv.ParseInt(m[2], 10, 32)
		raw, err3 := strconv.ParseUint(m[3], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return reflect.Value{}, fmt.Errorf("malformed gpid %q", text)
		}
		g := base.NewGpid(int32(app), int32(pidx))
		if uint64(g.Raw()) != raw {
			return reflect.Value{}, fmt.Errorf("gpid %d.%d encodes as %#016x, the comment says %#016x", app, pidx, uint64(g.Raw()), raw)
		}
		return reflect.ValueOf(g), nil
	case "rpc_address*":
		m := addrValueRe.FindStringSubmatch(text)
		if m == nil {
			return reflect.Value{}, fmt.Errorf("malformed rpc_address %q", text)
		}
		raw, err := strconv.ParseUint(m[2], 16, 64)
		if err != nil {
			return reflect.Value{}, err
		}
		a := base.RPCAddressFromRaw(int64(raw))
		if m[1] == "<empty>" {
			if raw != 0 {
				return reflect.Value{}, fmt.Errorf("empty rpc_address with raw value %#x", raw)
			}
		} else {
			d := addrDescRe.FindStringSubmatch(m[1])
			if d == nil {
				return reflect.Value{}, fmt.Errorf("malformed rpc_address %q", text)
			}
			if typ, _ := strconv.Atoi(d[2]); uint64(typ) != raw&3 || a.String() != d[1] {
				return reflect.Value{}, fmt.Errorf("raw rpc_address %#016x is %s type %d, the comment says %s", raw, a, raw&3, m[1])
			}
		}
		return reflect.ValueOf(a), nil
	case "host_port*":
		m := hostPortRe.FindStringSubmatch(text)
		if m == nil {
			return reflect.Value{}, fmt.Errorf("malformed host_port %q", text)
		}
		host, err1 := strconv.Unquote(m[1])
		port, err2 := strconv.ParseUint(m[2], 10, 16)
		typ, err3 := strconv.ParseUint(m[3], 10, 8)
		if err1 != nil || err2 != nil || err3 != nil {
			return reflect.Value{}, fmt.Errorf("malformed host_port %q", text)
		}
		return reflect.ValueOf(&base.HostPort{Host: host, Port: uint16(port), Type: byte(typ)}), nil
	}
	return reflect.Value{}, fmt.Errorf("unknown placeholder type %q", typ)
}

// parseBlob parses `(N bytes) <hex> "<escaped>" [composite key: ...]` or
// `(0 bytes) <empty>`. The hex is authoritative; the escaped text and the composite
// key breakdown must agree with it.
func parseBlob(text string) ([]byte, error) {
	m := blobValueRe.FindStringSubmatch(text)
	if m == nil {
		return nil, fmt.Errorf("malformed blob %q", text)
	}
	n, _ := strconv.Atoi(m[1])
	rest := m[2]
	if n == 0 {
		if rest != "<empty>" {
			return nil, fmt.Errorf("malformed empty blob %q", text)
		}
		return []byte{}, nil
	}
	hexPart, rest, _ := strings.Cut(rest, " ")
	data, err := hex.DecodeString(hexPart)
	if err != nil {
		return nil, fmt.Errorf("blob hex: %v", err)
	}
	if len(data) != n {
		return nil, fmt.Errorf("blob announces %d bytes, hex holds %d", n, len(data))
	}
	if strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("blob text: %v", err)
		}
		if s, _ := strconv.Unquote(q); s != string(data) {
			return nil, fmt.Errorf("blob text %s does not match its hex %s", q, hexPart)
		}
		rest = strings.TrimPrefix(rest[len(q):], " ")
	}
	if rest != "" {
		if err := checkCompositeKeyNote(data, rest); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// checkCompositeKeyNote verifies a `[composite key: ...]` note against the blob: a
// u16 big-endian hash key length, the hash key, then the sort key.
func checkCompositeKeyNote(data []byte, note string) error {
	inner, ok := strings.CutPrefix(note, compositeNote)
	if !ok || !strings.HasSuffix(inner, "]") {
		return fmt.Errorf("unexpected blob note %q", note)
	}
	inner = strings.TrimSuffix(inner, "]")
	if len(data) < 2 {
		return fmt.Errorf("composite key note on a %d-byte blob", len(data))
	}
	hkLen := int(binary.BigEndian.Uint16(data))
	if 2+hkLen > len(data) {
		if want := fmt.Sprintf("hash_key length %d exceeds data", hkLen); inner != want {
			return fmt.Errorf("composite key note %q, want %q", inner, want)
		}
		return nil
	}
	hashKey, sortKey := data[2:2+hkLen], data[2+hkLen:]
	rest, ok := strings.CutPrefix(inner, fmt.Sprintf("hash_key_len=%d hash_key=", hkLen))
	if !ok {
		return fmt.Errorf("composite key note %q: want hash_key_len=%d", inner, hkLen)
	}
	q1, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return fmt.Errorf("composite key note %q: %v", inner, err)
	}
	rest, ok = strings.CutPrefix(rest[len(q1):], " sort_key=")
	if !ok {
		return fmt.Errorf("composite key note %q: no sort_key", inner)
	}
	q2, err := strconv.QuotedPrefix(rest)
	if err != nil || len(q2) != len(rest) {
		return fmt.Errorf("composite key note %q: malformed sort_key", inner)
	}
	hk, _ := strconv.Unquote(q1)
	sk, _ := strconv.Unquote(q2)
	if hk != string(hashKey) || sk != string(sortKey) {
		return fmt.Errorf("composite key note %q disagrees with the blob (hash_key %q, sort_key %q)", inner, hashKey, sortKey)
	}
	return nil
}

// leafEqual compares two leaf values of the same Go type. Nil pointers only equal
// nil pointers; blobs compare by content (nil and empty are the same on the wire).
func leafEqual(want, got reflect.Value) bool {
	if want.Type() != got.Type() {
		return false
	}
	if want.Kind() == reflect.Ptr {
		if want.IsNil() || got.IsNil() {
			return want.IsNil() == got.IsNil()
		}
		if want.Type() == blobType {
			return bytes.Equal(want.Interface().(*base.Blob).Data, got.Interface().(*base.Blob).Data)
		}
		want, got = want.Elem(), got.Elem()
	}
	if want.Kind() == reflect.Slice && want.Type().Elem().Kind() == reflect.Uint8 {
		return bytes.Equal(want.Bytes(), got.Bytes())
	}
	return reflect.DeepEqual(want.Interface(), got.Interface())
}

// showLeaf formats a leaf for error messages.
func showLeaf(v reflect.Value) string {
	if v.Kind() == reflect.Ptr && !v.IsNil() && v.Type() != blobType {
		v = v.Elem()
	}
	return fmt.Sprintf("%v", v.Interface())
}

// absentWireField is a non-optional field that the comment does not list, i.e. that was
// not on the wire.
type absentWireField struct {
	path string
	id   int16
	t    reflect.Type
}

// vecMatcher compares Go values with comment trees and collects every difference.
type vecMatcher struct {
	errs   []string
	absent []absentWireField
}

func (m *vecMatcher) fail(n *commentNode, path, format string, args ...any) {
	m.errs = append(m.errs, fmt.Sprintf("line %d: %s: %s", n.line, path, fmt.Sprintf(format, args...)))
}

// matchValue compares v with the value the entry describes.
func (m *vecMatcher) matchValue(path string, e commentEntry, v reflect.Value) {
	n := e.node
	if c, g := commentWireType(e.typ), goWireType(v.Type()); !sameWireType(c, g) {
		m.fail(n, path, "comment type %s travels as thrift type %d, Go type %s as %d", e.typ, c, v.Type(), g)
		return
	}
	switch typeClass(e.typ) {
	case "struct":
		if v.Kind() != reflect.Ptr || v.Type().Elem().Kind() != reflect.Struct || isPlaceholder(v.Type()) {
			m.fail(n, path, "comment has a struct, Go type is %s", v.Type())
			return
		}
		m.matchStruct(path, n, v)
	case "list", "set":
		if v.Kind() != reflect.Slice {
			m.fail(n, path, "comment has a %s, Go type is %s", e.typ, v.Type())
			return
		}
		if g := goWireType(v.Type().Elem()); !sameWireType(e.wire[0], g) {
			m.fail(n, path, "element wire type %d, Go elements (%s) travel as %d", e.wire[0], v.Type().Elem(), g)
		}
		if e.optional && v.IsNil() {
			m.fail(n, path, "optional %s listed but unset in Go", e.typ)
		}
		if v.Len() != e.count {
			m.fail(n, path, "%d element(s) in Go, %d in the comment", v.Len(), e.count)
			return
		}
		for i, kid := range n.kids {
			ke, err := parseEntry(kid)
			if err != nil {
				m.errs = append(m.errs, err.Error())
				continue
			}
			if ke.kind != elemLine || ke.index != i {
				m.fail(kid, path, "expected element [%d], got %q", i, kid.text)
				continue
			}
			m.matchValue(fmt.Sprintf("%s[%d]", path, i), ke, v.Index(i))
		}
	case "map":
		if v.Kind() != reflect.Map {
			m.fail(n, path, "comment has a %s, Go type is %s", e.typ, v.Type())
			return
		}
		if g := goWireType(v.Type().Key()); !sameWireType(e.wire[0], g) {
			m.fail(n, path, "key wire type %d, Go keys (%s) travel as %d", e.wire[0], v.Type().Key(), g)
		}
		if g := goWireType(v.Type().Elem()); !sameWireType(e.wire[1], g) {
			m.fail(n, path, "value wire type %d, Go values (%s) travel as %d", e.wire[1], v.Type().Elem(), g)
		}
		if e.optional && v.IsNil() {
			m.fail(n, path, "optional %s listed but unset in Go", e.typ)
		}
		if v.Len() != e.count {
			m.fail(n, path, "%d entries in Go, %d in the comment", v.Len(), e.count)
			return
		}
		keyTyp, err := mapKeyType(e.typ)
		if err != nil {
			m.fail(n, path, "%v", err)
			return
		}
		for _, kid := range n.kids {
			ke, err := parseEntry(kid)
			if err != nil {
				m.errs = append(m.errs, err.Error())
				continue
			}
			if ke.kind != keyLine {
				m.fail(kid, path, "expected a map entry, got %q", kid.text)
				continue
			}
			k, err := parseLeaf(keyTyp, ke.key, v.Type().Key())
			if err != nil {
				m.fail(kid, path, "key: %v", err)
				continue
			}
			val, ok := lookupMapKey(v, k)
			if !ok {
				m.fail(kid, path, "no entry with key %s in Go", ke.key)
				continue
			}
			m.matchValue(path+ke.name, ke, val)
		}
	default:
		want, err := parseLeaf(e.typ, e.value, v.Type())
		if err != nil {
			m.fail(n, path, "%v", err)
			return
		}
		if !leafEqual(want, v) {
			got := "<unset>"
			if v.Kind() != reflect.Ptr || !v.IsNil() {
				got = showLeaf(v)
			}
			m.fail(n, path, "Go value %s, comment value %s", got, e.value)
		}
	}
}

// lookupMapKey finds the entry of map mv whose key equals k. Placeholder keys are
// pointers, so they are compared by value rather than by identity.
func lookupMapKey(mv, k reflect.Value) (reflect.Value, bool) {
	if k.Kind() != reflect.Ptr {
		v := mv.MapIndex(k)
		return v, v.IsValid()
	}
	it := mv.MapRange()
	for it.Next() {
		if leafEqual(k, it.Key()) {
			return it.Value(), true
		}
	}
	return reflect.Value{}, false
}

// matchStruct compares the generated struct that sp points to with the field lines
// below n: every listed field must exist in Go (by id) and match, every optional Go
// field not listed must be unset, and every non-optional Go field not listed is
// recorded in m.absent (it was not on the wire) and must hold its zero value.
func (m *vecMatcher) matchStruct(path string, n *commentNode, sp reflect.Value) {
	if sp.IsNil() {
		m.fail(n, path, "struct listed but nil in Go")
		return
	}
	fields, err := genStructFields(sp.Type().Elem())
	if err != nil {
		m.fail(n, path, "%v", err)
		return
	}
	seen := map[int16]bool{}
	for _, kid := range n.kids {
		ke, err := parseEntry(kid)
		if err != nil {
			m.errs = append(m.errs, err.Error())
			continue
		}
		if ke.kind != fieldLine {
			m.fail(kid, path, "expected a field line, got %q", kid.text)
			continue
		}
		fpath := path + "." + ke.name
		if seen[ke.id] {
			m.fail(kid, fpath, "field id %d listed twice", ke.id)
			continue
		}
		seen[ke.id] = true
		f, ok := fields[ke.id]
		if !ok {
			m.fail(kid, fpath, "field id %d is on the wire but %s has no field with that id", ke.id, sp.Type().Elem())
			continue
		}
		if ke.optional != f.optional {
			m.fail(kid, fpath, "optional in the comment: %v, in Go (%s): %v", ke.optional, f.goName, f.optional)
		}
		m.matchValue(fpath, ke, sp.Elem().Field(f.index))
	}
	for _, id := range sortedFieldIDs(fields) {
		f := fields[id]
		if seen[id] {
			continue
		}
		fpath := fmt.Sprintf("%s.%s", path, f.name)
		if f.optional {
			if genFieldIsSet(sp, f) {
				m.fail(n, fpath, "optional field %d is set in Go but not listed (not on the wire)", id)
			}
			continue
		}
		fv := sp.Elem().Field(f.index)
		m.absent = append(m.absent, absentWireField{path: fpath, id: id, t: fv.Type()})
		if !fv.IsZero() {
			m.fail(n, fpath, "non-optional field %d is not on the wire, yet Go holds %v", id, fv.Interface())
		}
	}
}

// fillValue builds a Go value of type t from the entry.
func fillValue(e commentEntry, t reflect.Type) (reflect.Value, error) {
	n := e.node
	if c, g := commentWireType(e.typ), goWireType(t); !sameWireType(c, g) {
		return reflect.Value{}, fmt.Errorf("line %d: comment type %s travels as thrift type %d, Go type %s as %d", n.line, e.typ, c, t, g)
	}
	switch typeClass(e.typ) {
	case "struct":
		if t.Kind() != reflect.Ptr || t.Elem().Kind() != reflect.Struct || isPlaceholder(t) {
			return reflect.Value{}, fmt.Errorf("line %d: comment has a struct, Go type is %s", n.line, t)
		}
		p := reflect.New(t.Elem())
		return p, fillStruct(n, p)
	case "list", "set":
		if t.Kind() != reflect.Slice {
			return reflect.Value{}, fmt.Errorf("line %d: comment has a %s, Go type is %s", n.line, e.typ, t)
		}
		s := reflect.MakeSlice(t, 0, len(n.kids)) // non-nil even when empty: listed means written
		for i, kid := range n.kids {
			ke, err := parseEntry(kid)
			if err != nil {
				return s, err
			}
			if ke.kind != elemLine || ke.index != i {
				return s, fmt.Errorf("line %d: expected element [%d]", kid.line, i)
			}
			el, err := fillValue(ke, t.Elem())
			if err != nil {
				return s, err
			}
			s = reflect.Append(s, el)
		}
		return s, nil
	case "map":
		if t.Kind() != reflect.Map {
			return reflect.Value{}, fmt.Errorf("line %d: comment has a %s, Go type is %s", n.line, e.typ, t)
		}
		keyTyp, err := mapKeyType(e.typ)
		if err != nil {
			return reflect.Value{}, err
		}
		mv := reflect.MakeMapWithSize(t, len(n.kids))
		for _, kid := range n.kids {
			ke, err := parseEntry(kid)
			if err != nil {
				return mv, err
			}
			if ke.kind != keyLine {
				return mv, fmt.Errorf("line %d: expected a map entry", kid.line)
			}
			k, err := parseLeaf(keyTyp, ke.key, t.Key())
			if err != nil {
				return mv, fmt.Errorf("line %d: key: %v", kid.line, err)
			}
			val, err := fillValue(ke, t.Elem())
			if err != nil {
				return mv, err
			}
			mv.SetMapIndex(k, val)
		}
		return mv, nil
	}
	v, err := parseLeaf(e.typ, e.value, t)
	if err != nil {
		return v, fmt.Errorf("line %d: %v", n.line, err)
	}
	return v, nil
}

// fillStruct sets the fields of the generated struct that sp points to from the field
// lines below n. Every non-optional field must be listed (a response must carry all
// of them), and optional fields that are not listed must stay unset.
func fillStruct(n *commentNode, sp reflect.Value) error {
	fields, err := genStructFields(sp.Type().Elem())
	if err != nil {
		return err
	}
	seen := map[int16]bool{}
	for _, kid := range n.kids {
		ke, err := parseEntry(kid)
		if err != nil {
			return err
		}
		if ke.kind != fieldLine {
			return fmt.Errorf("line %d: expected a field line", kid.line)
		}
		f, ok := fields[ke.id]
		if !ok {
			return fmt.Errorf("line %d: field id %d (%s) has no Go field in %s", kid.line, ke.id, ke.name, sp.Type().Elem())
		}
		if seen[ke.id] {
			return fmt.Errorf("line %d: field id %d listed twice", kid.line, ke.id)
		}
		seen[ke.id] = true
		if ke.optional != f.optional {
			return fmt.Errorf("line %d: field %d optional in the comment: %v, in Go (%s): %v", kid.line, ke.id, ke.optional, f.goName, f.optional)
		}
		v, err := fillValue(ke, sp.Type().Elem().Field(f.index).Type)
		if err != nil {
			return err
		}
		sp.Elem().Field(f.index).Set(v)
	}
	for _, id := range sortedFieldIDs(fields) {
		f := fields[id]
		switch {
		case seen[id]:
		case !f.optional:
			return fmt.Errorf("line %d: non-optional field %d (%s) of %s is not listed", n.line, id, f.name, sp.Type().Elem())
		case genFieldIsSet(sp, f):
			return fmt.Errorf("line %d: optional field %d (%s) of %s is set by default but not listed", n.line, id, f.name, sp.Type().Elem())
		}
	}
	return nil
}

// payloadValue returns what the single args/result field describes: the generated
// struct itself, or the V of the bare values I64 and String.
func payloadValue(v Value) reflect.Value {
	switch x := v.(type) {
	case *I64:
		return reflect.ValueOf(&x.V).Elem()
	case *String:
		return reflect.ValueOf(&x.V).Elem()
	}
	return reflect.ValueOf(v)
}

// fillPayload fills v (a fresh NewArgs or NewResult value) from the args/result entry.
func fillPayload(e commentEntry, v Value) error {
	pv := payloadValue(v)
	if typeClass(e.typ) == "struct" {
		if pv.Kind() != reflect.Ptr {
			return fmt.Errorf("line %d: comment has a struct, Go value is %T", e.node.line, v)
		}
		return fillStruct(e.node, pv)
	}
	leaf, err := fillValue(e, pv.Type())
	if err != nil {
		return err
	}
	pv.Set(leaf)
	return nil
}

// hasMultiEntryMap reports whether any map below n has more than one entry: Go maps
// encode in random order, so such a frame cannot be compared byte for byte.
func hasMultiEntryMap(n *commentNode) bool {
	for _, kid := range n.kids {
		if e, err := parseEntry(kid); err == nil && typeClass(e.typ) == "map" && e.count > 1 {
			return true
		}
		if hasMultiEntryMap(kid) {
			return true
		}
	}
	return false
}

// encodeZeroField returns the wire bytes of field id holding the zero value of Go
// type t (scalars only): what our encoder adds for a non-optional field that an older
// client left out.
func encodeZeroField(id int16, t reflect.Type) ([]byte, error) {
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{})
	wt := goWireType(t)
	if err := p.WriteFieldBegin(ctx, "", wt, id); err != nil {
		return nil, err
	}
	var err error
	switch wt {
	case thrift.BOOL:
		err = p.WriteBool(ctx, false)
	case thrift.BYTE:
		err = p.WriteByte(ctx, 0)
	case thrift.I16:
		err = p.WriteI16(ctx, 0)
	case thrift.I32:
		err = p.WriteI32(ctx, 0)
	case thrift.I64:
		err = p.WriteI64(ctx, 0)
	case thrift.DOUBLE:
		err = p.WriteDouble(ctx, 0)
	case thrift.STRING:
		err = p.WriteString(ctx, "")
	default:
		return nil, fmt.Errorf("zero value of %s (thrift type %d) not supported", t, wt)
	}
	if err != nil {
		return nil, err
	}
	if err := p.Flush(ctx); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// isSingleInsertion reports whether got is want with ins inserted at one position.
func isSingleInsertion(got, want, ins []byte) bool {
	if len(got) != len(want)+len(ins) {
		return false
	}
	for k := 0; k <= len(want); k++ {
		if bytes.Equal(got[:k], want[:k]) && bytes.Equal(got[k:k+len(ins)], ins) && bytes.Equal(got[k+len(ins):], want[k:]) {
			return true
		}
	}
	return false
}
