package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/pegasusgo/pegasus/shell/lex"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// dataClient returns the data client, opening it on first use. Each operation
// is bounded by its context (the "timeout" setting), not by the client.
func (s *Shell) dataClient() (*kv.Client, error) {
	if s.data != nil {
		return s.data, nil
	}
	c, err := kv.NewClient(kv.Config{MetaServers: s.opts.MetaServers, OperationTimeout: time.Hour})
	if err != nil {
		return nil, fmt.Errorf("open the data client: %w", err)
	}
	s.data = c
	s.dataTables = map[string]*kv.Table{}
	return c, nil
}

func (s *Shell) closeData() {
	if s.data != nil {
		s.data.Close()
		s.data, s.dataTables = nil, nil
	}
}

// openTable returns the routing handle of a table, cached per session.
func (s *Shell) openTable(ctx context.Context, name string) (*kv.Table, error) {
	c, err := s.dataClient()
	if err != nil {
		return nil, err
	}
	if t, ok := s.dataTables[name]; ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.MetaTimeout)
	defer cancel()
	t, err := c.OpenTable(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %s", name, kv.ErrorCode(err))
	}
	s.dataTables[name] = t
	return t, nil
}

// currentTable opens the table selected by "use".
func (s *Shell) currentTable(ctx context.Context) (*kv.Table, error) {
	app, err := s.needApp()
	if err != nil {
		return nil, err
	}
	return s.openTable(ctx, app)
}

// opCtx bounds one data operation by the "timeout" setting.
func (s *Shell) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.dataTimeout)
}

// dataErr prints a failed data operation as upstream: "ERROR: <code>".
func dataErr(err error) error {
	var ke *kv.Error
	if errors.As(err, &ke) {
		// These two come with an explanation worth showing: what the client refused
		// to send, and why the server may have refused a write (its frame error
		// carries no message).
		if ke.Err != nil && (ke.Code == "ERR_INVALID_PARAMETERS" || ke.Code == "ERR_INVALID_DATA") {
			return fmt.Errorf("%s: %v", ke.Code, ke.Err)
		}
		return errors.New(ke.Code)
	}
	return err
}

func (s *Shell) esc(b []byte) string { return lex.Escape(b, s.escapeAll) }

// requestInfo prints the footer of data commands: where the request went.
func (s *Shell) requestInfo(t *kv.Table, hashKey []byte) {
	pidx := t.PartitionOf(hashKey)
	fmt.Fprintln(s.err)
	fmt.Fprintf(s.err, "app_id          : %d\n", t.AppID())
	fmt.Fprintf(s.err, "partition_index : %d\n", pidx)
	fmt.Fprintf(s.err, "server          : %s\n", t.Primary(pidx))
}

