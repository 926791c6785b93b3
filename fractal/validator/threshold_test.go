package validator

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/types"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// TestDevnetGenesisDKG: a devnet of four validators with a threshold key
// runs the DKG among them, each party apart; the key (k = 3) is in every
// instance and in the genesis, with vote extensions on from height 1; its
// transcript checks; and a scan of every file under the devnet finds
// exactly four share files, one per validator home, each its own index. A
// genesis that names no key, or another, is refused when a validator opens.
func TestDevnetGenesisDKG(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	d, err := WriteDevnet(dir, DevnetOptions{Validators: 4, BasePort: freeBase(t, 4), Instance: fractal.DefaultConfig(), Encrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	pk := d.ThresholdKey
	if pk == nil || pk.N != 4 || pk.K != 3 || pk.Origin != tfhe.OriginDKG {
		t.Fatalf("key %+v", pk)
	}
	var shares []string
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == keyholder.ShareFile {
			shares = append(shares, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 4 {
		t.Fatalf("%d share files under the devnet: %v", len(shares), shares)
	}
	for i, home := range d.Homes {
		want := filepath.Join(home, KeyholderDir, "epoch-1", keyholder.ShareFile)
		if shares[i] != want {
			t.Fatalf("share file %d is %s, want %s", i, shares[i], want)
		}
		kh, err := keyholder.OpenHome(filepath.Join(home, KeyholderDir))
		if err != nil {
			t.Fatal(err)
		}
		sk, err := kh.Share(GenesisEpoch)
		if err != nil {
			t.Fatal(err)
		}
		if sk.Index != i+1 || sk.PK.ID() != pk.ID() {
			t.Fatalf("v%d holds share %d of key %x", i, sk.Index, sk.PK.ID())
		}
		tr, err := kh.Transcript(GenesisEpoch)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tfhe.CheckTranscript(pk, tr); err != nil {
			t.Fatalf("v%d's transcript: %v", i, err)
		}
		in, err := fractal.Open(home)
		if err != nil {
			t.Fatal(err)
		}
		have, err := in.ThresholdKey()
		in.Close()
		if err != nil || have.ID() != pk.ID() {
			t.Fatalf("v%d's instance holds key %v %v", i, have, err)
		}
		doc, err := types.GenesisDocFromFile(filepath.Join(home, "config/genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := abci.ParseAppState(doc.AppState)
		if err != nil || st.ThresholdKey == nil || st.ThresholdKey.ID() != pk.ID() || st.ThresholdKey.Transcript != pk.Transcript {
			t.Fatalf("v%d's genesis app_state: %+v %v", i, st, err)
		}
		if doc.ConsensusParams.ABCI.VoteExtensionsEnableHeight != 1 {
			t.Fatalf("vote extensions enabled at %d", doc.ConsensusParams.ABCI.VoteExtensionsEnableHeight)
		}
	}

	// A genesis without the key, with another, or with another expiry
	// window (the devnet's is the default, 100), is refused.
	other, _, err := tfhe.TrustedDealerSetup(4, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key    *tfhe.PublicKey
		window uint64
		want   string
	}{{nil, 0, "names no threshold key"}, {other, 0, "names threshold key"},
		{pk, 7, "genesis app_state names an encrypted expiry of 7 blocks, the instance's is 100"}} {
		gen := filepath.Join(d.Homes[1], "config/genesis.json")
		doc, err := types.GenesisDocFromFile(gen)
		if err != nil {
			t.Fatal(err)
		}
		if doc.AppState, err = abci.EncodeAppState(&abci.AppState{Trust: d.Trust, ThresholdKey: c.key, EncryptedExpiryBlocks: c.window}); err != nil {
			t.Fatal(err)
		}
		if err := doc.SaveAs(gen); err != nil {
			t.Fatal(err)
		}
		if n, err := Open(d.Homes[1], Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			if n != nil {
				n.Stop()
			}
			t.Fatalf("genesis with key %v: %v", c.key, err)
		}
	}
}
