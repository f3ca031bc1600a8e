package replica

import (
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// refusedWriteLogEvery is how often each kind of refused client write is logged
// at most (Stub.oversizeLog, Stub.misroutedLog): a client can send such writes
// at any rate.
const refusedWriteLogEvery = 10 * time.Second

// checkWrite refuses, before it is proposed, a client write that is larger than
// max_allowed_write_size (ERR_INVALID_DATA, as upstream) or whose hash key belongs
// to another partition (ERR_PARENT_PARTITION_MISUSED). raw is the encoded request.
func (s *Stub) checkWrite(c *rpc.Call, p *partition, op string, raw []byte, o *storage.Op) error {
	if limit := s.opts.MaxAllowedWriteSize; limit > 0 && int64(len(raw)) > limit {
		// The frame error carries no message, so the client only learns
		// ERR_INVALID_DATA: the log and the metric are where the size shows.
		s.metrics.writeFailed.Inc()
		s.metrics.entity(p).Counter("write_size_exceed_threshold_requests").Inc()
		s.oversizeLog.Warn(p.log, "write refused: request larger than [replication] max_allowed_write_size",
			"op", op, "size", len(raw), "limit", limit, "table", p.appInfo().AppName, "remote", remoteAddr(c))
		return rpc.NewError(base.ErrInvalidData)
	}
	if hk := writeHashKey(o); !p.owns(hk) {
		s.metrics.writeFailed.Inc()
		s.misroutedLog.Warn(p.log, "write refused: its hash key belongs to another partition",
			"op", op, "table", p.appInfo().AppName, "partition_hash", rpc.PartitionHash(hk),
			"header_partition_hash", c.Header.PartitionHash, "remote", remoteAddr(c))
		return rpc.NewError(base.ErrParentPartitionMisused)
	}
	return nil
}

func remoteAddr(c *rpc.Call) string {
	if c.Remote == nil {
		return ""
	}
	return c.Remote.String()
}

// writeHashKey returns the hash key a write applies to, nil when its key does not
// decode (the store refuses that as an invalid argument).
func writeHashKey(o *storage.Op) []byte {
	switch {
	case o.Put != nil:
		return compositeHashKey(o.Put.Key)
	case o.Remove != nil:
		return compositeHashKey(o.Remove)
	case o.Incr != nil:
		return compositeHashKey(o.Incr.Key)
	case o.MultiPut != nil:
		return o.MultiPut.HashKey.Bytes()
	case o.MultiRemove != nil:
		return o.MultiRemove.HashKey.Bytes()
	case o.CheckAndSet != nil:
		return o.CheckAndSet.HashKey.Bytes()
	case o.CheckAndMutate != nil:
		return o.CheckAndMutate.HashKey.Bytes()
	}
	return nil
}

func compositeHashKey(key *base.Blob) []byte {
	h, _, err := keys.DecodeKey(key.Bytes())
	if err != nil {
		return nil
	}
	return h
}

// owns reports whether a write of hashKey may be applied by this partition: the
// partition of CRC-64(hashKey) must be this one, or the record would be stored where
// no read ever looks for it (upstream refuses such writes with
// ERR_PARENT_PARTITION_MISUSED when it validates partition hashes). The check uses
// the decoded hash key, not the header's partition hash, which some callers leave at
// 0. An empty or undecodable hash key passes: the store refuses it as an invalid
// argument, as before, and clients disagree on where an empty hash key routes.
func (p *partition) owns(hashKey []byte) bool {
	count := p.appInfo().PartitionCount
	if len(hashKey) == 0 || count <= 0 {
		return true
	}
	return rpc.PartitionIndex(rpc.PartitionHash(hashKey), int(count)) == int(p.gpid.PartitionIndex)
}
