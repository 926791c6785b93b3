package nodetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/api/fractalv1/fractalv1connect"
	"github.com/fractalvm/fractal/circuits/merkle"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/wire"
	"github.com/fractalvm/fractal/internal/certtest"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
)

// ShieldedChain is a chain of blocks full of shielded outputs, signed by an
// executor key of its own, with the commitment root of every block right,
// served over the API's wallet methods (GetStatus, GetBlock of genesis,
// CompactBlocks) by a real HTTP/2 server on a loopback port. It stands in
// for a node whose blocks each hold txs shielded transactions, which a real
// instance cannot be made to hold in a test's time (each needs a proof of
// about a second): what the wallet checks (signatures, links, roots,
// decryption) is all real. Every mineEvery-th output is a note of value 1 to
// the wallet, encrypted with the other output of its transaction (a note to
// another wallet); the outputs of the other transactions are random
// commitments with random ciphertexts, which the wallet tries to open as it
// would real ones.
type ShieldedChain struct {
	URL    string
	Blocks []*v1.CompactBlock // Blocks[h-1] is block h
	Mine   int                // notes of the wallet in the chain
	// Validators, when set, is the validator set whose certificates
	// GetBlock answers (NewCertifiedShieldedChain); the blocks are unsigned.
	Validators *certify.ValidatorSet
	fractalv1connect.UnimplementedFractalServiceHandler
	genesis *chain.Block
	headers []*chain.Block // headers[h-1] is block h, with its transaction IDs
	certify func(b *chain.Block) []byte
}

// NewShieldedChain makes and serves a chain of n blocks of txs shielded
// transactions (two outputs each) with a note to addr every mineEvery
// outputs. The k-th transaction of the chain is a bundle of version
// versions[k mod len(versions)] (shielded.BundleV2 when none are given).
func NewShieldedChain(t testing.TB, addr wallet.Address, n, txs, mineEvery int, versions ...byte) *ShieldedChain {
	t.Helper()
	signer := keys.NewKeySigner(Key(t))
	return newShieldedChain(t, addr, n, txs, mineEvery, versions, func(b *chain.Block) {
		if err := chain.SignBlock(context.Background(), b, signer); err != nil {
			t.Fatal(err)
		}
	}, nil)
}

// NewCertifiedShieldedChain is NewShieldedChain for a validator set of
// four: its blocks name the set unsigned, and GetBlock with
// with_certificate answers a certificate signed by three of the four.
func NewCertifiedShieldedChain(t testing.TB, addr wallet.Address, n, txs, mineEvery int, versions ...byte) *ShieldedChain {
	t.Helper()
	set, privs := certtest.NewSet(t, 4)
	c := newShieldedChain(t, addr, n, txs, mineEvery, versions, func(b *chain.Block) { b.Executor = set.Hash() },
		func(b *chain.Block) []byte {
			return certtest.Certificate(t, set, privs[:3], b.Instance, int64(b.Height)+1, certify.AppHash(b))
		})
	c.Validators = set
	return c
}

