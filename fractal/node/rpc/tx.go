package rpc

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/fractalvm/fractal/api"
	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/phases"
)

// requestTx reads the transaction a SubmitTransaction or Simulate request,
// or one input of a SubmitTransactions request, carries: its encoding, or
// its JSON form with file references refused.
func requestTx(oneof any) (*phases.Tx, error) {
	var tx *phases.Tx
	var err error
	switch t := oneof.(type) {
	case *v1.SubmitTransactionRequest_TxBytes:
		tx, err = phases.DecodeTx(t.TxBytes)
	case *v1.SimulateRequest_TxBytes:
		tx, err = phases.DecodeTx(t.TxBytes)
	case *v1.TransactionInput_TxBytes:
		tx, err = phases.DecodeTx(t.TxBytes)
	case *v1.SubmitTransactionRequest_TxJson:
		tx, err = phases.ParseJSON(strings.NewReader(t.TxJson), "")
	case *v1.SimulateRequest_TxJson:
		tx, err = phases.ParseJSON(strings.NewReader(t.TxJson), "")
	case *v1.TransactionInput_TxJson:
		tx, err = phases.ParseJSON(strings.NewReader(t.TxJson), "")
	default:
		return nil, invalid("no transaction: give tx_bytes or tx_json")
	}
	if err != nil {
		return nil, invalid("%v", err)
	}
	return tx, nil
}

