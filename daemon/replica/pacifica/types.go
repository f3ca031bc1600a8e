package pacifica

import (
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

// Status is the role of a replica, as in the protocol's partition_status.
type Status = metadata.PartitionStatus

// Roles.
const (
	StatusInactive  = metadata.PartitionStatus_PS_INACTIVE
	StatusError     = metadata.PartitionStatus_PS_ERROR
	StatusPrimary   = metadata.PartitionStatus_PS_PRIMARY
	StatusSecondary = metadata.PartitionStatus_PS_SECONDARY
	StatusLearner   = metadata.PartitionStatus_PS_POTENTIAL_SECONDARY
)

// Config is a partition's membership at a ballot.
type Config struct {
	Ballot      int64
	Primary     string // "" when there is none
	Secondaries []string
}

// Members returns the primary (if any) followed by the secondaries.
func (c Config) Members() []string {
	var out []string
	if c.Primary != "" {
		out = append(out, c.Primary)
	}
	return append(out, c.Secondaries...)
}

// Has reports whether node is the primary or a secondary.
func (c Config) Has(node string) bool {
	return c.Primary == node || slices.Contains(c.Secondaries, node)
}

// Clone returns a deep copy.
func (c Config) Clone() Config {
	c.Secondaries = slices.Clone(c.Secondaries)
	return c
}

// Update is one client write carried by a mutation.
type Update struct {
	Code string // the RPC code, e.g. RPC_RRDB_RRDB_PUT
	Data []byte // the thrift-encoded request
}

// Mutation is the unit of replication: one decree carrying zero (an empty write) or
// more client writes.
type Mutation struct {
	Ballot        int64
	Decree        int64
	LastCommitted int64 // the primary's commit point when it prepared the mutation
	TimestampUS   int64
	DefaultTTL    int32 // the table's default_ttl (s) when prepared: all replicas apply the same
	Updates       []Update
}

// Write is a client write waiting on the primary. Tag is the I/O layer's handle on
// the waiting client; the state machine only carries it.
type Write struct {
	Update Update
	Tag    any
	Size   int
}

// Prepare is a prepare message to send.
type Prepare struct {
	To        string
	Config    Config
	Status    Status // what the receiver is asked to be
	Mutation  *Mutation
	Signature int64 // the learning's signature, for a learner
}

// Ack answers a prepare (sent by a secondary once the mutation is logged).
type Ack struct {
	To            string
	Decree        int64
	Ballot        int64
	Err           string // error name; ERR_OK on success
	LastCommitted int64
	LastPrepared  int64
}

// Committed is a mutation to apply to the storage engine, in order. Writes are the
// clients waiting for it (primary only).
type Committed struct {
	Mutation *Mutation
	Writes   []*Write
}

// Rejected is a client write refused before being prepared.
type Rejected struct {
	Write *Write
	Err   string
}

// ConfigRequest asks the meta server for a configuration change.
type ConfigRequest struct {
	Type   ChangeType
	Node   string // the node the change is about
	Config Config // the proposed configuration (ballot + 1)
}

// ChangeType names a configuration change; the values match config_type.
type ChangeType int32

// Change types used by the replica side.
const (
	ChangeAssignPrimary      ChangeType = 1
	ChangeUpgradeToPrimary   ChangeType = 2
	ChangeAddSecondary       ChangeType = 3
	ChangeUpgradeToSecondary ChangeType = 4
	ChangeDowngradeToSecond  ChangeType = 5
	ChangeDowngradeToInact   ChangeType = 6
	ChangeRemove             ChangeType = 7
	ChangeForceUpdateBallot  ChangeType = 9
)

// Resend asks the caller to call Resend(To, Decree) after Delay (a secondary said
// "not yet").
type Resend struct {
	To     string
	Decree int64
	Delay  time.Duration
}

// GroupCheck carries the commit point to a member of an idle partition.
type GroupCheck struct {
	To        string
	Config    Config
	Status    Status
	Committed int64
}

// Ready is what an event asks the caller to do, in this order: persist the ballot
// and configuration (synchronously) when Persist is set; append to the plog; send
// the messages; apply the committed mutations in order and answer their writes;
// answer the rejected writes; send the configuration request.
type Ready struct {
	Persist      bool
	Append       []*Mutation
	Prepares     []Prepare
	Acks         []Ack
	GroupChecks  []GroupCheck
	Resends      []Resend
	Commits      []Committed
	Rejects      []Rejected
	ConfigChange *ConfigRequest
	// AddLearner asks the caller to tell a node to start learning (primary).
	AddLearner *LearnerStart
	// Closed is set when the replica left the configuration for good and should be
	// closed by the caller.
	Closed bool
}

// LearnerStart tells a node to start learning from this primary.
type LearnerStart struct {
	Node      string
	Signature int64
	Config    Config
}

func (r *Ready) merge(o Ready) {
	r.Persist = r.Persist || o.Persist
	r.Append = append(r.Append, o.Append...)
	r.Prepares = append(r.Prepares, o.Prepares...)
	r.Acks = append(r.Acks, o.Acks...)
	r.GroupChecks = append(r.GroupChecks, o.GroupChecks...)
	r.Resends = append(r.Resends, o.Resends...)
	r.Commits = append(r.Commits, o.Commits...)
	r.Rejects = append(r.Rejects, o.Rejects...)
	if o.ConfigChange != nil {
		r.ConfigChange = o.ConfigChange
	}
	if o.AddLearner != nil {
		r.AddLearner = o.AddLearner
	}
	r.Closed = r.Closed || o.Closed
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return !r.Persist && len(r.Append) == 0 && len(r.Prepares) == 0 && len(r.Acks) == 0 &&
		len(r.GroupChecks) == 0 && len(r.Resends) == 0 && len(r.Commits) == 0 &&
		len(r.Rejects) == 0 && r.ConfigChange == nil && r.AddLearner == nil && !r.Closed
}
