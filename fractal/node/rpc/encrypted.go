package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/wire"
)

func (s *Service) GetThresholdKey(ctx context.Context, req *connect.Request[v1.GetThresholdKeyRequest]) (*connect.Response[v1.GetThresholdKeyResponse], error) {
	if _, err := checked(req); err != nil {
		return nil, err
	}
	pk, err := s.in.ThresholdKey()
	if errors.Is(err, fractal.ErrNoThresholdKey) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("no threshold key is attached: the encrypted mempool is closed"))
	}
	if err != nil {
		return nil, internal(err)
	}
	return connect.NewResponse(&v1.GetThresholdKeyResponse{
		Key: pk.Encode(), KeyId: wire.Hex(pk.ID()), N: uint32(pk.N), K: uint32(pk.K), Context: fractal.EncryptedContext(s.in.ID()),
	}), nil
}

func (s *Service) SubmitEncrypted(ctx context.Context, req *connect.Request[v1.SubmitEncryptedRequest]) (*connect.Response[v1.SubmitEncryptedResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	id, err := s.b.SubmitEncrypted(m.Payload)
	if err != nil {
		return nil, codeOf(err)
	}
	return connect.NewResponse(&v1.SubmitEncryptedResponse{PayloadId: wire.Hex(id)}), nil
}

func (s *Service) GetPendingEncrypted(ctx context.Context, req *connect.Request[v1.GetPendingEncryptedRequest]) (*connect.Response[v1.GetPendingEncryptedResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	st, err := s.in.PendingEncrypted()
	if err != nil {
		return nil, internal(err)
	}
	queued, err := s.in.QueuedEncrypted()
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.GetPendingEncryptedResponse{Batch: wire.EncryptedBatch(st), Queued: uint64(len(queued))}
	if st != nil {
		out.Chain = wire.ChainWait(st.Chain)
	}
	if st != nil && m.IncludePayloads {
		if out.Payloads, err = s.in.PendingPayloads(); err != nil {
			return nil, internal(err)
		}
	}
	return connect.NewResponse(out), nil
}

func (s *Service) SubmitShares(ctx context.Context, req *connect.Request[v1.SubmitSharesRequest]) (*connect.Response[v1.SubmitSharesResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	st, err := s.b.SubmitShares(m.Shares)
	if err != nil {
		return nil, codeOf(err)
	}
	return connect.NewResponse(&v1.SubmitSharesResponse{Batch: wire.EncryptedBatch(st)}), nil
}

func (s *Service) GetEncryptedOutcome(ctx context.Context, req *connect.Request[v1.GetEncryptedOutcomeRequest]) (*connect.Response[v1.GetEncryptedOutcomeResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("payload_id", m.PayloadId)
	if err != nil {
		return nil, err
	}
	out := &v1.GetEncryptedOutcomeResponse{}
	if o, err := s.in.Outcome(id); err == nil {
		out.Batch, out.Slot, out.Receipt = o.Batch, o.Slot, wire.Receipt(o.Receipt)
		// A dropped payload's receipt names the payload, not a transaction
		// (fractal.EncryptedOutcome).
		out.State = v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_DROPPED
		if o.Receipt.TxID != id {
			out.State, out.TxId = v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_EXECUTED, wire.Hex(o.TxID)
		}
		return connect.NewResponse(out), nil
	}
	st, err := s.in.PendingEncrypted()
	if err != nil {
		return nil, internal(err)
	}
	if st != nil {
		for i, p := range st.Batch.PayloadIDs {
			if p == id {
				out.State, out.Batch, out.Slot = v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_IN_BATCH, st.Batch.Number, uint32(i)
				return connect.NewResponse(out), nil
			}
		}
	}
	queued, err := s.in.QueuedEncrypted()
	if err != nil {
		return nil, internal(err)
	}
	for _, q := range queued {
		if q == id {
			out.State = v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_QUEUED
			return connect.NewResponse(out), nil
		}
	}
	return nil, notFound("no encrypted transaction with payload ID %s", m.PayloadId)
}
