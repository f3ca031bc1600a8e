package meta

import (
	"errors"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// The admin and routing handlers share one preamble and one error mapping: a
// handler describes its operation (opSpec) and gives its body; Server.leaderOp
// checks leadership, validates the request, takes the operation lock when the
// operation writes the store, runs the body, and turns the body's error into the
// err code (and hint) to answer with, by kind:
//
//	not the ready leader (errNotLeader)      ERR_FORWARD_TO_OTHERS
//	*noTableError (no such available table)  ERR_APP_NOT_EXIST, "no available table named <name>"
//	*refusal                                 its code and hint; logged at info when it has a reason
//	*persistError (a store write failed)     ERR_TIMEOUT; logged with its cause, rate-limited by opLog
//	any other error                          ERR_UNKNOWN; logged as a persistence failure is
//
// Handlers whose answers differ (query config's ERR_OBJECT_NOT_FOUND, drop's
// success_if_not_exist, recall's lookup by id) return a refusal instead. Nothing
// is applied in memory before it is persisted, so an operation that answers an
// error has not changed the leader's state in memory (set max replica count may
// have written some partitions to the store before a later write failed).

// opLogEvery is how often a failed operation is logged at most.
const opLogEvery = 10 * time.Second

// opSpec describes a leader operation.
type opSpec struct {
	what  string // names the operation in the log: "create table"
	table string // the table it is about, logged with refusals and failures ("" if none)
	// persists marks an operation that writes the store: it holds lt.opMu while
	// its body runs, so that compute, persist and apply are not interleaved with
	// another change (cure passes and replica-driven changes take it too).
	persists bool
	// check validates the request, after the leadership check and before any
	// lock is taken, so that a bad request is answered at once. Optional.
	check func() error
}

// leaderOp is what an operation's body works with: the leader term it runs in.
type leaderOp struct {
	s  *Server
	lt *leaderTerm
}

// errNotLeader: this server is not the ready leader.
var errNotLeader = errors.New("not the meta leader")

// noTableError: the operation names a table that does not exist or is dropped.
type noTableError struct{ name string }

func (e *noTableError) Error() string { return "no available table named " + e.name }

// refusal: the request cannot be carried out as asked; nothing was changed.
type refusal struct {
	code string // the err code to answer with
	hint string // the hint_message to answer with ("" keeps the response's)
	why  string // the reason to log ("": the refusal is not logged)
}

func (e *refusal) Error() string {
	if e.why != "" {
		return e.code + ": " + e.why
	}
	return e.code + ": " + e.hint
}

// refuse returns a refusal answered with code and hint, not logged.
func refuse(code, hint string) error { return &refusal{code: code, hint: hint} }

// refuseLogged returns a refusal answered with code, logged with why.
func refuseLogged(code, why string) error { return &refusal{code: code, why: why} }

// persistError: a store write failed, so the change was not applied.
type persistError struct{ err error }

func (e *persistError) Error() string { return "persist: " + e.err.Error() }
func (e *persistError) Unwrap() error { return e.err }

// persisted wraps the error of a store write as a persistence failure.
func persisted(err error) error {
	if err == nil {
		return nil
	}
	return &persistError{err: err}
}

// answerOf maps an operation's error to the err code and hint to answer with.
func answerOf(err error) (code, hint string) {
	var noTable *noTableError
	var refused *refusal
	var failed *persistError
	switch {
	case err == nil:
		return base.ErrOK, ""
	case errors.Is(err, errNotLeader):
		return base.ErrForwardToOthers, ""
	case errors.As(err, &noTable):
		return base.ErrAppNotExist, noTable.Error()
	case errors.As(err, &refused):
		return refused.code, refused.hint
	case errors.As(err, &failed):
		return base.ErrTimeout, ""
	default:
		return base.ErrUnknown, ""
	}
}

// leaderOp runs one operation on the leader's state and returns the err code
// and hint to answer with (see the top of this file). A handler sets its
// response's hint only when the returned one is not empty.
func (s *Server) leaderOp(spec opSpec, body func(op *leaderOp) error) (code, hint string) {
	err := s.runLeaderOp(spec, body)
	code, hint = answerOf(err)
	var noTable *noTableError
	var refused *refusal
	switch {
	case err == nil, errors.Is(err, errNotLeader), errors.As(err, &noTable):
	case errors.As(err, &refused):
		if refused.why != "" {
			s.log.Info(spec.what+" refused", s.opLogArgs(spec, "err", code, "reason", refused.why)...)
		}
	default:
		s.opLog.Error(s.log, spec.what+" failed", s.opLogArgs(spec, "answer", code, "err", err)...)
	}
	return code, hint
}

func (s *Server) runLeaderOp(spec opSpec, body func(op *leaderOp) error) error {
	lt := s.currentTerm()
	if lt == nil {
		return errNotLeader
	}
	if spec.check != nil {
		if err := spec.check(); err != nil {
			return err
		}
	}
	if spec.persists {
		lt.opMu.Lock()
		defer lt.opMu.Unlock()
	}
	return body(&leaderOp{s: s, lt: lt})
}

func (s *Server) opLogArgs(spec opSpec, args ...any) []any {
	if spec.table != "" {
		args = append([]any{"table", spec.table}, args...)
	}
	return args
}

// table returns the available table named name, or a *noTableError.
func (op *leaderOp) table(name string) (*app, error) {
	op.s.mu.RLock()
	a := op.lt.state.lookup(name)
	op.s.mu.RUnlock()
	if a == nil {
		return nil, &noTableError{name: name}
	}
	return a, nil
}

// refuseIfFrozen refuses with ERR_STATE_FREEZED (logged) when the effective
// function level (the automatic freeze included, see Server.effectiveLevel) does
// not allow the tables to change.
func refuseIfFrozen(level admin.MetaFunctionLevel) error {
	if level <= admin.MetaFunctionLevel_fl_freezed {
		return refuseLogged(base.ErrStateFreezed, "meta level "+levelName(level)+" (too few alive replica servers, or frozen by an admin)")
	}
	return nil
}

// createApp persists a new table with its partitions; the caller then applies it.
func (op *leaderOp) createApp(a *app) error {
	return persisted(op.s.persistNewApp(op.lt.ctx, a))
}

// writeApp persists a table's app_info; the caller then applies it.
func (op *leaderOp) writeApp(info *layer2.AppInfo) error {
	return persisted(op.s.writeApp(op.lt.ctx, info))
}

// writePartition persists a partition's configuration; the caller then applies it.
func (op *leaderOp) writePartition(pc *layer2.PartitionConfiguration) error {
	return persisted(op.s.writePartition(op.lt.ctx, pc, false))
}

// rewritePartitions persists change(pc) for every partition of parts, in order,
// and returns the configurations to apply. When keepOnFailure is empty, the first
// failed write ends the operation as a persistence failure (what was written
// stays in the store). Otherwise a failed write is logged with keepOnFailure as
// the message and that partition keeps its configuration (drop and recall,
// which have written the table's app_info already, go on with the rest).
func (op *leaderOp) rewritePartitions(parts []*layer2.PartitionConfiguration, change func(*layer2.PartitionConfiguration) *layer2.PartitionConfiguration, keepOnFailure string) ([]*layer2.PartitionConfiguration, error) {
	out := make([]*layer2.PartitionConfiguration, len(parts))
	for i, pc := range parts {
		next := change(pc)
		if err := op.s.writePartition(op.lt.ctx, next, false); err != nil {
			if keepOnFailure == "" {
				return nil, persisted(err)
			}
			op.s.log.Error(keepOnFailure, "gpid", next.Pid.String(), "err", err)
			next = pc
		}
		out[i] = next
	}
	return out, nil
}

// commitApp makes info durable first and only then visible, so a reply of
// ERR_OK never describes a table state a new leader could not recover.
func (op *leaderOp) commitApp(info *layer2.AppInfo, parts []*layer2.PartitionConfiguration) error {
	if err := op.writeApp(info); err != nil {
		return err
	}
	op.s.mu.Lock()
	op.lt.state.put(&app{info: info, partitions: parts})
	op.s.mu.Unlock()
	return nil
}
