// Package rpc serves the fractal.v1 API (api/fractalv1) over a running node
// (package fractal/node): every method of FractalService, each request
// checked against the schema's bounds (api.Check) before the node acts, each
// refusal given the schema's error code (docs/API.md).
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fractalvm/fractal/api"
	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/api/fractalv1/fractalv1connect"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/wire"
)

// Service implements fractalv1connect.FractalServiceHandler over a node
// (a Backend).
type Service struct {
	b       Backend
	in      *fractal.Instance
	genesis [32]byte
}

var _ fractalv1connect.FractalServiceHandler = (*Service)(nil)

// New returns the service of b.
func New(b Backend) (*Service, error) {
	g, err := b.Instance().Block(0)
	if err != nil {
		return nil, err
	}
	return &Service{b: b, in: b.Instance(), genesis: g.Hash()}, nil
}

// Backend returns what the service serves from.
func (s *Service) Backend() Backend { return s.b }

// Handler returns the API's path prefix and handler, with the JSON codec of
// decision 110, the node's request size limit, and opts (interceptors).
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	opts = append([]connect.HandlerOption{
		connect.WithCodec(JSONCodec("json")),
		connect.WithCodec(JSONCodec("json; charset=utf-8")),
		connect.WithReadMaxBytes(int(s.b.Config().MaxRequestBytes)),
		connect.WithCompressMinBytes(compressMinBytes),
	}, opts...)
	return fractalv1connect.NewFractalServiceHandler(s, opts...)
}

// JSONCodec is protobuf's JSON mapping with the schema's field names
// (tx_id, not txId) on output; input takes either spelling and ignores
// unknown fields, so a newer client can talk to an older node.
type JSONCodec string

func (c JSONCodec) Name() string { return string(c) }

func (c JSONCodec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return protojson.MarshalOptions{UseProtoNames: true}.Marshal(pm)
}

func (c JSONCodec) Unmarshal(data []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", m)
	}
	if len(data) == 0 {
		return errors.New("an empty body is not a JSON object; send {}")
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, pm)
}

// MarshalStable is Marshal without protojson's varying whitespace (for
// Connect GET requests).
func (c JSONCodec) MarshalStable(m any) ([]byte, error) {
	b, err := c.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (c JSONCodec) IsBinary() bool { return false }

// checked returns the request's message after its bounds check.
func checked[T any, PT interface {
	*T
	proto.Message
}](req *connect.Request[T]) (PT, error) {
	m := PT(req.Msg)
	return m, check(m)
}

// check checks a request against the schema's bounds.
func check(m proto.Message) error {
	if err := api.Check(m); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

// codeOf maps a node refusal to its API code; any other error is internal.
func codeOf(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	var ne *node.Error
	if !errors.As(err, &ne) {
		if errors.Is(err, context.Canceled) {
			return connect.NewError(connect.CodeCanceled, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return connect.NewError(connect.CodeDeadlineExceeded, err)
		}
		return connect.NewError(connect.CodeInternal, err)
	}
	code := map[node.Kind]connect.Code{
		node.Invalid:      connect.CodeInvalidArgument,
		node.NotFound:     connect.CodeNotFound,
		node.Exists:       connect.CodeAlreadyExists,
		node.Exhausted:    connect.CodeResourceExhausted,
		node.Precondition: connect.CodeFailedPrecondition,
		node.Unavailable:  connect.CodeUnavailable,
	}[ne.Kind]
	return connect.NewError(code, errors.New(trim(ne.Error())))
}

// trim drops the instance package's "fractal: " prefix from a message.
func trim(msg string) string { return strings.TrimPrefix(msg, "fractal: ") }

func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

func notFound(format string, args ...any) error {
	return connect.NewError(connect.CodeNotFound, fmt.Errorf(format, args...))
}

func internal(err error) error {
	return connect.NewError(connect.CodeInternal, errors.New(trim(err.Error())))
}

// parseID reads a 64-hex-digit identifier field.
func parseID(field, s string) ([32]byte, error) {
	h, err := wire.ParseHash(s)
	if err != nil {
		return h, invalid("%s: %v", field, err)
	}
	return h, nil
}

func (s *Service) GetStatus(ctx context.Context, req *connect.Request[v1.GetStatusRequest]) (*connect.Response[v1.GetStatusResponse], error) {
	if _, err := checked(req); err != nil {
		return nil, err
	}
	cfg := s.in.Config()
	head, err := s.head()
	if err != nil {
		return nil, err
	}
	out := &v1.GetStatusResponse{
		InstanceId: wire.Hex(s.in.ID()), GenesisHash: wire.Hex(s.genesis), Executor: s.in.Executor().String(),
		Head: wire.Header(head), MempoolDepth: uint64(s.b.QueueDepth()), MaxQueue: uint64(cfg.MaxQueue),
		MaxBlockTxs: uint32(cfg.MaxBlockTxs), MaxTxBytes: uint32(cfg.MaxTxBytes),
	}
	_, err = s.in.ThresholdKey()
	switch {
	case err == nil:
		out.EncryptedMempool = true
	case !errors.Is(err, fractal.ErrNoThresholdKey):
		return nil, internal(err)
	}
	if out.EncryptedMempool {
		st, err := s.in.PendingEncrypted()
		if err != nil {
			return nil, internal(err)
		}
		if st != nil {
			out.WaitingBatch = st.Batch.Number
		}
	}
	return connect.NewResponse(out), nil
}

// receiptWait is how long SubmitTransaction may wait for a receipt: until
// shortly before the call's deadline (a quarter of what is left, at most a
// second, for the answer to reach the caller on a busy machine), within the
// node's own limit.
func (s *Service) receiptWait(ctx context.Context) time.Duration {
	wait := time.Duration(s.b.Config().MaxReceiptWait)
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wait = min(wait, left-min(left/4, time.Second))
	}
	return max(wait, 0)
}

// compressMinBytes is the smallest response the node compresses (when the
// client accepts gzip): smaller ones cost more CPU than they save bytes.
const compressMinBytes = 64 << 10