func (s *Service) SubmitTransaction(ctx context.Context, req *connect.Request[v1.SubmitTransactionRequest]) (*connect.Response[v1.SubmitTransactionResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	tx, err := requestTx(m.Tx)
	if err != nil {
		return nil, err
	}
	if !m.WaitForReceipt {
		id, err := s.b.Submit(ctx, tx)
		if err != nil {
			return nil, codeOf(err)
		}
		return connect.NewResponse(&v1.SubmitTransactionResponse{TxId: wire.Hex(id), State: v1.TransactionState_TRANSACTION_STATE_QUEUED}), nil
	}
	id, r, err := s.b.SubmitAndWait(ctx, tx, s.receiptWait(ctx))
	if err != nil {
		return nil, codeOf(err)
	}
	out := &v1.SubmitTransactionResponse{TxId: wire.Hex(id)}
	setResult(r, &out.State, &out.Height, &out.Receipt)
	return connect.NewResponse(out), nil
}

// SubmitTransactions admits its transactions as one group, in order
// (Backend.SubmitBatch), and answers each one's result in order: a
// transaction that does not decode or that admission refuses gets the
// error SubmitTransaction would fail with, and the others go on.
func (s *Service) SubmitTransactions(ctx context.Context, req *connect.Request[v1.SubmitTransactionsRequest]) (*connect.Response[v1.SubmitTransactionsResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	if len(m.Transactions) == 0 {
		return nil, invalid("transactions: none given; give 1 to %d", maxBatch)
	}
	out := &v1.SubmitTransactionsResponse{Results: make([]*v1.SubmitTransactionResult, len(m.Transactions))}
	txs := make([]*phases.Tx, 0, len(m.Transactions))
	at := make([]int, 0, len(m.Transactions))
	for i, in := range m.Transactions {
		out.Results[i] = &v1.SubmitTransactionResult{}
		tx, err := requestTx(in.Tx)
		if err != nil {
			out.Results[i].Error = callError(err)
			continue
		}
		txs, at = append(txs, tx), append(at, i)
	}
	var wait time.Duration // 0: answer once admitted
	if m.WaitForReceipt {
		wait = s.receiptWait(ctx)
	}
	for j, sub := range s.b.SubmitBatch(ctx, txs, wait) {
		r := out.Results[at[j]]
		r.TxId = wire.Hex(sub.ID)
		if sub.Err != nil {
			r.Error = callError(codeOf(sub.Err))
			continue
		}
		setResult(sub.Result, &r.State, &r.Height, &r.Receipt)
	}
	return connect.NewResponse(out), nil
}

// maxBatch is the most transactions a SubmitTransactions call carries (the
// schema's bound).
var maxBatch = api.MaxCount(&v1.SubmitTransactionsRequest{}, "transactions")

// callError is err, a call's error (codeOf's), as a result carries it.
func callError(err error) *v1.CallError {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		ce = connect.NewError(connect.CodeInternal, err)
	}
	return &v1.CallError{Code: ce.Code().String(), Message: ce.Message()}
}

// setResult fills a response's state, height and receipt from a wait's
// result.
func setResult(r node.Result, state *v1.TransactionState, height *uint64, rc **v1.Receipt) {
	switch {
	case r.Refused:
		*state, *rc = v1.TransactionState_TRANSACTION_STATE_REFUSED, wire.Receipt(r.Receipt)
	case r.State == fractal.TxCommitted:
		*state, *height, *rc = v1.TransactionState_TRANSACTION_STATE_COMMITTED, r.Height, wire.Receipt(r.Receipt)
	default:
		*state = v1.TransactionState_TRANSACTION_STATE_QUEUED
	}
}

func (s *Service) Simulate(ctx context.Context, req *connect.Request[v1.SimulateRequest]) (*connect.Response[v1.SimulateResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	tx, err := requestTx(m.Tx)
	if err != nil {
		return nil, err
	}
	id := tx.ID()
	if m.EstimateGas {
		est, err := s.b.EstimateGas(ctx, tx)
		if err != nil {
			return nil, codeOf(err)
		}
		return connect.NewResponse(&v1.SimulateResponse{TxId: wire.Hex(id), Height: est.Height, Receipt: wire.Receipt(est.Receipt), GasLimit: est.Limit}), nil
	}
	rc, h, err := s.b.Simulate(ctx, tx, m.AllowUnsigned)
	if err != nil {
		return nil, codeOf(err)
	}
	return connect.NewResponse(&v1.SimulateResponse{TxId: wire.Hex(id), Height: h, Receipt: wire.Receipt(rc)}), nil
}

func (s *Service) GetTransaction(ctx context.Context, req *connect.Request[v1.GetTransactionRequest]) (*connect.Response[v1.GetTransactionResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("tx_id", m.TxId)
	if err != nil {
		return nil, err
	}
	tx, st, h, err := s.in.Transaction(id)
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.GetTransactionResponse{}
	switch st {
	case fractal.TxUnknown:
		return nil, notFound("no queued or committed transaction %s", m.TxId)
	case fractal.TxQueued:
		out.State = v1.TransactionState_TRANSACTION_STATE_QUEUED
	case fractal.TxCommitted:
		b, err := s.in.Block(h)
		if err != nil {
			return nil, internal(err)
		}
		for i, t := range b.TxIDs {
			if t == id {
				out.Index = uint32(i)
			}
		}
		out.State, out.Height = v1.TransactionState_TRANSACTION_STATE_COMMITTED, h
	}
	if out.Transaction, err = wire.Transaction(tx); err != nil {
		return nil, internal(err)
	}
	return connect.NewResponse(out), nil
}

func (s *Service) GetReceipt(ctx context.Context, req *connect.Request[v1.GetReceiptRequest]) (*connect.Response[v1.GetReceiptResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("tx_id", m.TxId)
	if err != nil {
		return nil, err
	}
	st, h, err := s.in.TxState(id)
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.GetReceiptResponse{}
	switch st {
	case fractal.TxQueued:
		out.State = v1.TransactionState_TRANSACTION_STATE_QUEUED
	case fractal.TxCommitted:
		rc, err := s.in.Receipt(id)
		if err != nil {
			return nil, internal(err)
		}
		out.State, out.Height, out.Receipt = v1.TransactionState_TRANSACTION_STATE_COMMITTED, h, wire.Receipt(rc)
	default:
		rc, ok := s.b.Refused(id)
		if !ok {
			return nil, notFound("no queued or committed transaction %s, and none refused recently", m.TxId)
		}
		out.State, out.Receipt = v1.TransactionState_TRANSACTION_STATE_REFUSED, wire.Receipt(rc)
	}
	return connect.NewResponse(out), nil
}
