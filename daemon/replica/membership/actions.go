package membership

import (
	"log/slog"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// Action is an effect the replica server carries out, in the order given.
type Action interface{ action() }

// ApplyConfig hands a configuration from the meta server to the open replica
// of G (its executor adopts it, or asks for a new ballot).
type ApplyConfig struct {
	G      base.Gpid
	Info   *layer2.AppInfo
	Config pacifica.Config
}

// Create makes an empty replica of G (a partition's first configuration, from
// the meta's install proposal) and applies Config to it.
type Create struct {
	G      base.Gpid
	Info   *layer2.AppInfo
	Config pacifica.Config
}

// ReopenReason says why a replica is opened again, and so what follows.
type ReopenReason int

const (
	// ReopenListedPrimary: a config sync lists this server as primary of a
	// retired replica. If it does not open, the server feeds ReopenFailed back.
	ReopenListedPrimary ReopenReason = iota + 1
	// ReopenAssignPrimary: the meta server assigns this server primary of a
	// partition whose replica it closed. If opening fails, nothing follows.
	ReopenAssignPrimary
)

// Reopen opens the replica directory of G left on a disk, then carries out
// Then. Info and Config are the meta's, for ReopenFailed.
type Reopen struct {
	G      base.Gpid
	For    ReopenReason
	Info   *layer2.AppInfo
	Config *layer2.PartitionConfiguration
	Then   []Action
}

// CheckStale asks the executor of the open replica of G whether a config sync
// answer that did not list it, requested at change sequence Seq when the
// replica reported Ballot, still applies (Machine.StaleCheck).
type CheckStale struct {
	G      base.Gpid
	Seq    uint64
	Ballot int64
}

// Retire closes the replica of G as no longer a member: its data stays, it is
// still reported, and it may be opened again.
type Retire struct {
	G      base.Gpid
	Reason string
}

// Disown asks the meta server to take this server out as the primary of a
// partition it holds no replica of (its disk left the data_dirs, or the replica
// failed to open). The server looks alive to the failure detector, so without
// this the partition would wait for a primary that can never serve.
// Secondaries need nothing: the primary's group check drops them.
type Disown struct {
	Info   *layer2.AppInfo
	Config *layer2.PartitionConfiguration
}

// RequestChange makes the open replica of G ask the meta server for Change.
// The server records it as activity on the replica (Machine.Changed) before
// handing it to the replica's executor.
type RequestChange struct {
	G      base.Gpid
	Change Change
}

// AddLearner makes the primary of G invite Node to learn (a balancing move,
// ForLB, may go one over the replica count: it adds before it removes).
type AddLearner struct {
	G     base.Gpid
	Node  string
	ForLB bool
}

// GarbageCollect moves aside the directory of the closed replica of G, which the
// meta server says may be deleted (a dropped table past its reserve time), and
// forgets it as retired.
type GarbageCollect struct {
	G base.Gpid
}

// SignalConfirmed tells the waiters for the first config sync that the cluster
// is confirmed.
type SignalConfirmed struct{}

// Release hands back a proposal held until the cluster was confirmed: the
// server handles it again from the start.
type Release struct {
	Req *consensus.ConfigurationUpdateRequest
}

// Log is a line for the server's log.
type Log struct {
	Level slog.Level
	Msg   string
	Args  []any
}

func (ApplyConfig) action()     {}
func (Create) action()          {}
func (Reopen) action()          {}
func (CheckStale) action()      {}
func (Retire) action()          {}
func (Disown) action()          {}
func (RequestChange) action()   {}
func (AddLearner) action()      {}
func (GarbageCollect) action()  {}
func (SignalConfirmed) action() {}
func (Release) action()         {}
func (Log) action()             {}
