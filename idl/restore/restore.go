// Package restore holds the thrift messages of upstream's restore status RPCs
// (RPC_CM_QUERY_RESTORE_STATUS from tools, RPC_CM_REPORT_RESTORE_STATUS from
// the replica servers), written by hand: the IDL this tree is generated from
// does not have them, and they are four small structs. Upstream declares them
// in its backup.thrift as
//
//	struct configuration_query_restore_request { 1: i32 restore_app_id; }
//	struct configuration_query_restore_response {
//	    1: dsn.error_code err;
//	    2: list<dsn.error_code> restore_status;
//	    3: list<i32> restore_progress;
//	}
//	struct configuration_report_restore_status_request {
//	    1: dsn.gpid pid;
//	    2: dsn.error_code restore_status;
//	    3: i32 progress;            // 0-1000
//	    4: optional string reason;
//	}
//
// plus, ours, 5: optional string node in the report: the replica server
// reporting (its listening address), which upstream takes from the
// connection; in a cluster without authentication the connection's remote
// address is an outgoing port, not the member's address.
//
//	struct configuration_report_restore_status_response { 1: dsn.error_code err; }
//
// Decoding never trusts a list length read from the wire for an allocation.
package restore

import (
	"context"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
)

// QueryRequest is configuration_query_restore_request.
type QueryRequest struct {
	RestoreAppID int32
}

// NewQueryRequest returns an empty request.
func NewQueryRequest() *QueryRequest { return &QueryRequest{} }

// QueryResponse is configuration_query_restore_response: one status and one
// progress (0-1000) per partition.
type QueryResponse struct {
	Err             *base.ErrorCode
	RestoreStatus   []*base.ErrorCode
	RestoreProgress []int32
}

// NewQueryResponse returns an empty response.
func NewQueryResponse() *QueryResponse { return &QueryResponse{Err: &base.ErrorCode{}} }

// GetErr returns the error code (nil-safe), as the generated responses do.
func (r *QueryResponse) GetErr() *base.ErrorCode {
	if r == nil {
		return nil
	}
	return r.Err
}

// ReportRequest is configuration_report_restore_status_request.
type ReportRequest struct {
	Pid           *base.Gpid
	RestoreStatus *base.ErrorCode
	Progress      int32
	Reason        *string
	Node          *string // ours: the reporting replica server
}

// NewReportRequest returns an empty request.
func NewReportRequest() *ReportRequest {
	return &ReportRequest{Pid: &base.Gpid{}, RestoreStatus: &base.ErrorCode{}}
}

// ReportResponse is configuration_report_restore_status_response.
type ReportResponse struct {
	Err *base.ErrorCode
}

// GetErr returns the error code (nil-safe), as the generated responses do.
func (r *ReportResponse) GetErr() *base.ErrorCode {
	if r == nil {
		return nil
	}
	return r.Err
}

// NewReportResponse returns an empty response.
func NewReportResponse() *ReportResponse { return &ReportResponse{Err: &base.ErrorCode{}} }

// field is one field of a struct being read: its id and type, and how to
// read it when the type matches.
type field struct {
	id   int16
	typ  thrift.TType
	read func(ctx context.Context, p thrift.TProtocol) error
}

// readStruct reads a struct, handing the known fields to their readers and
// skipping the rest (unknown ids, or a known id with another type).
func readStruct(ctx context.Context, p thrift.TProtocol, name string, fields ...field) error {
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	for {
		_, typ, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return fmt.Errorf("read %s field: %w", name, err)
		}
		if typ == thrift.STOP {
			break
		}
		handled := false
		for _, f := range fields {
			if f.id == id && f.typ == typ {
				if err := f.read(ctx, p); err != nil {
					return fmt.Errorf("read %s field %d: %w", name, id, err)
				}
				handled = true
				break
			}
		}
		if !handled {
			if err := p.Skip(ctx, typ); err != nil {
				return fmt.Errorf("skip %s field %d: %w", name, id, err)
			}
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			return fmt.Errorf("read %s field end: %w", name, err)
		}
	}
	return p.ReadStructEnd(ctx)
}

