package rpc

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/fractalvm/fractal/api"
	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// notesScanBudget is how many stored notes one ListNotes page may look at,
// so that a sparse pattern costs a bounded read per call.
const notesScanBudget = 4096

// block returns the block at h, or not_found above the head. Blocks are
// read from the store, which a client that saw a seal's effects may be
// ahead of the node's own record of its head by a moment.
func (s *Service) block(h uint64) (*chain.Block, error) {
	b, err := s.in.Block(h)
	if err == nil {
		return b, nil
	}
	head, herr := s.in.Head()
	if herr == nil && h > head.Height {
		return nil, notFound("no block at height %d (the head is %d)", h, head.Height)
	}
	return nil, internal(err)
}

// head returns the last sealed block, from the store.
func (s *Service) head() (*chain.Block, error) {
	b, err := s.in.Head()
	if err != nil {
		return nil, internal(err)
	}
	return b, nil
}

func (s *Service) GetBlock(ctx context.Context, req *connect.Request[v1.GetBlockRequest]) (*connect.Response[v1.GetBlockResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	var b *chain.Block
	if m.Height != nil {
		b, err = s.block(*m.Height)
	} else {
		b, err = s.head()
	}
	if err != nil {
		return nil, err
	}
	resp := &v1.GetBlockResponse{Block: wire.Block(b)}
	if m.WithCertificate {
		if resp.Certificate, err = s.certificate(ctx, b.Height); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(resp), nil
}

// certificate returns what certifies the block at height beside its
// signature: nothing on a solo node; on a validator set, the certificate
// of the validators' commit (decision 123), which may wait for the next
// consensus block.
func (s *Service) certificate(ctx context.Context, height uint64) ([]byte, error) {
	cert, err := s.b.Certificate(ctx, height)
	if err != nil {
		return nil, codeOf(err)
	}
	return cert, nil
}

// A ListBlocks page token is the direction ("up" or "down"), a colon and
// the next height to list.
func blocksToken(up bool, next uint64) string {
	dir := "down"
	if up {
		dir = "up"
	}
	return dir + ":" + strconv.FormatUint(next, 10)
}

func (s *Service) ListBlocks(ctx context.Context, req *connect.Request[v1.ListBlocksRequest]) (*connect.Response[v1.ListBlocksResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	hb, err := s.head()
	if err != nil {
		return nil, err
	}
	head := hb.Height
	up := m.OldestFirst
	var pos uint64
	switch {
	case m.PageToken != "":
		dir, num, _ := strings.Cut(m.PageToken, ":")
		n, perr := strconv.ParseUint(num, 10, 64)
		if perr != nil || (dir != "up" && dir != "down") || (dir == "up") != up {
			return nil, invalid("page_token %q is not one this listing gave", m.PageToken)
		}
		pos = n
	case m.StartHeight != nil:
		pos = *m.StartHeight
	case !up:
		pos = head
	}
	if !up && pos > head {
		pos = head
	}
	out := &v1.ListBlocksResponse{}
	for size := api.PageSize(m); len(out.Blocks) < size && pos <= head; {
		b, err := s.in.Block(pos)
		if err != nil {
			return nil, internal(err)
		}
		out.Blocks = append(out.Blocks, wire.Header(b))
		if !up {
			if pos == 0 {
				return connect.NewResponse(out), nil
			}
			pos--
		} else {
			pos++
		}
	}
	if pos <= head {
		out.NextPageToken = blocksToken(up, pos)
	}
	return connect.NewResponse(out), nil
}

func (s *Service) ListNotes(ctx context.Context, req *connect.Request[v1.ListNotesRequest]) (*connect.Response[v1.ListNotesResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	text := m.Pattern
	if text == "" {
		text = "*/*/*/*"
	}
	p, err := notes.ParsePattern(text)
	if err != nil {
		return nil, invalid("pattern: %v", err)
	}
	page, next, h, err := s.in.NotesPage(p, m.PageToken, api.PageSize(m), notesScanBudget)
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.ListNotesResponse{NextPageToken: next, Height: h}
	for _, n := range page {
		out.Notes = append(out.Notes, wire.Note(n))
	}
	return connect.NewResponse(out), nil
}

func (s *Service) QueryWithProof(ctx context.Context, req *connect.Request[v1.QueryWithProofRequest]) (*connect.Response[v1.QueryWithProofResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	k, err := notes.ParseStateKey(m.StateKey)
	if err != nil {
		return nil, invalid("state_key: %v", err)
	}
	qp, err := s.in.Prove(k)
	if err != nil {
		return nil, internal(err)
	}
	if qp.Certificate, err = s.certificate(ctx, qp.Block.Height); err != nil {
		return nil, err
	}
	out := &v1.QueryWithProofResponse{
		Proof: qp.Encode(), Found: qp.Note != nil, Height: qp.Block.Height,
		BlockHash: wire.Hex(qp.Block.Hash()), StateRoot: wire.Hex(qp.Block.StateRoot),
	}
	if qp.Note != nil {
		out.Note = wire.Note(qp.Note)
	}
	return connect.NewResponse(out), nil
}

func (s *Service) DeployCode(ctx context.Context, req *connect.Request[v1.DeployCodeRequest]) (*connect.Response[v1.DeployCodeResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	if len(m.Code) == 0 { // most likely a misspelt field, which the JSON form ignores
		return nil, invalid("code: empty (the Lua source goes in the field code, base64 in JSON)")
	}
	h, err := s.b.Deploy(m.Code)
	if err != nil {
		return nil, codeOf(err)
	}
	return connect.NewResponse(&v1.DeployCodeResponse{CodeHash: wire.Hex(h)}), nil
}

func (s *Service) GetCode(ctx context.Context, req *connect.Request[v1.GetCodeRequest]) (*connect.Response[v1.GetCodeResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	h, err := parseID("code_hash", m.CodeHash)
	if err != nil {
		return nil, err
	}
	src, err := s.in.Code(h)
	if err != nil {
		if _, perr := s.in.Program(h); errors.Is(perr, phases.ErrUnknownCode) {
			return nil, notFound("no deployed code %s", m.CodeHash)
		}
		return nil, internal(err)
	}
	return connect.NewResponse(&v1.GetCodeResponse{Code: src}), nil
}

// An export's place in the outbox (ExportsPage) travels as a hex page
// token.
func (s *Service) ListExports(ctx context.Context, req *connect.Request[v1.ListExportsRequest]) (*connect.Response[v1.ListExportsResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	var to *[32]byte
	if m.To != "" {
		h, err := parseID("to", m.To)
		if err != nil {
			return nil, err
		}
		to = &h
	}
	var after []byte
	if m.PageToken != "" {
		if after, err = hex.DecodeString(m.PageToken); err != nil || len(after) != 64 {
			return nil, invalid("page_token %q is not one this listing gave", m.PageToken)
		}
	}
	recs, heights, next, err := s.in.ExportsPage(to, after, api.PageSize(m))
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.ListExportsResponse{}
	if next != nil {
		out.NextPageToken = hex.EncodeToString(next)
	}
	for i, r := range recs {
		out.Exports = append(out.Exports, wire.Export(r, heights[i]))
	}
	return connect.NewResponse(out), nil
}

// export finds the export named id in the outbox.
func (s *Service) export(id [32]byte) (*chain.ExportRecord, uint64, error) {
	var after []byte
	for {
		recs, heights, next, err := s.in.ExportsPage(nil, after, 1024)
		if err != nil {
			return nil, 0, internal(err)
		}
		for i, r := range recs {
			if r.ID() == id {
				return r, heights[i], nil
			}
		}
		if next == nil {
			return nil, 0, notFound("no export %x in this instance's outbox", id)
		}
		after = next
	}
}

func (s *Service) GetClaim(ctx context.Context, req *connect.Request[v1.GetClaimRequest]) (*connect.Response[v1.GetClaimResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("export_id", m.ExportId)
	if err != nil {
		return nil, err
	}
	rec, h, err := s.export(id)
	if err != nil {
		return nil, err
	}
	c, err := s.in.ExportClaim(rec)
	if err != nil {
		return nil, internal(err)
	}
	if c.Certificate, err = s.certificate(ctx, c.Manifest.Height); err != nil {
		return nil, err
	}
	return connect.NewResponse(&v1.GetClaimResponse{
		Claim: c.Encode(), Export: wire.Export(rec, h), Height: c.Manifest.Height, BlockHash: wire.Hex(c.Manifest.Hash()),
	}), nil
}

func (s *Service) GetImportStatus(ctx context.Context, req *connect.Request[v1.GetImportStatusRequest]) (*connect.Response[v1.GetImportStatusResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	id, err := parseID("export_id", m.ExportId)
	if err != nil {
		return nil, err
	}
	note, ok, err := s.in.ImportedNote(id)
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.GetImportStatusResponse{Imported: ok}
	if ok {
		out.NoteId = wire.Hex(note)
	}
	return connect.NewResponse(out), nil
}

// A ListPeers page token is the last instance ID listed.
func (s *Service) ListPeers(ctx context.Context, req *connect.Request[v1.ListPeersRequest]) (*connect.Response[v1.ListPeersResponse], error) {
	m, err := checked(req)
	if err != nil {
		return nil, err
	}
	var after [32]byte
	if m.PageToken != "" {
		if after, err = wire.ParseHash(m.PageToken); err != nil {
			return nil, invalid("page_token %q is not one this listing gave", m.PageToken)
		}
	}
	ps, err := s.in.Peers()
	if err != nil {
		return nil, internal(err)
	}
	out := &v1.ListPeersResponse{}
	size := api.PageSize(m)
	for _, p := range ps {
		if m.PageToken != "" && wire.Hex(p.ID) <= wire.Hex(after) {
			continue
		}
		if len(out.Peers) == size {
			out.NextPageToken = out.Peers[size-1].InstanceId
			break
		}
		out.Peers = append(out.Peers, wire.Peer(p))
	}
	return connect.NewResponse(out), nil
}