// newShieldedChain makes and serves the chain, each block made
// authoritative by seal and certified by cert (nil: no certificates).
func newShieldedChain(t testing.TB, addr wallet.Address, n, txs, mineEvery int, versions []byte, seal func(*chain.Block), cert func(*chain.Block) []byte) *ShieldedChain {
	if len(versions) == 0 {
		versions = []byte{shielded.BundleV2}
	}
	var id [32]byte
	rand.Read(id[:])
	c := &ShieldedChain{genesis: &chain.Block{Instance: id, TxsHash: chain.TxsHash(nil)}, certify: cert}
	seal(c.genesis)
	app := notes.Hash{0xab}
	const token = "rhiLmrhEs/JhVvCrSMN4bePYPBqA8H/GOM+JUmPM7iQ=:TOK"
	asset := shielded.AssetOf(app, token)
	stranger, err := wallet.GenerateKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	random := func() fr.Element {
		e, err := note.RandomElement(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tree, prev, k, kt := merkle.New(), c.genesis.Hash(), 0, 0
	for h := 1; h <= n; h++ {
		cb := &wallet.CompactBlock{}
		var leaves []fr.Element
		for range txs {
			tx := wallet.CompactTx{Asset: wire.Hex(app) + "/" + token, Nullifiers: []fr.Element{random(), random()}}
			rand.Read(tx.ID[:])
			to := []wallet.Address{stranger.Address(), stranger.Address()}
			ns := make([]note.Note, 2)
			mine := false
			for j := range ns {
				ns[j] = note.Note{Owner: to[j].Owner, Value: 1, Asset: asset, Rho: random(), Rcm: random()}
				if k++; k%mineEvery == 0 {
					to[j], ns[j].Owner, mine = addr, addr.Owner, true
					c.Mine++
				}
			}
			version := versions[kt%len(versions)]
			kt++
			if mine {
				if tx.Ciphertexts, err = wallet.Encrypt(rand.Reader, version, to, ns); err != nil {
					t.Fatal(err)
				}
				tx.Commitments = []fr.Element{ns[0].Commitment(), ns[1].Commitment()}
			} else {
				tx.Ciphertexts, tx.Commitments = randomCiphertexts(version), []fr.Element{random(), random()}
			}
			leaves = append(leaves, tx.Commitments...)
			cb.Txs = append(cb.Txs, tx)
		}
		if _, err := tree.AppendBatch(leaves, nil); err != nil {
			t.Fatal(err)
		}
		root := tree.Root()
		var ids [][32]byte
		for _, tx := range cb.Txs {
			ids = append(ids, tx.ID)
		}
		cb.Header = &chain.Block{Instance: id, Height: uint64(h), Prev: prev, CommitmentRoot: root.Bytes(),
			TxIDs: ids, TxsHash: chain.TxsHash(ids), Roots: make([][32]byte, len(ids))}
		seal(cb.Header)
		prev = cb.Header.Hash()
		c.Blocks = append(c.Blocks, wire.CompactBlock(cb))
		c.headers = append(c.headers, cb.Header)
	}
	c.serve(t)
	return c
}

// GenesisHash is the hash of the chain's genesis block.
func (c *ShieldedChain) GenesisHash() [32]byte { return c.genesis.Hash() }

// randomCiphertexts are random ciphertexts of two outputs, of the given
// version.
func randomCiphertexts(version byte) shielded.Ciphertexts {
	c := shielded.Ciphertexts{Version: version, EPKs: make([][32]byte, 2), Sealed: make([][shielded.SealedSize]byte, 2)}
	if version == shielded.BundleV2 {
		c.EPKs, c.Tags = c.EPKs[:1], make([]byte, 2)
		rand.Read(c.Tags)
	}
	for i := range c.EPKs {
		rand.Read(c.EPKs[i][:])
	}
	for i := range c.Sealed {
		rand.Read(c.Sealed[i][:])
	}
	return c
}

func (c *ShieldedChain) serve(t testing.TB) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(fractalv1connect.NewFractalServiceHandler(c, connect.WithCompressMinBytes(1<<20))) // as the node: no gzip of small messages
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c.URL = "http://" + ln.Addr().String()
}

func (c *ShieldedChain) GetStatus(context.Context, *connect.Request[v1.GetStatusRequest]) (*connect.Response[v1.GetStatusResponse], error) {
	return connect.NewResponse(&v1.GetStatusResponse{InstanceId: wire.Hex(c.genesis.Instance), Head: &v1.BlockHeader{Height: uint64(len(c.Blocks))}}), nil
}

func (c *ShieldedChain) GetBlock(_ context.Context, req *connect.Request[v1.GetBlockRequest]) (*connect.Response[v1.GetBlockResponse], error) {
	h := uint64(len(c.headers))
	if req.Msg.Height != nil {
		h = *req.Msg.Height
	}
	b := c.genesis
	switch {
	case h > uint64(len(c.headers)):
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no block at height %d", h))
	case h > 0:
		b = c.headers[h-1]
	}
	resp := &v1.GetBlockResponse{Block: wire.Block(b)}
	if req.Msg.WithCertificate && c.certify != nil {
		resp.Certificate = c.certify(b)
	}
	return connect.NewResponse(resp), nil
}

func (c *ShieldedChain) CompactBlocks(ctx context.Context, req *connect.Request[v1.CompactBlocksRequest], st *connect.ServerStream[v1.CompactBlocksResponse]) error {
	end := uint64(len(c.Blocks))
	if e := req.Msg.EndHeight; e != nil {
		end = min(end, *e)
	}
	for h := max(req.Msg.StartHeight, 1); h <= end; h++ {
		if err := st.Send(&v1.CompactBlocksResponse{CompactBlock: c.Blocks[h-1]}); err != nil {
			return err
		}
	}
	return nil
}