func (s *Shell) registerData() {
	rangeOpts := opts.Set{
		{Short: "a", Long: "start_inclusive", Arg: "true|false", Help: "include the start sort key (true)"},
		{Short: "b", Long: "stop_inclusive", Arg: "true|false", Help: "include the stop sort key (false)"},
		{Short: "s", Long: "sort_key_filter_type", Arg: "anywhere|prefix|postfix", Help: "filter on sort keys"},
		{Short: "y", Long: "sort_key_filter_pattern", Arg: "str", Help: "sort key filter pattern"},
	}
	valueOpts := opts.Set{
		{Short: "v", Long: "value_filter_type", Arg: "anywhere|prefix|postfix|exact", Help: "filter on values"},
		{Short: "z", Long: "value_filter_pattern", Arg: "str", Help: "value filter pattern"},
	}
	hashOpts := opts.Set{
		{Short: "h", Long: "hash_key_filter_type", Arg: "anywhere|prefix|postfix", Help: "filter on hash keys"},
		{Short: "x", Long: "hash_key_filter_pattern", Arg: "str", Help: "hash key filter pattern"},
		{Short: "s", Long: "sort_key_filter_type", Arg: "anywhere|prefix|postfix", Help: "filter on sort keys"},
		{Short: "y", Long: "sort_key_filter_pattern", Arg: "str", Help: "sort key filter pattern"},
	}
	join := func(sets ...opts.Set) opts.Set {
		var out opts.Set
		for _, s := range sets {
			out = append(out, s...)
		}
		return out
	}
	optOut := opts.Option{Short: "o", Long: "output", Arg: "file_name", Help: "write the records to a file"}
	optMax := opts.Option{Short: "n", Long: "max_count", Arg: "num", Help: "stop after this many records"}
	optTimeout := opts.Option{Short: "t", Long: "timeout_ms", Arg: "num", Help: "timeout of each request"}
	optDetailed := opts.Option{Short: "d", Long: "detailed", Help: "print where each record comes from"}
	optNoValue := opts.Option{Short: "i", Long: "no_value", Help: "keys only"}

	s.add(&command{name: "hash", args: "<hash_key> <sort_key>", help: "show the hash and partition of a key", run: cmdHash})
	s.add(&command{name: "set", args: "<hash_key> <sort_key> <value> [ttl_in_seconds]", help: "write a value", run: cmdSet})
	s.add(&command{name: "multi_set", args: "<hash_key> <sort_key> <value> [sort_key value...]", help: "write several sort keys of a hash key", run: cmdMultiSet})
	s.add(&command{name: "get", args: "<hash_key> <sort_key>", help: "read a value", run: cmdGet})
	s.add(&command{name: "multi_get", args: "<hash_key> [sort_key...]", help: "read sort keys of a hash key (all when none given)", run: cmdMultiGet})
	s.add(&command{name: "multi_get_range", args: "<hash_key> <start_sort_key> <stop_sort_key>", help: "read a range of sort keys",
		opts: join(rangeOpts, opts.Set{optMax, optNoValue, {Short: "r", Long: "reverse", Help: "read from the stop end"}}), run: cmdMultiGetRange})
	s.add(&command{name: "multi_get_sortkeys", args: "<hash_key>", help: "list the sort keys of a hash key", run: cmdMultiGetSortKeys})
	s.add(&command{name: "del", args: "<hash_key> <sort_key>", help: "delete a value", run: cmdDel})
	s.add(&command{name: "multi_del", args: "<hash_key> <sort_key> [sort_key...]", help: "delete sort keys of a hash key", run: cmdMultiDel})
	s.add(&command{name: "multi_del_range", args: "<hash_key> <start_sort_key> <stop_sort_key>", help: "delete a range of sort keys",
		opts: join(rangeOpts, opts.Set{optOut, {Short: "i", Long: "silent", Help: "do not print the deleted keys"}}), run: cmdMultiDelRange})
	s.add(&command{name: "incr", args: "<hash_key> <sort_key> [increment]", help: "add to an integer value", run: cmdIncr})
	casOpts := opts.Set{
		{Short: "c", Long: "check_sort_key", Arg: "str", Help: "the sort key checked"},
		{Short: "t", Long: "check_type", Arg: "str", Help: "not_exist, exist, match_prefix, int_less, ..."},
		{Short: "o", Long: "check_operand", Arg: "str", Help: "operand of the check"},
	}
	s.add(&command{name: "check_and_set", args: "<hash_key>", help: "set a value if a check passes",
		opts: join(casOpts, opts.Set{
			{Short: "s", Long: "set_sort_key", Arg: "str", Help: "the sort key set"},
			{Short: "v", Long: "set_value", Arg: "str", Help: "the value set"},
			{Short: "l", Long: "set_value_ttl_seconds", Arg: "num", Help: "TTL of the value set"},
			{Short: "r", Long: "return_check_value", Help: "print the checked value"},
		}), run: cmdCheckAndSet})
	s.add(&command{name: "check_and_mutate", args: "<hash_key>", help: "apply mutations (read from the next lines) if a check passes",
		opts: join(casOpts, opts.Set{{Short: "r", Long: "return_check_value", Help: "print the checked value"}}), run: cmdCheckAndMutate})
	s.add(&command{name: "exist", args: "<hash_key> <sort_key>", help: "tell whether a key exists", run: cmdExist})
	s.add(&command{name: "count", args: "<hash_key>", help: "count the sort keys of a hash key", run: cmdCount})
	s.add(&command{name: "ttl", args: "<hash_key> <sort_key>", help: "show the time to live of a key", run: cmdTTL})
	s.add(&command{name: "hash_scan", args: "<hash_key> <start_sort_key> <stop_sort_key>", help: "scan a range of sort keys",
		opts: join(rangeOpts, valueOpts, opts.Set{optOut, optMax, optTimeout, optDetailed, optNoValue}), run: cmdHashScan})
	s.add(&command{name: "full_scan", help: "scan the whole table",
		opts: join(hashOpts, valueOpts, opts.Set{optOut, optMax, optTimeout, optDetailed, optNoValue,
			{Short: "p", Long: "partition", Arg: "num", Help: "only this partition"}}), run: cmdFullScan})
	s.add(&command{name: "copy_data", help: "copy the records of the current table to another table",
		opts: join(opts.Set{
			{Short: "c", Long: "target_cluster_name", Arg: "str", Help: "target cluster ([pegasus.clusters] name or meta list)"},
			{Short: "a", Long: "target_app_name", Arg: "str", Help: "target table"},
			{Short: "n", Long: "no_ttl", Help: "do not keep the TTL of records"},
		}, hashOpts, valueOpts, opts.Set{optTimeout}), run: cmdCopyData})
	s.add(&command{name: "clear_data", help: "delete the records of the current table",
		opts: join(hashOpts, valueOpts, opts.Set{optTimeout, {Short: "f", Long: "force", Help: "really delete"}}), run: cmdClearData})
	s.add(&command{name: "count_data", help: "count the records of the current table (estimate, or -c to scan)",
		opts: join(opts.Set{
			{Short: "c", Long: "precise", Help: "scan and count exactly"},
			{Short: "p", Long: "partition", Arg: "num", Help: "only this partition"},
			optTimeout,
			{Short: "d", Long: "diff_hash_key", Help: "also count distinct hash keys"},
			{Short: "a", Long: "stat_size", Help: "also sum key and value sizes"},
		}, hashOpts, valueOpts), run: cmdCountData})
}

func arg(r *opts.Result, i int) []byte { return []byte(r.Args[i]) }

func needArgs(r *opts.Result, min, max int) error {
	if len(r.Args) < min || (max >= 0 && len(r.Args) > max) {
		return badUsage("")
	}
	return nil
}

func cmdHash(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, 2); err != nil {
		return err
	}
	hk, sk := arg(r, 0), arg(r, 1)
	h := rpc.PartitionHash(hk)
	if len(hk) == 0 {
		h = rpc.PartitionHash(sk)
	}
	t := table.NewKV("").KV("key_hash", h)
	if s.currentApp != "" {
		cfg, err := s.queryApp(ctx, s.currentApp)
		if err != nil {
			return err
		}
		if cfg.PartitionCount <= 0 {
			return fmt.Errorf("table %s has no partitions", s.currentApp)
		}
		pidx := rpc.PartitionIndex(h, int(cfg.PartitionCount))
		t.KV("app_name", s.currentApp).KV("app_id", cfg.AppID).KV("partition_count", cfg.PartitionCount).KV("partition_index", pidx)
		if pidx < len(cfg.Partitions) {
			pc := cfg.Partitions[pidx]
			t.KV("primary", addrOrDash(pc.Primary)).KV("secondaries", strings.Trim(addrList(pc.Secondaries), "[]"))
		}
	}
	return table.Single(s.out, false, t)
}