// writeStruct writes a struct whose fields are written by the given
// functions, each of which writes one whole field (or nothing, if unset).
func writeStruct(ctx context.Context, p thrift.TProtocol, name string, fields ...func() error) error {
	if err := p.WriteStructBegin(ctx, name); err != nil {
		return err
	}
	for _, f := range fields {
		if err := f(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := p.WriteFieldStop(ctx); err != nil {
		return err
	}
	return p.WriteStructEnd(ctx)
}

func writeField(ctx context.Context, p thrift.TProtocol, name string, typ thrift.TType, id int16, body func() error) error {
	if err := p.WriteFieldBegin(ctx, name, typ, id); err != nil {
		return err
	}
	if err := body(); err != nil {
		return err
	}
	return p.WriteFieldEnd(ctx)
}

func errOrUnknown(e *base.ErrorCode) *base.ErrorCode {
	if e == nil {
		return &base.ErrorCode{}
	}
	return e
}

func (r *QueryRequest) Read(ctx context.Context, p thrift.TProtocol) error {
	return readStruct(ctx, p, "configuration_query_restore_request",
		field{1, thrift.I32, func(ctx context.Context, p thrift.TProtocol) (err error) {
			r.RestoreAppID, err = p.ReadI32(ctx)
			return err
		}})
}

func (r *QueryRequest) Write(ctx context.Context, p thrift.TProtocol) error {
	return writeStruct(ctx, p, "configuration_query_restore_request", func() error {
		return writeField(ctx, p, "restore_app_id", thrift.I32, 1, func() error { return p.WriteI32(ctx, r.RestoreAppID) })
	})
}

func (r *QueryResponse) Read(ctx context.Context, p thrift.TProtocol) error {
	return readStruct(ctx, p, "configuration_query_restore_response",
		field{1, thrift.STRING, func(ctx context.Context, p thrift.TProtocol) error {
			r.Err = &base.ErrorCode{}
			return r.Err.Read(ctx, p)
		}},
		field{2, thrift.LIST, func(ctx context.Context, p thrift.TProtocol) error {
			r.RestoreStatus = nil
			return readList(ctx, p, thrift.STRING, func() error {
				e := &base.ErrorCode{}
				if err := e.Read(ctx, p); err != nil {
					return err
				}
				r.RestoreStatus = append(r.RestoreStatus, e)
				return nil
			})
		}},
		field{3, thrift.LIST, func(ctx context.Context, p thrift.TProtocol) error {
			r.RestoreProgress = nil
			return readList(ctx, p, thrift.I32, func() error {
				v, err := p.ReadI32(ctx)
				r.RestoreProgress = append(r.RestoreProgress, v)
				return err
			})
		}})
}

// readList reads a list of elem, one element per call of each; the length
// read bounds the loop only, never an allocation.
func readList(ctx context.Context, p thrift.TProtocol, elem thrift.TType, each func() error) error {
	typ, n, err := p.ReadListBegin(ctx)
	if err != nil {
		return err
	}
	if typ != elem {
		return fmt.Errorf("list of %v, want %v", typ, elem)
	}
	for range n {
		if err := each(); err != nil {
			return err
		}
	}
	return p.ReadListEnd(ctx)
}

func (r *QueryResponse) Write(ctx context.Context, p thrift.TProtocol) error {
	return writeStruct(ctx, p, "configuration_query_restore_response",
		func() error {
			return writeField(ctx, p, "err", thrift.STRING, 1, func() error { return errOrUnknown(r.Err).Write(ctx, p) })
		},
		func() error {
			return writeField(ctx, p, "restore_status", thrift.LIST, 2, func() error {
				if err := p.WriteListBegin(ctx, thrift.STRING, len(r.RestoreStatus)); err != nil {
					return err
				}
				for _, e := range r.RestoreStatus {
					if err := errOrUnknown(e).Write(ctx, p); err != nil {
						return err
					}
				}
				return p.WriteListEnd(ctx)
			})
		},
		func() error {
			return writeField(ctx, p, "restore_progress", thrift.LIST, 3, func() error {
				if err := p.WriteListBegin(ctx, thrift.I32, len(r.RestoreProgress)); err != nil {
					return err
				}
				for _, v := range r.RestoreProgress {
					if err := p.WriteI32(ctx, v); err != nil {
						return err
					}
				}
				return p.WriteListEnd(ctx)
			})
		})
}

func (r *ReportRequest) Read(ctx context.Context, p thrift.TProtocol) error {
	return readStruct(ctx, p, "configuration_report_restore_status_request",
		field{1, thrift.I64, func(ctx context.Context, p thrift.TProtocol) error {
			r.Pid = &base.Gpid{}
			return r.Pid.Read(ctx, p)
		}},
		field{2, thrift.STRING, func(ctx context.Context, p thrift.TProtocol) error {
			r.RestoreStatus = &base.ErrorCode{}
			return r.RestoreStatus.Read(ctx, p)
		}},
		field{3, thrift.I32, func(ctx context.Context, p thrift.TProtocol) (err error) {
			r.Progress, err = p.ReadI32(ctx)
			return err
		}},
		field{4, thrift.STRING, func(ctx context.Context, p thrift.TProtocol) error {
			s, err := p.ReadString(ctx)
			r.Reason = &s
			return err
		}},
		field{5, thrift.STRING, func(ctx context.Context, p thrift.TProtocol) error {
			s, err := p.ReadString(ctx)
			r.Node = &s
			return err
		}})
}

func (r *ReportRequest) Write(ctx context.Context, p thrift.TProtocol) error {
	return writeStruct(ctx, p, "configuration_report_restore_status_request",
		func() error {
			return writeField(ctx, p, "pid", thrift.I64, 1, func() error { return r.Pid.Write(ctx, p) })
		},
		func() error {
			return writeField(ctx, p, "restore_status", thrift.STRING, 2, func() error { return errOrUnknown(r.RestoreStatus).Write(ctx, p) })
		},
		func() error {
			return writeField(ctx, p, "progress", thrift.I32, 3, func() error { return p.WriteI32(ctx, r.Progress) })
		},
		func() error {
			if r.Reason == nil {
				return nil
			}
			return writeField(ctx, p, "reason", thrift.STRING, 4, func() error { return p.WriteString(ctx, *r.Reason) })
		},
		func() error {
			if r.Node == nil {
				return nil
			}
			return writeField(ctx, p, "node", thrift.STRING, 5, func() error { return p.WriteString(ctx, *r.Node) })
		})
}

func (r *ReportResponse) Read(ctx context.Context, p thrift.TProtocol) error {
	return readStruct(ctx, p, "configuration_report_restore_status_response",
		field{1, thrift.STRING, func(ctx context.Context, p thrift.TProtocol) error {
			r.Err = &base.ErrorCode{}
			return r.Err.Read(ctx, p)
		}})
}

func (r *ReportResponse) Write(ctx context.Context, p thrift.TProtocol) error {
	return writeStruct(ctx, p, "configuration_report_restore_status_response", func() error {
		return writeField(ctx, p, "err", thrift.STRING, 1, func() error { return errOrUnknown(r.Err).Write(ctx, p) })
	})
}
