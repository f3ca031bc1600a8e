package rpc

// Golden-vector tests: our codec against every frame of the shared test vectors
// (frames produced by the official go-client, see ../shared/vectors/README.md).
//
// Requests: the frame reader must take exactly one frame, the header and message
// envelope must match the comment, the args must decode to exactly the documented
// fields, and re-encoding must give the original bytes back.
//
// Responses: the response is built from the documented values (not from the bytes),
// encoded, and compared with the golden bytes; then the golden bytes are decoded and
// compared with the documented values as well.
//
// The documented values are read from each file's "decoded content" comment by the
// parser in vectors_tree_test.go; no expected value is copied into this file.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc/golden"
)

// wantFrameFiles is the number of frame files the vectors README announces; a
// partial copy of the vectors must not pass silently.
const wantFrameFiles = 219

func vectorsDir(t *testing.T) string { return golden.Dir(t) }

// frameFiles lists the frame files whose names start with prefix, sorted.
func frameFiles(t *testing.T, prefix string) (string, []string) {
	t.Helper()
	dir := filepath.Join(vectorsDir(t), "frames")
	paths, err := filepath.Glob(filepath.Join(dir, prefix+"*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatalf("no %s*.hex files in %s", prefix, dir)
	}
	return dir, names
}

func mustLoad(t *testing.T, path string) *vectorFile {
	t.Helper()
	v, err := loadVector(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// topLineValues returns the key=value pairs of a top-level content line, failing the
// test when the line is missing.
func topLineValues(t *testing.T, v *vectorFile, prefix string) (*commentNode, map[string]string) {
	t.Helper()
	n := v.topLine(prefix)
	if n == nil {
		t.Fatalf("no %q line in the decoded content", prefix)
	}
	kv, err := keyValues(n.text)
	if err != nil {
		t.Fatalf("line %d: %v", n.line, err)
	}
	return n, kv
}

// lineValuesBelow merges the key=value pairs of the lines directly below n.
func lineValuesBelow(t *testing.T, n *commentNode) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kid := range n.kids {
		kv, err := keyValues(kid.text)
		if err != nil {
			t.Fatalf("line %d: %v", kid.line, err)
		}
		for k, val := range kv {
			out[k] = val
		}
	}
	return out
}

// intValue parses a documented integer (decimal, or hex with 0x).
func intValue(t *testing.T, kv map[string]string, key string) int64 {
	t.Helper()
	s, ok := kv[key]
	if !ok {
		t.Fatalf("%s not documented", key)
	}
	var n uint64
	var err error
	if h, isHex := strings.CutPrefix(s, "0x"); isHex {
		n, err = strconv.ParseUint(h, 16, 64)
	} else {
		var i int64
		i, err = strconv.ParseInt(s, 10, 64)
		n = uint64(i)
	}
	if err != nil {
		t.Fatalf("%s=%q: %v", key, s, err)
	}
	return int64(n)
}

// messageTypeText renders a message type the way the comments do, e.g. "CALL(1)".
func messageTypeText(typ thrift.TMessageType) string {
	names := map[thrift.TMessageType]string{thrift.CALL: "CALL", thrift.REPLY: "REPLY", thrift.EXCEPTION: "EXCEPTION", thrift.ONEWAY: "ONEWAY"}
	return fmt.Sprintf("%s(%d)", names[typ], typ)
}

// payloadLine returns the single args/result field line below n and checks its id.
func payloadLine(t *testing.T, n *commentNode, wantID int16) commentEntry {
	t.Helper()
	if len(n.kids) != 1 {
		t.Fatalf("line %d: %d fields listed, want exactly one", n.line, len(n.kids))
	}
	e, err := parseEntry(n.kids[0])
	if err != nil {
		t.Fatal(err)
	}
	if e.kind != fieldLine || e.id != wantID {
		t.Fatalf("line %d: want field %d, got %q", e.node.line, wantID, e.node.text)
	}
	return e
}

// matchPayload compares a decoded args/result value with the documented entry.
func matchPayload(e commentEntry, v Value) *vecMatcher {
	m := &vecMatcher{}
	m.matchValue(e.name, e, payloadValue(v))
	return m
}

func reportMatch(t *testing.T, what string, m *vecMatcher) {
	t.Helper()
	for _, err := range m.errs {
		t.Errorf("%s: %s", what, err)
	}
}

// unreadBytes returns how many bytes the protocol has not consumed.
func unreadBytes(p thrift.TProtocol) uint64 {
	return p.Transport().RemainingBytes()
}

// TestVectorRequests checks every req.*.hex frame: framing, header, envelope, every
// documented args field, and byte-exact re-encoding.
func TestVectorRequests(t *testing.T) {
	dir, names := frameFiles(t, "req.")
	passed := 0
	for _, name := range names {
		ok := t.Run(name, func(t *testing.T) {
			checkRequestVector(t, mustLoad(t, filepath.Join(dir, name)))
		})
		if ok {
			passed++
		}
	}
	t.Logf("%d of %d request frames match", passed, len(names))
}

func checkRequestVector(t *testing.T, v *vectorFile) {
	ctx := context.Background()
	name := filepath.Base(v.name)

	// Exactly one frame, nothing left over.
	br := bufio.NewReader(bytes.NewReader(v.frame))
	f, err := ReadRequest(br, 0)
	if err != nil {
		t.Fatalf("ReadRequest: %v", err)
	}
	if _, err := ReadRequest(br, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("after the frame: %v, want io.EOF (leftover bytes)", err)
	}

	// Header.
	hn := v.topLine("header (THFT version")
	if hn == nil {
		t.Fatal("no header description")
	}
	hkv := lineValuesBelow(t, hn)
	if hkv["magic"] != "THFT" || string(v.frame[:4]) != "THFT" {
		t.Errorf("magic %q in the comment, %q in the frame", hkv["magic"], v.frame[:4])
	}
	if got, want := int64(f.Header.Version), intValue(t, hkv, "header_version"); got != want {
		t.Fatalf("header version %d, comment says %d", got, want)
	}
	if got, want := int64(len(f.Body)), intValue(t, hkv, "body_length"); got != want {
		t.Errorf("body length %d, comment says %d", got, want)
	}
	switch f.Header.Version {
	case 0:
		// The reader ignores the two CRC words; check the frame bytes themselves.
		raw := map[string]int64{
			"header_length": int64(binary.BigEndian.Uint32(v.frame[8:12])),
			"header_crc32":  int64(binary.BigEndian.Uint32(v.frame[12:16])),
			"body_crc32":    int64(binary.BigEndian.Uint32(v.frame[20:24])),
		}
		for key, got := range raw {
			if want := intValue(t, hkv, key); got != want {
				t.Errorf("%s %d, comment says %d", key, got, want)
			}
		}
		got := map[string]int64{
			"app_id":            int64(f.Header.AppID),
			"partition_index":   int64(f.Header.PartitionIndex),
			"client_timeout_ms": int64(f.Header.ClientTimeoutMS),
			"thread_hash":       int64(f.Header.ThreadHash),
			"partition_hash":    int64(f.Header.PartitionHash),
		}
		for key, g := range got {
			if want := intValue(t, hkv, key); g != want {
				t.Errorf("header %s = %d, comment says %d", key, g, want)
			}
		}
	case 1:
		if got, want := int64(len(v.frame)-headerV1Prefix-len(f.Body)), intValue(t, hkv, "meta_length"); got != want {
			t.Errorf("meta length %d, comment says %d", got, want)
		}
		// The v1 routing fields travel in a request_meta struct: match the header we
		// decoded, put back into that struct, against the documented meta fields.
		mn := v.topLine("request meta")
		if mn == nil {
			t.Fatal("no request meta description")
		}
		meta := &layer2.RequestMeta{
			AppID:               f.Header.AppID,
			PartitionIndex:      f.Header.PartitionIndex,
			ClientTimeout:       f.Header.ClientTimeoutMS,
			ClientPartitionHash: int64(f.Header.PartitionHash),
			IsBackupRequest:     f.Header.IsBackupRequest,
		}
		m := &vecMatcher{}
		m.matchStruct("request_meta", mn, reflect.ValueOf(meta))
		reportMatch(t, "request meta", m)
		if len(m.absent) != 0 {
			t.Errorf("request meta fields not documented: %+v", m.absent)
		}
	default:
		t.Fatalf("unexpected header version %d", f.Header.Version)
	}

	// Message envelope.
	bn, bkv := topLineValues(t, v, "body: thrift message begin")
	mb, p, err := ParseCall(f.Body)
	if err != nil {
		t.Fatalf("ParseCall: %v", err)
	}
	if mb.Name != bkv["name"] {
		t.Errorf("message name %q, comment says %q", mb.Name, bkv["name"])
	}
	if mb.Type != thrift.CALL || messageTypeText(mb.Type) != bkv["type"] {
		t.Errorf("message type %s, want CALL; comment says %s", messageTypeText(mb.Type), bkv["type"])
	}
	if got, want := int64(mb.SeqID), intValue(t, bkv, "seqid"); got != want {
		t.Errorf("seqid %d, comment says %d", got, want)
	}

	// Args.
	method, ok := Catalogue()[mb.Name]
	if !ok {
		t.Fatalf("%s is not in the catalogue", mb.Name)
	}
	args := method.NewArgs()
	if err := DecodeArgs(ctx, p, args); err != nil {
		t.Fatalf("DecodeArgs: %v", err)
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		t.Fatalf("ReadMessageEnd: %v", err)
	}
	if n := unreadBytes(p); n != 0 {
		t.Errorf("%d body bytes left after the args struct", n)
	}
	e := payloadLine(t, bn, 1)
	m := matchPayload(e, args)
	reportMatch(t, "args", m)

	// Re-encoding. A non-optional field that is absent from the wire can only come
	// from the 2022 client, whose IDL predates it (start_bulk_load_request field 5
	// ingest_behind, see the README); our encoder always writes such a field, so the
	// re-encoding must be the original body plus exactly that field with its zero value.
	body, err := EncodeCall(mb.Name, mb.SeqID, args)
	if err != nil {
		t.Fatalf("EncodeCall: %v", err)
	}
	switch {
	case len(m.absent) == 0:
		if !bytes.Equal(body, f.Body) {
			t.Errorf("re-encoded body differs:\n got %x\nwant %x", body, f.Body)
		}
	case !strings.HasPrefix(name, "req.go-client-2022."):
		t.Errorf("non-optional fields missing from a current-client request: %+v", m.absent)
	case len(m.absent) > 1:
		t.Errorf("more than one missing non-optional field: %+v", m.absent)
	default:
		ins, err := encodeZeroField(m.absent[0].id, m.absent[0].t)
		if err != nil {
			t.Fatalf("%s: %v", m.absent[0].path, err)
		}
		if !isSingleInsertion(body, f.Body, ins) {
			t.Errorf("re-encoded body is not the original plus %x (%s):\n got %x\nwant %x", ins, m.absent[0].path, body, f.Body)
		} else {
			t.Logf("2022 request lacks %s; re-encoding adds it as %x", m.absent[0].path, ins)
		}
	}

	// The whole frame from the decoded header and the original body.
	var frame []byte
	if f.Header.Version == 0 {
		frame = AppendRequestV0(nil, f.Header, f.Body)
	} else if frame, err = AppendRequestV1(nil, f.Header, f.Body); err != nil {
		t.Fatalf("AppendRequestV1: %v", err)
	}
	if !bytes.Equal(frame, v.frame) {
		t.Errorf("re-encoded frame differs:\n got %x\nwant %x", frame, v.frame)
	}
}

// TestVectorResponses checks every resp.*.hex frame: the response built from the
// documented values must encode to the golden bytes, and the golden bytes must
// decode to the documented values.
//
// Map ordering: Go ranges over maps in random order, so a map with more than one
// entry cannot be encoded deterministically. The only such map in the vectors is
// `progress` in resp.RPC_CM_QUERY_DUPLICATION_ACK.ok. For frames with a multi-entry
// map the encoding is checked for length and then decoded and compared with the
// documented values instead of byte for byte.
func TestVectorResponses(t *testing.T) {
	dir, names := frameFiles(t, "resp.")
	passed, unordered := 0, 0
	for _, name := range names {
		v := mustLoad(t, filepath.Join(dir, name))
		if hasMultiEntryMap(v.content) {
			unordered++
		}
		ok := t.Run(name, func(t *testing.T) {
			checkResponseVector(t, dir, v)
		})
		if ok {
			passed++
		}
	}
	t.Logf("%d of %d response frames match (%d compared after decoding because of map order)", passed, len(names), unordered)
}

func checkResponseVector(t *testing.T, dir string, v *vectorFile) {
	_, tkv := topLineValues(t, v, "total_length=")
	if got, want := int64(len(v.frame)), intValue(t, tkv, "total_length"); got != want {
		t.Errorf("frame is %d bytes, total_length says %d", got, want)
	}
	_, ekv := topLineValues(t, v, "error_name=")
	errName := ekv["error_name"]
	_, mkv := topLineValues(t, v, "thrift message begin")
	ackName := mkv["name"]
	seqID := int32(intValue(t, mkv, "seqid"))
	if mkv["type"] != messageTypeText(thrift.REPLY) {
		t.Errorf("message type %s in the comment, want %s", mkv["type"], messageTypeText(thrift.REPLY))
	}
	code, ok := strings.CutSuffix(ackName, "_ACK")
	if !ok {
		t.Fatalf("reply name %q does not end in _ACK", ackName)
	}
	method, ok := Catalogue()[code]
	if !ok || method.OneWay() {
		t.Fatalf("%s is not a two-way RPC of the catalogue", code)
	}

	// The seqid is the one of the main request vector of the same RPC, if any.
	if rv, err := loadVector(filepath.Join(dir, "frames", "req.go-client."+code+".hex")); err == nil {
		_, rkv := topLineValues(t, rv, "body: thrift message begin")
		if want := int32(intValue(t, rkv, "seqid")); seqID != want {
			t.Errorf("seqid %d, the main request vector has %d", seqID, want)
		}
	}

	// The documented result: present exactly for ERR_OK.
	rn := v.topLine("result struct")
	if (rn != nil) != (errName == base.ErrOK) {
		t.Fatalf("error_name %s but result struct documented: %v", errName, rn != nil)
	}
	if rn == nil && v.topLine("no result struct follows") == nil {
		t.Fatal("neither a result struct nor its absence is documented")
	}

	// Encode from the documented values.
	var result Value
	var e commentEntry
	if rn != nil {
		e = payloadLine(t, rn, 0)
		result = method.NewResult()
		if err := fillPayload(e, result); err != nil {
			t.Fatalf("building the result from the comment: %v", err)
		}
		// The filled value must itself satisfy the matcher (guards the filler).
		reportMatch(t, "filled result", matchPayload(e, result))
	}
	got, err := EncodeResponse(errName, code, seqID, result)
	if err != nil {
		t.Fatalf("EncodeResponse: %v", err)
	}
	if rn != nil && hasMultiEntryMap(v.content) {
		if len(got) != len(v.frame) {
			t.Errorf("encoded %d bytes, golden frame has %d", len(got), len(v.frame))
		}
		decodeAndMatch(t, "our encoding", got, errName, ackName, seqID, method, rn, e)
	} else if !bytes.Equal(got, v.frame) {
		t.Errorf("encoded response differs:\n got %x\nwant %x", got, v.frame)
	}

	// Decode the golden bytes.
	decodeAndMatch(t, "golden frame", v.frame, errName, ackName, seqID, method, rn, e)
}

// decodeAndMatch reads one response frame, checks its envelope and matches its
// result (if any) against the documented entry.
func decodeAndMatch(t *testing.T, what string, frame []byte, errName, ackName string, seqID int32, method Method, rn *commentNode, e commentEntry) {
	t.Helper()
	ctx := context.Background()
	br := bufio.NewReader(bytes.NewReader(frame))
	rest, err := ReadResponse(br, 0)
	if err != nil {
		t.Fatalf("%s: ReadResponse: %v", what, err)
	}
	if _, err := ReadResponse(br, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: after the frame: %v, want io.EOF (leftover bytes)", what, err)
	}
	head, p, err := ParseResponse(rest)
	if err != nil {
		t.Fatalf("%s: ParseResponse: %v", what, err)
	}
	if head.ErrorName != errName || head.Name != ackName || head.Type != thrift.REPLY || head.SeqID != seqID {
		t.Errorf("%s: head %+v, want error %s name %s REPLY seqid %d", what, head, errName, ackName, seqID)
	}
	if rn != nil {
		res := method.NewResult()
		if err := DecodeResult(ctx, p, res); err != nil {
			t.Fatalf("%s: DecodeResult: %v", what, err)
		}
		m := matchPayload(e, res)
		reportMatch(t, what, m)
		if len(m.absent) != 0 {
			t.Errorf("%s: non-optional fields missing from the response: %+v", what, m.absent)
		}
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		t.Fatalf("%s: ReadMessageEnd: %v", what, err)
	}
	if n := unreadBytes(p); n != 0 {
		t.Errorf("%s: %d bytes left after the message", what, n)
	}
}

// TestVectorIndex cross-checks index.tsv with the frame files: every listed file
// exists, every file is listed, and kind, message name, seqid and frame error agree
// with the frame bytes.
func TestVectorIndex(t *testing.T) {
	dir := vectorsDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "index.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	_, reqs := frameFiles(t, "req.")
	_, resps := frameFiles(t, "resp.")
	onDisk := map[string]bool{}
	for _, n := range append(reqs, resps...) {
		onDisk[n] = true
	}
	all, _ := filepath.Glob(filepath.Join(dir, "frames", "*.hex"))
	if len(all) != len(onDisk) {
		t.Errorf("%d frame files, %d of them named req.* or resp.*", len(all), len(onDisk))
	}
	if len(all) != wantFrameFiles {
		t.Errorf("%d frame files, the README announces %d", len(all), wantFrameFiles)
	}

	listed := map[string]bool{}
	header := true
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if header { // column names
			header = false
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 7 {
			t.Errorf("index.tsv line %d: %d columns", i+1, len(cols))
			continue
		}
		file, kind, msg, seq, errName := cols[0], cols[1], cols[2], cols[5], cols[6]
		listed[file] = true
		if !onDisk[file] {
			t.Errorf("index.tsv lists %s, which is missing", file)
			continue
		}
		frame := mustLoad(t, filepath.Join(dir, "frames", file)).frame
		var mb MessageBegin
		gotErr := "-"
		switch kind {
		case "req":
			f, err := ReadRequest(bufio.NewReader(bytes.NewReader(frame)), 0)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			if mb, _, err = ParseCall(f.Body); err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
		case "resp":
			rest, err := ReadResponse(bufio.NewReader(bytes.NewReader(frame)), 0)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			head, _, err := ParseResponse(rest)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			mb, gotErr = head.MessageBegin, head.ErrorName
		default:
			t.Errorf("%s: unknown kind %q", file, kind)
			continue
		}
		if !strings.HasPrefix(file, kind+".") || mb.Name != msg || strconv.Itoa(int(mb.SeqID)) != seq || gotErr != errName {
			t.Errorf("%s: frame has %s %s seqid %d error %s; index says %s %s seqid %s error %s",
				file, kind, mb.Name, mb.SeqID, gotErr, kind, msg, seq, errName)
		}
	}
	for f := range onDisk {
		if !listed[f] {
			t.Errorf("%s is not listed in index.tsv", f)
		}
	}
}

// TestVectorCRC64 checks PartitionHash and PartitionIndex against crc64.tsv.
func TestVectorCRC64(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(vectorsDir(t), "crc64.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	header := true
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if header {
			header = false
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 5 {
			t.Errorf("crc64.tsv line %d: %d columns", i+1, len(cols))
			continue
		}
		key, err1 := hex.DecodeString(cols[0])
		want, err2 := strconv.ParseUint(cols[1], 16, 64)
		if err1 != nil || err2 != nil {
			t.Errorf("crc64.tsv line %d: %v %v", i+1, err1, err2)
			continue
		}
		rows++
		got := PartitionHash(key)
		if got != want {
			t.Errorf("line %d: PartitionHash(%x) = %016x, want %016x", i+1, key, got, want)
		}
		for j, count := range []int{4, 8, 16} {
			wantIdx, err := strconv.Atoi(cols[2+j])
			if err != nil {
				t.Errorf("crc64.tsv line %d: %v", i+1, err)
				continue
			}
			if idx := PartitionIndex(want, count); idx != wantIdx {
				t.Errorf("line %d: PartitionIndex(%016x, %d) = %d, want %d", i+1, want, count, idx, wantIdx)
			}
		}
	}
	if rows != 30 { // the README documents 30 keys
		t.Errorf("crc64.tsv has %d rows, want 30", rows)
	}
}

// fieldRecorder is a thrift protocol that records the field ids written at each
// struct depth, so a test can see which fields an encoder emits.
type fieldRecorder struct {
	thrift.TProtocol
	depth int
	ids   map[int][]int16 // depth -> field ids in write order
}

func (r *fieldRecorder) WriteStructBegin(ctx context.Context, name string) error {
	r.depth++
	return r.TProtocol.WriteStructBegin(ctx, name)
}

func (r *fieldRecorder) WriteStructEnd(ctx context.Context) error {
	r.depth--
	return r.TProtocol.WriteStructEnd(ctx)
}

func (r *fieldRecorder) WriteFieldBegin(ctx context.Context, name string, typ thrift.TType, id int16) error {
	r.ids[r.depth] = append(r.ids[r.depth], id)
	return r.TProtocol.WriteFieldBegin(ctx, name, typ, id)
}

// recordFields encodes v and returns the field ids written per struct depth.
func recordFields(t *testing.T, v Value) map[int][]int16 {
	t.Helper()
	r := &fieldRecorder{
		TProtocol: thrift.NewTBinaryProtocolConf(thrift.NewTMemoryBuffer(), &thrift.TConfiguration{}),
		ids:       map[int][]int16{},
	}
	if err := v.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r.ids
}

func containsID(ids []int16, want ...int16) bool {
	for _, id := range ids {
		for _, w := range want {
			if id == w {
				return true
			}
		}
	}
	return false
}

// TestVectorNoHostPortFieldsUnlessSet: the 2022 go-client (admin-cli) cannot decode
// the hp_* fields (README "Special and negative vectors"), so encoding a partition
// configuration or node info without setting them must never emit field ids 9, 10,
// 11 (partition_configuration) or 3 (node_info), even with every other field set.
func TestVectorNoHostPortFieldsUnlessSet(t *testing.T) {
	addr := func(port uint16) *base.RPCAddress { return base.MustParseRPCAddress(fmt.Sprintf("127.0.0.1:%d", port)) }
	pc := func() *layer2.PartitionConfiguration {
		return &layer2.PartitionConfiguration{
			Pid:                 base.NewGpid(2, 1),
			Ballot:              3,
			MaxReplicaCount:     3,
			Primary:             addr(34801),
			Secondaries:         []*base.RPCAddress{addr(34802), addr(34803)},
			LastDrops:           []*base.RPCAddress{},
			LastCommittedDecree: 1000,
		}
	}
	resp := &layer2.QueryCfgResponse{
		Err: base.NewErrorCode(base.ErrOK), AppID: 2, PartitionCount: 2, IsStateful: true,
		Partitions: []*layer2.PartitionConfiguration{pc(), pc()},
	}
	// query_cfg_response is depth 1, its partitions depth 2.
	ids := recordFields(t, resp)
	if len(ids[2]) != 2*8 || containsID(ids[2], 9, 10, 11) {
		t.Errorf("partition_configuration fields written: %v, want ids 1..8 twice", ids[2])
	}
	// Control: the recorder sees hp_* fields once they are set.
	withHP := pc()
	withHP.HpPrimary = &base.HostPort{Host: "localhost", Port: 34801, Type: 1}
	if ids := recordFields(t, withHP); !containsID(ids[1], 9) || containsID(ids[1], 10, 11) {
		t.Errorf("with hp_primary set: fields %v, want 9 and not 10, 11", ids[1])
	}

	nodes := &admin.ConfigurationListNodesResponse{
		Err: base.NewErrorCode(base.ErrOK),
		Infos: []*admin.NodeInfo{
			{Status: admin.NodeStatus_NS_ALIVE, Node: addr(34801)},
			{Status: admin.NodeStatus_NS_UNALIVE, Node: addr(34802)},
		},
	}
	ids = recordFields(t, nodes)
	if len(ids[2]) != 2*2 || containsID(ids[2], 3) {
		t.Errorf("node_info fields written: %v, want ids 1, 2 twice", ids[2])
	}
	withHPNode := &admin.NodeInfo{Status: admin.NodeStatus_NS_ALIVE, Node: addr(34801), HpNode: &base.HostPort{Host: "localhost", Port: 34801, Type: 1}}
	if ids := recordFields(t, withHPNode); !containsID(ids[1], 3) {
		t.Errorf("with hp_node set: fields %v, want 3", ids[1])
	}
}