// parseTTL reads a TTL in seconds (0 = none). A TTL past kv.MaxTTL is refused with
// the maximum rather than cut to it: a record's expiry is an int32 count of seconds
// since 2016-01-01.
func parseTTL(arg string) (time.Duration, error) {
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid ttl %q: want a number of seconds, 0 for none", arg)
	}
	if limit := int64(kv.MaxTTL(time.Now()) / time.Second); n > limit {
		return 0, fmt.Errorf("ttl %d s is past the maximum of %d s (no record can expire after 2084-01-19T03:14:07Z)", n, limit)
	}
	return time.Duration(n) * time.Second, nil
}

func cmdSet(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 3, 4); err != nil {
		return err
	}
	var ttl time.Duration
	if len(r.Args) == 4 {
		var err error
		if ttl, err = parseTTL(r.Args[3]); err != nil {
			return badUsage("%v", err)
		}
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := t.Set(octx, arg(r, 0), arg(r, 1), arg(r, 2), ttl); err != nil {
		return dataErr(err)
	}
	fmt.Fprintln(s.err, "OK")
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdMultiSet(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) < 3 || len(r.Args)%2 != 1 {
		return badUsage("")
	}
	seen := map[string]bool{}
	var kvs []kv.KV
	for i := 1; i < len(r.Args); i += 2 {
		if seen[r.Args[i]] {
			return badUsage("duplicate sort key %s", r.Args[i])
		}
		seen[r.Args[i]] = true
		kvs = append(kvs, kv.KV{SortKey: arg(r, i), Value: arg(r, i+1)})
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := t.MultiSet(octx, arg(r, 0), kvs, 0); err != nil {
		return dataErr(err)
	}
	fmt.Fprintln(s.err, "OK")
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdGet(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, 2); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	v, err := t.Get(octx, arg(r, 0), arg(r, 1))
	if err != nil {
		return dataErr(err)
	}
	if v == nil {
		fmt.Fprintln(s.err, "Not found")
	} else {
		fmt.Fprintf(s.err, "\"%s\"\n", s.esc(v))
	}
	s.requestInfo(t, arg(r, 0))
	return nil
}

func (s *Shell) printKVs(hk []byte, kvs []kv.KV, noValue bool) {
	for _, p := range kvs {
		if noValue {
			fmt.Fprintf(s.err, "\"%s\" : \"%s\"\n", s.esc(hk), s.esc(p.SortKey))
		} else {
			fmt.Fprintf(s.err, "\"%s\" : \"%s\" => \"%s\"\n", s.esc(hk), s.esc(p.SortKey), s.esc(p.Value))
		}
	}
}

func completion(complete bool) string {
	if complete {
		return "fetch completed."
	}
	return "not completed."
}

func cmdMultiGet(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 1, -1); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	var sks [][]byte
	for i := 1; i < len(r.Args); i++ {
		sks = append(sks, arg(r, i))
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	kvs, complete, err := t.MultiGet(octx, arg(r, 0), sks, kv.MultiGetOptions{})
	if err != nil {
		return dataErr(err)
	}
	s.printKVs(arg(r, 0), kvs, false)
	fmt.Fprintf(s.err, "\n%d key-value pairs got, %s\n", len(kvs), completion(complete))
	s.requestInfo(t, arg(r, 0))
	return nil
}

func parseBool(r *opts.Result, long string, def bool) (*bool, error) {
	if !r.Has(long) {
		return kv.Bool(def), nil
	}
	switch r.String(long, "") {
	case "true":
		return kv.Bool(true), nil
	case "false":
		return kv.Bool(false), nil
	}
	return nil, badUsage("invalid --%s %q, should be true or false", long, r.String(long, ""))
}

var filterTypes = map[string]rrdb.FilterType{
	"anywhere": rrdb.FilterType_FT_MATCH_ANYWHERE,
	"prefix":   rrdb.FilterType_FT_MATCH_PREFIX,
	"postfix":  rrdb.FilterType_FT_MATCH_POSTFIX,
}

// parseFilter reads a key filter from its type and pattern options. Patterns go
// through Unescape so that binary bytes can be written as \xHH.
func parseFilter(r *opts.Result, typeOpt, patternOpt string) (kv.Filter, error) {
	if !r.Has(typeOpt) {
		if r.Has(patternOpt) {
			return kv.Filter{}, badUsage("--%s needs --%s", patternOpt, typeOpt)
		}
		return kv.Filter{}, nil
	}
	ft, ok := filterTypes[r.String(typeOpt, "")]
	if !ok {
		return kv.Filter{}, badUsage("invalid --%s %q, should be in [anywhere, prefix, postfix]", typeOpt, r.String(typeOpt, ""))
	}
	return kv.Filter{Type: ft, Pattern: lex.Unescape(r.String(patternOpt, ""))}, nil
}

// valueFilter is the client-side value filter of scans.
type valueFilter struct {
	kind    string
	pattern []byte
}

func parseValueFilter(r *opts.Result) (valueFilter, error) {
	if !r.Has("value_filter_type") {
		if r.Has("value_filter_pattern") {
			return valueFilter{}, badUsage("--value_filter_pattern needs --value_filter_type")
		}
		return valueFilter{}, nil
	}
	k := r.String("value_filter_type", "")
	switch k {
	case "anywhere", "prefix", "postfix", "exact":
	default:
		return valueFilter{}, badUsage("invalid --value_filter_type %q, should be in [anywhere, prefix, postfix, exact]", k)
	}
	return valueFilter{kind: k, pattern: lex.Unescape(r.String("value_filter_pattern", ""))}, nil
}

func (f valueFilter) match(v []byte) bool {
	switch f.kind {
	case "anywhere":
		return bytes.Contains(v, f.pattern)
	case "prefix":
		return bytes.HasPrefix(v, f.pattern)
	case "postfix":
		return bytes.HasSuffix(v, f.pattern)
	case "exact":
		return bytes.Equal(v, f.pattern)
	}
	return true
}

func cmdMultiGetRange(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 3, 3); err != nil {
		return err
	}
	o := kv.MultiGetOptions{NoValue: r.Bool("no_value"), Reverse: r.Bool("reverse")}
	var err error
	if o.StartInclusive, err = parseBool(r, "start_inclusive", true); err != nil {
		return err
	}
	if o.StopInclusive, err = parseBool(r, "stop_inclusive", false); err != nil {
		return err
	}
	if o.SortKeyFilter, err = parseFilter(r, "sort_key_filter_type", "sort_key_filter_pattern"); err != nil {
		return err
	}
	n, err := r.Int("max_count", -1)
	if err != nil {
		return badUsage("%v", err)
	}
	if n > 0 {
		o.MaxCount = int(n)
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	kvs, complete, err := t.MultiGetRange(octx, arg(r, 0), arg(r, 1), arg(r, 2), o)
	if err != nil {
		return dataErr(err)
	}
	s.printKVs(arg(r, 0), kvs, o.NoValue)
	fmt.Fprintf(s.err, "\n%d key-value pairs got, %s\n", len(kvs), completion(complete))
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdMultiGetSortKeys(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 1, 1); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	kvs, complete, err := t.MultiGet(octx, arg(r, 0), nil, kv.MultiGetOptions{NoValue: true})
	if err != nil {
		return dataErr(err)
	}
	s.printKVs(arg(r, 0), kvs, true)
	fmt.Fprintf(s.err, "\n%d sort keys got, %s\n", len(kvs), completion(complete))
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdDel(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, 2); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := t.Del(octx, arg(r, 0), arg(r, 1)); err != nil {
		return dataErr(err)
	}
	fmt.Fprintln(s.err, "OK")
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdMultiDel(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, -1); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	var sks [][]byte
	for i := 1; i < len(r.Args); i++ {
		sks = append(sks, arg(r, i))
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	n, err := t.MultiDel(octx, arg(r, 0), sks)
	if err != nil {
		return dataErr(err)
	}
	fmt.Fprintf(s.err, "%d key-value pairs deleted.\n", n)
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdMultiDelRange(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 3, 3); err != nil {
		return err
	}
	so := kv.ScannerOptions{NoValue: true}
	var err error
	if so.StartInclusive, err = parseBool(r, "start_inclusive", true); err != nil {
		return err
	}
	if so.StopInclusive, err = parseBool(r, "stop_inclusive", false); err != nil {
		return err
	}
	if so.SortKeyFilter, err = parseFilter(r, "sort_key_filter_type", "sort_key_filter_pattern"); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	w := s.err
	if path := r.String("output", ""); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("open output file: %w", err)
		}
		defer f.Close()
		w = f
	}
	hk := arg(r, 0)
	sc, err := t.GetScanner(ctx, hk, arg(r, 1), arg(r, 2), so)
	if err != nil {
		return dataErr(err)
	}
	defer sc.Close(context.WithoutCancel(ctx))
	var batch [][]byte
	deleted := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		octx, cancel := s.opCtx(ctx)
		defer cancel()
		if _, err := t.MultiDel(octx, hk, batch); err != nil {
			return dataErr(err)
		}
		deleted += len(batch)
		batch = nil
		return nil
	}
	for {
		octx, cancel := s.opCtx(ctx)
		_, sk, _, ok, err := sc.Next(octx)
		cancel()
		if err != nil {
			return dataErr(err)
		}
		if !ok {
			break
		}
		if !r.Bool("silent") {
			fmt.Fprintf(w, "\"%s\" : \"%s\"\n", s.esc(hk), s.esc(sk))
		}
		batch = append(batch, sk)
		if len(batch) >= 100 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(s.err, "\n%d key-value pairs deleted.\n", deleted)
	return nil
}

