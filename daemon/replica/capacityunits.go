package replica

import (
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage"
)

// Capacity units are what upstream's capacity_unit_calculator bills a table
// by: a served read costs one read unit per started ReadCapacityUnitSize bytes
// it returned, and at least one (a read that finds nothing costs one); an
// applied write costs one write unit per started WriteCapacityUnitSize bytes it
// carried, at least one. Reads count where they are served, writes on the
// primary only, as upstream's write service does. A request refused with an
// error (other than not found, or a check that failed) costs nothing. They are
// the read_capacity_units and write_capacity_units counters of the replica
// entity.

// capacityUnits is the units of n bytes with units of size bytes.
func capacityUnits(n, size int64) int64 {
	if n <= 0 {
		return 1
	}
	return (n + size - 1) / size
}

// readCharged tells whether a read that answered code costs capacity units:
// upstream charges the found and the not found, and for the multi-key reads
// also the incomplete (a limit reached) and the invalid argument.
func readCharged(resp any, code int32) bool {
	switch code {
	case storage.CodeOK, storage.CodeNotFound:
		return true
	case storage.CodeIncomplete, storage.CodeInvalidArgument:
		switch resp.(type) {
		case *rrdb.MultiGetResponse, *rrdb.BatchGetResponse:
			return true
		}
		return code == storage.CodeIncomplete
	}
	return false
}

// readCode is the storage code a read answered.
func readCode(resp any) (int32, bool) {
	switch r := resp.(type) {
	case *rrdb.ReadResponse:
		return r.Error, true
	case *rrdb.MultiGetResponse:
		return r.Error, true
	case *rrdb.BatchGetResponse:
		return r.Error, true
	case *rrdb.ScanResponse:
		return r.Error, true
	case *rrdb.CountResponse:
		return r.Error, true
	case *rrdb.TTLResponse:
		return r.Error, true
	}
	return 0, false
}

// countReadUnits adds a served read's units; n is its bytes (readSize).
func (s *Stub) countReadUnits(p *partition, resp any, n int) {
	code, ok := readCode(resp)
	if !ok || !readCharged(resp, code) {
		return
	}
	s.metrics.entity(p).Counter("read_capacity_units").Add(capacityUnits(int64(n), s.opts.ReadCapacityUnitSize))
}

// countWriteUnits adds an applied write's units, and the read units of the
// writes that read first (incr, check_and_set, check_and_mutate).
func (s *Stub) countWriteUnits(p *partition, o storage.Op, res storage.OpResult) {
	code := res.Code()
	var wrote, read int64 = -1, -1 // -1: no units
	switch {
	case o.Put != nil, o.MultiPut != nil:
		if code == storage.CodeOK {
			_, n := writeSize(o)
			wrote = int64(n)
		}
	case o.Remove != nil:
		if code == storage.CodeOK {
			wrote = int64(o.Remove.Len())
		}
	case o.MultiRemove != nil:
		if code == storage.CodeOK {
			wrote = int64(o.MultiRemove.HashKey.Len())
			for _, k := range o.MultiRemove.SortKeys {
				wrote += int64(k.Len())
			}
		}
	case o.Incr != nil:
		if code == storage.CodeOK {
			wrote = int64(o.Incr.Key.Len())
		}
		if code == storage.CodeOK || code == storage.CodeInvalidArgument {
			read = 0
		}
	case o.CheckAndSet != nil:
		r := o.CheckAndSet
		if code == storage.CodeOK {
			wrote = int64(r.HashKey.Len() + r.SetSortKey.Len() + r.SetValue.Len())
		}
		if code == storage.CodeOK || code == storage.CodeTryAgain {
			read = int64(r.HashKey.Len() + r.CheckSortKey.Len())
		}
	case o.CheckAndMutate != nil:
		r := o.CheckAndMutate
		if code == storage.CodeOK {
			wrote = int64(r.HashKey.Len())
			for _, mu := range r.MutateList {
				if mu != nil {
					wrote += int64(mu.SortKey.Len() + mu.Value.Len())
				}
			}
		}
		if code == storage.CodeOK || code == storage.CodeTryAgain {
			read = int64(r.HashKey.Len() + r.CheckSortKey.Len())
		}
	}
	e := s.metrics.entity(p)
	if wrote >= 0 {
		e.Counter("write_capacity_units").Add(capacityUnits(wrote, s.opts.WriteCapacityUnitSize))
	}
	if read >= 0 {
		e.Counter("read_capacity_units").Add(capacityUnits(read, s.opts.ReadCapacityUnitSize))
	}
}
