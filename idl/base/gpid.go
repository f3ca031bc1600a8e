package base

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/thrift/lib/go/thrift"
)

// Gpid identifies a partition: (app id, partition index). On the wire it is one i64
// whose high half is the partition index and low half the app id.
type Gpid struct {
	Appid          int32
	PartitionIndex int32
}

// NewGpid returns a Gpid for the partition.
func NewGpid(appID, pidx int32) *Gpid { return &Gpid{Appid: appID, PartitionIndex: pidx} }

// Raw returns the wire value.
func (g *Gpid) Raw() int64 {
	if g == nil {
		return 0
	}
	return int64(uint64(uint32(g.PartitionIndex))<<32 | uint64(uint32(g.Appid)))
}

// GpidFromRaw decodes a wire value.
func GpidFromRaw(v int64) Gpid {
	return Gpid{Appid: int32(uint32(uint64(v))), PartitionIndex: int32(uint32(uint64(v) >> 32))}
}

func (g *Gpid) Read(ctx context.Context, iprot thrift.TProtocol) error {
	v, err := iprot.ReadI64(ctx)
	if err != nil {
		return fmt.Errorf("read gpid: %w", err)
	}
	*g = GpidFromRaw(v)
	return nil
}

func (g *Gpid) Write(ctx context.Context, oprot thrift.TProtocol) error {
	return oprot.WriteI64(ctx, g.Raw())
}

// Equals compares two gpids; nil equals the zero gpid.
func (g *Gpid) Equals(o *Gpid) bool { return g.Raw() == o.Raw() }

// String formats the gpid as upstream does: "app_id.partition_index".
func (g *Gpid) String() string {
	if g == nil {
		return "0.0"
	}
	return fmt.Sprintf("%d.%d", g.Appid, g.PartitionIndex)
}

// ParseGpid parses "app_id.partition_index".
func ParseGpid(s string) (Gpid, error) {
	a, p, ok := strings.Cut(s, ".")
	if !ok {
		return Gpid{}, fmt.Errorf("parse gpid %q: want app_id.partition_index", s)
	}
	app, err := strconv.ParseInt(a, 10, 32)
	if err != nil {
		return Gpid{}, fmt.Errorf("parse gpid %q: app id: %w", s, err)
	}
	pidx, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return Gpid{}, fmt.Errorf("parse gpid %q: partition index: %w", s, err)
	}
	return Gpid{Appid: int32(app), PartitionIndex: int32(pidx)}, nil
}