func cmdIncr(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, 3); err != nil {
		return err
	}
	delta := int64(1)
	if len(r.Args) == 3 {
		d, err := strconv.ParseInt(r.Args[2], 10, 64)
		if err != nil {
			return badUsage("invalid increment %q", r.Args[2])
		}
		delta = d
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	v, err := t.Incr(octx, arg(r, 0), arg(r, 1), delta, 0)
	if err != nil {
		return dataErr(err)
	}
	fmt.Fprintln(s.err, v)
	s.requestInfo(t, arg(r, 0))
	return nil
}

// checkTypes maps the shell's check type names to the protocol's.
var checkTypes = map[string]rrdb.CasCheckType{
	"not_exist":              rrdb.CasCheckType_CT_VALUE_NOT_EXIST,
	"not_exist_or_empty":     rrdb.CasCheckType_CT_VALUE_NOT_EXIST_OR_EMPTY,
	"exist":                  rrdb.CasCheckType_CT_VALUE_EXIST,
	"not_empty":              rrdb.CasCheckType_CT_VALUE_NOT_EMPTY,
	"match_anywhere":         rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE,
	"match_prefix":           rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX,
	"match_postfix":          rrdb.CasCheckType_CT_VALUE_MATCH_POSTFIX,
	"bytes_less":             rrdb.CasCheckType_CT_VALUE_BYTES_LESS,
	"bytes_less_or_equal":    rrdb.CasCheckType_CT_VALUE_BYTES_LESS_OR_EQUAL,
	"bytes_equal":            rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL,
	"bytes_greater_or_equal": rrdb.CasCheckType_CT_VALUE_BYTES_GREATER_OR_EQUAL,
	"bytes_greater":          rrdb.CasCheckType_CT_VALUE_BYTES_GREATER,
	"int_less":               rrdb.CasCheckType_CT_VALUE_INT_LESS,
	"int_less_or_equal":      rrdb.CasCheckType_CT_VALUE_INT_LESS_OR_EQUAL,
	"int_equal":              rrdb.CasCheckType_CT_VALUE_INT_EQUAL,
	"int_greater_or_equal":   rrdb.CasCheckType_CT_VALUE_INT_GREATER_OR_EQUAL,
	"int_greater":            rrdb.CasCheckType_CT_VALUE_INT_GREATER,
}

