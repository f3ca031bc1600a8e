package rpc

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
)

// Call is one decoded request handed to a handler.
type Call struct {
	Header Header
	Msg    MessageBegin
	Remote net.Addr
	args   thrift.TProtocol
	raw    []byte // the args struct as it arrived
	peer   Peer
}

// Peer is what the server knows of the caller: the cluster member it proved to
// be, if any, and whether it may administer the cluster.
func (c *Call) Peer() Peer { return c.peer }

// RawArgs returns the encoded args struct of the request, as received. A replica
// server logs and forwards client writes in this form without re-encoding them;
// DecodeArgsBytes reads it back.
func (c *Call) RawArgs() []byte { return c.raw }

// DecodeArgs decodes the request value into v.
func (c *Call) DecodeArgs(ctx context.Context, v Value) error {
	return DecodeArgs(ctx, c.args, v)
}

// HandlerFunc answers a call. A nil error sends result under ERR_OK; an *Error sends
// its name as a frame-level error; any other error is logged and sent as ERR_UNKNOWN.
type HandlerFunc func(ctx context.Context, call *Call) (Value, error)

type handler struct {
	fn     HandlerFunc
	oneWay bool
}

// Mux routes calls to handlers by RPC code. Handlers may be registered while the
// server runs (a meta server registers its handlers before it wins the election).
type Mux struct {
	mu       sync.RWMutex
	handlers map[string]handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: make(map[string]handler)} }

// HandleFunc registers fn for code, replacing any earlier handler.
func (m *Mux) HandleFunc(code string, fn HandlerFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[code] = handler{fn: fn}
}

// HandleOneWayFunc registers fn for a code that is never answered.
func (m *Mux) HandleOneWayFunc(code string, fn func(ctx context.Context, call *Call)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[code] = handler{oneWay: true, fn: func(ctx context.Context, c *Call) (Value, error) {
		fn(ctx, c)
		return nil, nil
	}}
}

// Codes returns the registered codes.
func (m *Mux) Codes() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.handlers))
	for c := range m.handlers {
		out = append(out, c)
	}
	return out
}

func (m *Mux) lookup(code string) (handler, bool) {
	m.mu.RLock()
	h, ok := m.handlers[code]
	m.mu.RUnlock()
	return h, ok
}

// Handle registers a typed handler: the request is decoded into a fresh *Req before
// fn runs; a request that does not decode is answered with ERR_INVALID_DATA.
func Handle[Req any, PReq interface {
	*Req
	Value
}, Resp Value](m *Mux, code string, fn func(ctx context.Context, call *Call, req PReq) (Resp, error)) {
	m.HandleFunc(code, func(ctx context.Context, call *Call) (Value, error) {
		req := PReq(new(Req))
		if err := call.DecodeArgs(ctx, req); err != nil {
			return nil, &decodeError{code: code, err: err}
		}
		resp, err := fn(ctx, call, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	})
}

// HandleOneWay registers a typed handler for a one-way code.
func HandleOneWay[Req any, PReq interface {
	*Req
	Value
}](m *Mux, code string, fn func(ctx context.Context, call *Call, req PReq)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[code] = handler{oneWay: true, fn: func(ctx context.Context, call *Call) (Value, error) {
		req := PReq(new(Req))
		if err := call.DecodeArgs(ctx, req); err != nil {
			return nil, &decodeError{code: code, err: err}
		}
		fn(ctx, call, req)
		return nil, nil
	}}
}

// decodeError is a request whose args could not be decoded.
type decodeError struct {
	code string
	err  error
}

func (e *decodeError) Error() string { return fmt.Sprintf("decode %s request: %v", e.code, e.err) }
func (e *decodeError) Unwrap() error { return e.err }

// frameCode picks the frame-level error name for a handler error.
func frameCode(err error) (code string, logIt bool) {
	switch e := err.(type) {
	case *Error:
		if base.IsFrameSafe(e.Code) {
			return e.Code, false
		}
		// A name the go clients cannot parse would make them stop reading the
		// connection; degrade it rather than break every other call on it.
		return base.ErrUnknown, true
	case *decodeError:
		return base.ErrInvalidData, true
	default:
		return base.ErrUnknown, true
	}
}
