package dkg

import (
	"fmt"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"

	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// Limits on the fields of kyber's messages; kyber's own values are far below.
const (
	maxBlob    = 1 << 16
	maxCommits = MaxKeyholders
)

// The bodies below are kyber's Pedersen DKG messages written field by field
// with internal/enc (kyber itself uses protobuf, whose encoding is not
// canonical). Every point is decoded strictly: canonical and in the
// prime-order subgroup.

func encodeDeal(d *pedersen.Deal) []byte {
	w := enc.NewWriter(256)
	w.U32(d.Index)
	w.Var(d.Deal.DHKey)
	w.Var(d.Deal.Signature)
	w.Var(d.Deal.Nonce)
	w.Var(d.Deal.Cipher)
	w.Var(d.Signature)
	return w.Bytes()
}

func decodeDeal(b []byte) (*pedersen.Deal, error) {
	r := enc.NewReader(b)
	d := &pedersen.Deal{Index: r.U32(), Deal: &vss.EncryptedDeal{}}
	d.Deal.DHKey = r.Var(maxBlob, "deal key")
	d.Deal.Signature = r.Var(maxBlob, "deal key signature")
	d.Deal.Nonce = r.Var(maxBlob, "deal nonce")
	d.Deal.Cipher = r.Var(maxBlob, "deal ciphertext")
	d.Signature = r.Var(maxBlob, "deal signature")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}
	if _, err := group.DecodePoint(d.Deal.DHKey, false); err != nil {
		return nil, fmt.Errorf("deal key: %w", err)
	}
	return d, nil
}

func encodeResponse(resp *pedersen.Response) []byte {
	w := enc.NewWriter(160)
	w.U32(resp.Index)
	writeVSSResponse(w, resp.Response)
	return w.Bytes()
}

func writeVSSResponse(w *enc.Writer, r *vss.Response) {
	w.Var(r.SessionID)
	w.U32(r.Index)
	w.Bool(r.Status)
	w.Var(r.Signature)
}

func decodeResponse(b []byte) (*pedersen.Response, error) {
	r := enc.NewReader(b)
	resp := &pedersen.Response{Index: r.U32(), Response: &vss.Response{}}
	resp.Response.SessionID = r.Var(maxBlob, "response session")
	resp.Response.Index = r.U32()
	resp.Response.Status = r.Bool()
	resp.Response.Signature = r.Var(maxBlob, "response signature")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	return resp, nil
}

func encodeJustification(j *pedersen.Justification) ([]byte, error) {
	w := enc.NewWriter(512)
	w.U32(j.Index)
	vj := j.Justification
	w.Var(vj.SessionID)
	w.U32(vj.Index)
	w.Var(vj.Deal.SessionID)
	w.U32(uint32(vj.Deal.SecShare.I))
	v, err := vj.Deal.SecShare.V.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w.Fixed(v)
	w.U32(vj.Deal.T)
	w.U32(uint32(len(vj.Deal.Commitments)))
	for _, c := range vj.Deal.Commitments {
		cb, err := c.MarshalBinary()
		if err != nil {
			return nil, err
		}
		w.Fixed(cb)
	}
	w.Var(vj.Signature)
	return w.Bytes(), nil
}

func decodeJustification(suite kyber.Group, b []byte) (*pedersen.Justification, error) {
	r := enc.NewReader(b)
	j := &pedersen.Justification{Index: r.U32()}
	vj := &vss.Justification{Deal: &vss.Deal{SecShare: &share.PriShare{}}}
	j.Justification = vj
	vj.SessionID = r.Var(maxBlob, "justification session")
	vj.Index = r.U32()
	vj.Deal.SessionID = r.Var(maxBlob, "justified deal session")
	vj.Deal.SecShare.I = int(r.U32())
	sv := r.Fixed(group.ScalarSize)
	vj.Deal.T = r.U32()
	n := r.Count(maxCommits, "commitments")
	raw := make([][]byte, n)
	for i := range raw {
		raw[i] = r.Fixed(group.PointSize)
	}
	vj.Signature = r.Var(maxBlob, "justification signature")
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("justification: %w", err)
	}
	if _, err := group.DecodeScalar(sv); err != nil {
		return nil, fmt.Errorf("justification share: %w", err)
	}
	vj.Deal.SecShare.V = suite.Scalar()
	if err := vj.Deal.SecShare.V.UnmarshalBinary(sv); err != nil {
		return nil, fmt.Errorf("justification share: %w", err)
	}
	for i, cb := range raw {
		p, err := kyberPoint(suite, cb)
		if err != nil {
			return nil, fmt.Errorf("justification commitment %d: %w", i, err)
		}
		vj.Deal.Commitments = append(vj.Deal.Commitments, p)
	}
	return j, nil
}

// kyberPoint decodes a point strictly (group.DecodePoint) and then into
// kyber's type, because kyber's UnmarshalBinary accepts points with a
// small-order component.
func kyberPoint(suite kyber.Group, b []byte) (kyber.Point, error) {
	if _, err := group.DecodePoint(b, true); err != nil {
		return nil, err
	}
	p := suite.Point()
	if err := p.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return p, nil
}