// parseCheck reads the check options shared by check_and_set and
// check_and_mutate, echoing them as upstream does.
func (s *Shell) parseCheck(r *opts.Result) (hk, checkSK []byte, ct rrdb.CasCheckType, operand []byte, err error) {
	if len(r.Args) != 1 {
		return nil, nil, 0, nil, badUsage("need exactly one <hash_key>")
	}
	if !r.Has("check_sort_key") || !r.Has("check_type") {
		return nil, nil, 0, nil, badUsage("--check_sort_key and --check_type are required")
	}
	name := r.String("check_type", "")
	ct, ok := checkTypes[name]
	if !ok {
		return nil, nil, 0, nil, badUsage("invalid --check_type %q", name)
	}
	hk, checkSK, operand = arg(r, 0), []byte(r.String("check_sort_key", "")), []byte(r.String("check_operand", ""))
	fmt.Fprintf(s.err, "hash_key: \"%s\"\n", s.esc(hk))
	fmt.Fprintf(s.err, "check_sort_key: \"%s\"\n", s.esc(checkSK))
	fmt.Fprintf(s.err, "check_type: %s\n", name)
	if ct >= rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE {
		fmt.Fprintf(s.err, "check_operand: \"%s\"\n", s.esc(operand))
	}
	return hk, checkSK, ct, operand, nil
}

func (s *Shell) printCheckResult(res *kv.CheckAndSetResult, what string) {
	if res.Succeed {
		fmt.Fprintf(s.err, "%s succeed.\n", what)
	} else {
		fmt.Fprintf(s.err, "%s failed, because check not passed.\n", what)
	}
	if res.CheckValueReturned {
		fmt.Fprintln(s.err)
		if res.CheckValueExist {
			fmt.Fprintf(s.err, "Check value: \"%s\"\n", s.esc(res.CheckValue))
		} else {
			fmt.Fprintln(s.err, "Check value not exist.")
		}
	}
}

func cmdCheckAndSet(ctx context.Context, s *Shell, r *opts.Result) error {
	if !r.Has("set_sort_key") || !r.Has("set_value") {
		return badUsage("--set_sort_key and --set_value are required")
	}
	ttl, err := parseTTL(r.String("set_value_ttl_seconds", "0"))
	if err != nil {
		return badUsage("--set_value_ttl_seconds: %v", err)
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	hk, checkSK, ct, operand, err := s.parseCheck(r)
	if err != nil {
		return err
	}
	setSK, setValue := []byte(r.String("set_sort_key", "")), []byte(r.String("set_value", ""))
	fmt.Fprintf(s.err, "set_sort_key: \"%s\"\n", s.esc(setSK))
	fmt.Fprintf(s.err, "set_value: \"%s\"\n", s.esc(setValue))
	fmt.Fprintf(s.err, "set_value_ttl_seconds: %d\n", ttl/time.Second)
	fmt.Fprintf(s.err, "return_check_value: %t\n\n", r.Bool("return_check_value"))
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	res, err := t.CheckAndSet(octx, hk, checkSK, ct, operand, setSK, setValue,
		kv.CheckAndSetOptions{TTL: ttl, ReturnCheckValue: r.Bool("return_check_value")})
	if err != nil {
		return dataErr(err)
	}
	s.printCheckResult(res, "Set")
	s.requestInfo(t, hk)
	return nil
}

// readMutations reads "set <sort_key> <value> [ttl]" and "del <sort_key>" lines
// until "ok" (apply) or "abort".
func (s *Shell) readMutations() ([]kv.Mutation, bool, error) {
	fmt.Fprintln(s.err, "LOAD mutations, like:")
	fmt.Fprintln(s.err, "  set <sort_key> <value> [ttl]")
	fmt.Fprintln(s.err, "  del <sort_key>")
	fmt.Fprintln(s.err, `Print "ok" to finish loading, "abort" to abort this command`)
	var out []kv.Mutation
	for {
		line, ok := s.readLine()
		if !ok {
			return nil, false, errors.New("no more input: check_and_mutate aborted")
		}
		words, err := lex.Split(line)
		if err != nil {
			fmt.Fprintf(s.err, "ERROR: invalid mutation: %v\n", err)
			continue
		}
		switch {
		case len(words) == 0:
		case len(words) == 1 && words[0] == "ok":
			return out, true, nil
		case len(words) == 1 && words[0] == "abort":
			return nil, false, nil
		case words[0] == "set" && (len(words) == 3 || len(words) == 4):
			m := kv.Mutation{Op: kv.MutationPut, SortKey: []byte(words[1]), Value: []byte(words[2])}
			if len(words) == 4 {
				ttl, err := parseTTL(words[3])
				if err != nil {
					fmt.Fprintf(s.err, "ERROR: %v\n", err)
					continue
				}
				m.TTL = ttl
			}
			out = append(out, m)
		case words[0] == "del" && len(words) == 2:
			out = append(out, kv.Mutation{Op: kv.MutationDelete, SortKey: []byte(words[1])})
		default:
			fmt.Fprintf(s.err, "ERROR: invalid mutation %q\n", line)
		}
	}
}

func cmdCheckAndMutate(ctx context.Context, s *Shell, r *opts.Result) error {
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	hk, checkSK, ct, operand, err := s.parseCheck(r)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.err, "return_check_value: %t\n\n", r.Bool("return_check_value"))
	muts, apply, err := s.readMutations()
	if err != nil {
		return err
	}
	if !apply {
		fmt.Fprintln(s.err, "check_and_mutate aborted")
		return nil
	}
	if len(muts) == 0 {
		return errors.New("no mutation loaded")
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	res, err := t.CheckAndMutate(octx, hk, checkSK, ct, operand, muts, r.Bool("return_check_value"))
	if err != nil {
		return dataErr(err)
	}
	s.printCheckResult(res, "Mutate")
	s.requestInfo(t, hk)
	return nil
}

func cmdExist(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, 2); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	ok, err := t.Exist(octx, arg(r, 0), arg(r, 1))
	if err != nil {
		return dataErr(err)
	}
	if ok {
		fmt.Fprintln(s.err, "True")
	} else {
		fmt.Fprintln(s.err, "False")
	}
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdCount(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 1, 1); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	n, err := t.SortKeyCount(octx, arg(r, 0))
	if err != nil {
		return dataErr(err)
	}
	fmt.Fprintln(s.err, n)
	s.requestInfo(t, arg(r, 0))
	return nil
}

func cmdTTL(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 2, 2); err != nil {
		return err
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	secs, found, err := t.TTL(octx, arg(r, 0), arg(r, 1))
	switch {
	case err != nil:
		return dataErr(err)
	case !found:
		fmt.Fprintln(s.err, "Not found")
	case secs < 0:
		fmt.Fprintln(s.err, "Infinite")
	default:
		fmt.Fprintln(s.err, secs)
	}
	s.requestInfo(t, arg(r, 0))
	return nil
}

// scanSpec is what a scan prints and where.
type scanSpec struct {
	max      int64
	timeout  time.Duration
	detailed bool
	noValue  bool
	values   valueFilter
	out      io.Writer
}

func (s *Shell) parseScanSpec(r *opts.Result) (*scanSpec, func(), error) {
	sp := &scanSpec{detailed: r.Bool("detailed"), noValue: r.Bool("no_value"), out: s.err, timeout: s.dataTimeout}
	var err error
	if sp.max, err = r.Int("max_count", -1); err != nil {
		return nil, nil, badUsage("%v", err)
	}
	ms, err := r.Int("timeout_ms", s.dataTimeout.Milliseconds())
	if err != nil || ms <= 0 {
		return nil, nil, badUsage("invalid --timeout_ms")
	}
	sp.timeout = time.Duration(ms) * time.Millisecond
	if sp.values, err = parseValueFilter(r); err != nil {
		return nil, nil, err
	}
	if sp.noValue && sp.values.kind != "" {
		return nil, nil, badUsage("--no_value and a value filter can not be used together")
	}
	closeFn := func() {}
	if path := r.String("output", ""); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, nil, fmt.Errorf("open output file: %w", err)
		}
		sp.out = f
		closeFn = func() { f.Close() }
	}
	return sp, closeFn, nil
}

// scan prints the records of the scanners, in turn, as upstream does.
func (s *Shell) scan(ctx context.Context, t *kv.Table, scanners []*kv.Scanner, sp *scanSpec) (int64, error) {
	var n int64
	defer func() {
		for _, sc := range scanners {
			sc.Close(context.WithoutCancel(ctx))
		}
	}()
	for _, sc := range scanners {
		for sp.max < 0 || n < sp.max {
			octx, cancel := context.WithTimeout(ctx, sp.timeout)
			hk, sk, v, ok, err := sc.Next(octx)
			cancel()
			if err != nil {
				return n, dataErr(err)
			}
			if !ok {
				break
			}
			if !sp.values.match(v) {
				continue
			}
			n++
			if sp.noValue {
				fmt.Fprintf(sp.out, "\"%s\" : \"%s\"", s.esc(hk), s.esc(sk))
			} else {
				fmt.Fprintf(sp.out, "\"%s\" : \"%s\" => \"%s\"", s.esc(hk), s.esc(sk), s.esc(v))
			}
			if sp.detailed {
				pidx := t.PartitionOf(hk)
				fmt.Fprintf(sp.out, " {app_id=%d, partition_index=%d, server=%s}", t.AppID(), pidx, t.Primary(pidx))
			}
			fmt.Fprintln(sp.out)
		}
	}
	return n, nil
}

func (s *Shell) echoFilter(r *opts.Result, typeOpt, patternOpt, name string) {
	if r.Has(typeOpt) {
		fmt.Fprintf(s.err, "%s_filter_type: %s\n", name, r.String(typeOpt, ""))
		fmt.Fprintf(s.err, "%s_filter_pattern: \"%s\"\n", name, s.esc(lex.Unescape(r.String(patternOpt, ""))))
	}
}

func cmdHashScan(ctx context.Context, s *Shell, r *opts.Result) error {
	if err := needArgs(r, 3, 3); err != nil {
		return err
	}
	so := kv.ScannerOptions{NoValue: r.Bool("no_value")}
	var err error
	if so.StartInclusive, err = parseBool(r, "start_inclusive", true); err != nil {
		return err
	}
	if so.StopInclusive, err = parseBool(r, "stop_inclusive", false); err != nil {
		return err
	}
	if so.SortKeyFilter, err = parseFilter(r, "sort_key_filter_type", "sort_key_filter_pattern"); err != nil {
		return err
	}
	sp, closeOut, err := s.parseScanSpec(r)
	if err != nil {
		return err
	}
	defer closeOut()
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	hk := arg(r, 0)
	fmt.Fprintf(s.err, "hash_key: \"%s\"\n", s.esc(hk))
	fmt.Fprintf(s.err, "start_sort_key: \"%s\"\n", s.esc(arg(r, 1)))
	fmt.Fprintf(s.err, "start_inclusive: %t\n", *so.StartInclusive)
	fmt.Fprintf(s.err, "stop_sort_key: \"%s\"\n", s.esc(arg(r, 2)))
	fmt.Fprintf(s.err, "stop_inclusive: %t\n", *so.StopInclusive)
	s.echoFilter(r, "sort_key_filter_type", "sort_key_filter_pattern", "sort_key")
	s.echoFilter(r, "value_filter_type", "value_filter_pattern", "value")
	fmt.Fprintf(s.err, "max_count: %d\n", sp.max)
	fmt.Fprintf(s.err, "timout_ms: %d\n", sp.timeout.Milliseconds())
	fmt.Fprintf(s.err, "detailed: %t\n", sp.detailed)
	fmt.Fprintf(s.err, "no_value: %t\n\n", sp.noValue)
	sc, err := t.GetScanner(ctx, hk, arg(r, 1), arg(r, 2), so)
	if err != nil {
		return dataErr(err)
	}
	n, err := s.scan(ctx, t, []*kv.Scanner{sc}, sp)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.err, "\n%d key-value pairs got.\n", n)
	return nil
}

// fullScanners opens the scanners of a whole-table operation, optionally on one
// partition only (a scanner per partition makes that selection possible).
func (s *Shell) fullScanners(ctx context.Context, t *kv.Table, r *opts.Result, so kv.ScannerOptions) ([]*kv.Scanner, error) {
	var err error
	if so.HashKeyFilter, err = parseFilter(r, "hash_key_filter_type", "hash_key_filter_pattern"); err != nil {
		return nil, err
	}
	if so.SortKeyFilter, err = parseFilter(r, "sort_key_filter_type", "sort_key_filter_pattern"); err != nil {
		return nil, err
	}
	count := t.PartitionCount()
	scs, err := t.GetUnorderedScanners(ctx, count, so)
	if err != nil {
		return nil, dataErr(err)
	}
	if !r.Has("partition") {
		return scs, nil
	}
	p, err := r.Int("partition", -1)
	if err != nil || p < 0 || int(p) >= len(scs) || len(scs) != count {
		for _, sc := range scs {
			sc.Close(ctx)
		}
		return nil, badUsage("invalid --partition, should be in [0, %d)", count)
	}
	for i, sc := range scs {
		if i != int(p) {
			sc.Close(ctx)
		}
	}
	return scs[p : p+1], nil
}

func cmdFullScan(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	sp, closeOut, err := s.parseScanSpec(r)
	if err != nil {
		return err
	}
	defer closeOut()
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	scs, err := s.fullScanners(ctx, t, r, kv.ScannerOptions{NoValue: sp.noValue})
	if err != nil {
		return err
	}
	if r.Has("partition") {
		fmt.Fprintf(s.err, "partition: %s\n", r.String("partition", ""))
	} else {
		fmt.Fprintln(s.err, "partition: all")
	}
	s.echoFilter(r, "hash_key_filter_type", "hash_key_filter_pattern", "hash_key")
	s.echoFilter(r, "sort_key_filter_type", "sort_key_filter_pattern", "sort_key")
	s.echoFilter(r, "value_filter_type", "value_filter_pattern", "value")
	fmt.Fprintf(s.err, "max_count: %d\n", sp.max)
	fmt.Fprintf(s.err, "timout_ms: %d\n", sp.timeout.Milliseconds())
	fmt.Fprintf(s.err, "detailed: %t\n", sp.detailed)
	fmt.Fprintf(s.err, "no_value: %t\n\n", sp.noValue)
	n, err := s.scan(ctx, t, scs, sp)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.err, "\n%d key-value pairs got.\n", n)
	return nil
}

// forEachRecord runs fn on every record of the current table that passes the
// filters of r.
func (s *Shell) forEachRecord(ctx context.Context, t *kv.Table, r *opts.Result, noValue bool, fn func(hk, sk, v []byte) error) (int64, error) {
	vf, err := parseValueFilter(r)
	if err != nil {
		return 0, err
	}
	timeout := s.dataTimeout
	if r.Has("timeout_ms") {
		ms, err := r.Int("timeout_ms", 0)
		if err != nil || ms <= 0 {
			return 0, badUsage("invalid --timeout_ms")
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	scs, err := s.fullScanners(ctx, t, r, kv.ScannerOptions{NoValue: noValue && vf.kind == ""})
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, sc := range scs {
			sc.Close(context.WithoutCancel(ctx))
		}
	}()
	var n int64
	last := time.Now()
	for _, sc := range scs {
		for {
			octx, cancel := context.WithTimeout(ctx, timeout)
			hk, sk, v, ok, err := sc.Next(octx)
			cancel()
			if err != nil {
				return n, dataErr(err)
			}
			if !ok {
				break
			}
			if !vf.match(v) {
				continue
			}
			if err := fn(hk, sk, v); err != nil {
				return n, err
			}
			n++
			if time.Since(last) >= time.Second {
				fmt.Fprintf(s.err, "INFO: processed %d rows\n", n)
				last = time.Now()
			}
		}
	}
	return n, nil
}

func cmdCopyData(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	cluster, app := r.String("target_cluster_name", ""), r.String("target_app_name", "")
	if cluster == "" || app == "" {
		return badUsage("--target_cluster_name and --target_app_name are required")
	}
	metas, ok := s.opts.Clusters[cluster]
	if !ok {
		if !strings.Contains(cluster, ":") {
			return fmt.Errorf("cluster %s is not in [pegasus.clusters]", cluster)
		}
		metas = strings.Split(cluster, ",")
	}
	src, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	if app == s.currentApp && strings.Join(metas, ",") == strings.Join(s.opts.MetaServers, ",") {
		return badUsage("the target table is the source table")
	}
	dc, err := kv.NewClient(kv.Config{MetaServers: metas, OperationTimeout: time.Hour})
	if err != nil {
		return fmt.Errorf("open the target cluster: %w", err)
	}
	defer dc.Close()
	octx, cancel := context.WithTimeout(ctx, s.opts.MetaTimeout)
	dst, err := dc.OpenTable(octx, app)
	cancel()
	if err != nil {
		return fmt.Errorf("open target table %s: %s", app, kv.ErrorCode(err))
	}
	keepTTL := !r.Bool("no_ttl")
	n, err := s.forEachRecord(ctx, src, r, false, func(hk, sk, v []byte) error {
		octx, cancel := s.opCtx(ctx)
		defer cancel()
		var ttl time.Duration
		if keepTTL {
			secs, found, err := src.TTL(octx, hk, sk)
			if err != nil {
				return dataErr(err)
			}
			if !found {
				return nil // expired while copying
			}
			if secs > 0 {
				ttl = time.Duration(secs) * time.Second
			}
		}
		if err := dst.Set(octx, hk, sk, v, ttl); err != nil {
			return dataErr(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy data failed after %d rows: %w", n, err)
	}
	fmt.Fprintf(s.err, "Copy done, total %d rows.\n", n)
	return nil
}

func cmdClearData(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	if !r.Bool("force") {
		return errors.New("be careful to clear data!!! Please specify --force if you are determined to do")
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	n, err := s.forEachRecord(ctx, t, r, true, func(hk, sk, v []byte) error {
		octx, cancel := s.opCtx(ctx)
		defer cancel()
		return dataErr(t.Del(octx, hk, sk))
	})
	if err != nil {
		return fmt.Errorf("clear data failed after %d rows: %w", n, err)
	}
	fmt.Fprintf(s.err, "Clear done, total %d rows.\n", n)
	return nil
}

func cmdCountData(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	if !r.Bool("precise") {
		for _, o := range []string{"partition", "timeout_ms", "diff_hash_key", "stat_size", "hash_key_filter_type",
			"hash_key_filter_pattern", "sort_key_filter_type", "sort_key_filter_pattern", "value_filter_type", "value_filter_pattern"} {
			if r.Has(o) {
				return badUsage("--%s needs --precise", o)
			}
		}
		return s.estimateCount(ctx)
	}
	t, err := s.currentTable(ctx)
	if err != nil {
		return err
	}
	hashKeys := map[string]struct{}{}
	var keyBytes, valueBytes int64
	diff, stat := r.Bool("diff_hash_key"), r.Bool("stat_size")
	n, err := s.forEachRecord(ctx, t, r, !stat, func(hk, sk, v []byte) error {
		if diff {
			hashKeys[string(hk)] = struct{}{}
		}
		keyBytes += int64(len(hk) + len(sk))
		valueBytes += int64(len(v))
		return nil
	})
	if err != nil {
		return fmt.Errorf("count data failed after %d rows: %w", n, err)
	}
	if diff {
		fmt.Fprintf(s.err, "Count done, total %d rows, %d different hash keys.\n", n, len(hashKeys))
	} else {
		fmt.Fprintf(s.err, "Count done, total %d rows.\n", n)
	}
	if stat {
		t := table.NewKV("count_data").KV("row_count", n).KV("key_bytes", keyBytes).KV("value_bytes", valueBytes).KV("total_bytes", keyBytes+valueBytes)
		return table.Single(s.out, false, t)
	}
	return nil
}

// estimateCount prints the key estimates of every partition's primary, from the
// replica servers' metrics.
func (s *Shell) estimateCount(ctx context.Context) error {
	app, err := s.needApp()
	if err != nil {
		return err
	}
	cfg, err := s.queryApp(ctx, app)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var addrs []string
	for _, pc := range cfg.Partitions {
		if a := pc.Primary.String(); pc.Primary.IsValid() && !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	res := s.fetchAll(ctx, addrs, []string{"replica"}, []string{"rdb_estimated_keys"})
	s.reportFailures("estimated keys", res)
	rm := indexReplicas(res)
	t := table.New("count_data", table.L("pidx"), table.R("estimate_count"))
	var total float64
	for _, pc := range cfg.Partitions {
		var v float64
		if e := rm.get(pc.Primary.String(), cfg.AppID, pc.Pid.PartitionIndex); e != nil {
			v = e.ValueOf("rdb_estimated_keys")
		}
		total += v
		t.Row(pc.Pid.PartitionIndex, v)
	}
	t.Row(fmt.Sprintf("(total:%d)", len(cfg.Partitions)), total)
	return table.Single(s.out, false, t)
}
