package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// TestValidatorEpochsVerb: on a devnet home with epochs of 4 heights and
// rounds of 1, whose epoch-2 DKG the four keyholders run in blocks handed
// to the instance as consensus would, "validator epochs" prints the
// attempt (key, start, dealers, holders); --transcript-out writes the
// chain's transcript, which "tfhe check-transcript --chain" checks and
// plain check-transcript refuses (it wants confirmations); asking for an
// epoch no DKG made is refused.
func TestValidatorEpochsVerb(t *testing.T) {
	dir := t.TempDir()
	base := freeDevnetPort(t, 4)
	d, err := validator.WriteDevnet(filepath.Join(dir, "net"), validator.DevnetOptions{Validators: 4, BasePort: base,
		Instance: fractal.DefaultConfig(), Encrypted: true, EpochBlocks: 4, DKGWindow: 1})
	if err != nil {
		t.Fatal(err)
	}
	in, err := fractal.Open(d.Homes[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	block := func(h uint64, txs ...[]byte) *fractal.Decision {
		dc, err := in.ExecuteDecided(ctx, &fractal.DecidedBlock{Height: h, Txs: txs})
		if err == nil {
			_, err = dc.Commit(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}
	block(1)
	st, err := in.Epochs()
	if err != nil || st.Round != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	var ps []*dkg.Party
	var txs [][]byte
	for _, home := range d.Homes {
		kh, err := keyholder.OpenHome(filepath.Join(home, validator.KeyholderDir))
		if err != nil {
			t.Fatal(err)
		}
		p, err := dkg.NewParty(st.Session, kh.Key)
		if err != nil {
			t.Fatal(err)
		}
		deal, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		ps, txs = append(ps, p), append(txs, fractal.DKGTx(deal.Encode()))
	}
	var dc *fractal.Decision
	for h := uint64(2); h <= 4; h++ {
		dc = block(h, txs...)
		recorded, err := in.DKGEnvelopes(st.Session.ID())
		if err != nil {
			t.Fatal(err)
		}
		txs = nil
		for _, p := range ps {
			for _, e := range recorded {
				p.Receive(e.Encode())
			}
			if p.Round() < dkg.KindJustification {
				out, err := p.Next()
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range out {
					txs = append(txs, fractal.DKGTx(e.Encode()))
				}
			}
		}
	}
	rec := dc.Epoch
	if rec == nil || rec.Key == nil {
		t.Fatalf("record %+v", rec)
	}
	in.Close()

	id := rec.Key.ID()
	out := mustFractal(t, dir, "--home", "net/v0", "validator", "epochs")
	want := fmt.Sprintf("epoch 2 in force at height 4 (epoch_blocks 4, dkg_window 1); epoch 3 may start at 9 (attempt 0)\n"+
		"epoch 2 attempt 0, decided at 4: key %x from height 5, transcript %x\n  dealers keyholders 1, 2, 3, 4; holders keyholders 1, 2, 3, 4\n", id, rec.Transcript)
	if out != want {
		t.Fatalf("validator epochs:\n%s\nwant:\n%s", out, want)
	}
	out = mustFractal(t, dir, "--home", "net/v0", "validator", "epochs", "--epoch", "2", "--transcript-out", "t.bin")
	if out != fmt.Sprintf("epoch 2 transcript %x written to t.bin\n", rec.Transcript) {
		t.Fatalf("transcript-out: %s", out)
	}
	out = mustFractal(t, dir, "tfhe", "check-transcript", "t.bin", "--chain", "--json")
	if !strings.Contains(out, hex.EncodeToString(id[:])) {
		t.Fatalf("check-transcript --chain: %s", out)
	}
	if _, errOut, code, _ := fractalCmd(t, dir, time.Minute, "tfhe", "check-transcript", "t.bin"); code == 0 || !strings.Contains(errOut, "confirmed by 0 holders") {
		t.Fatalf("check-transcript without --chain: exit %d: %s", code, errOut)
	}
	if _, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "net/v0", "validator", "epochs", "--epoch", "3", "--transcript-out", "x.bin"); code == 0 || !strings.Contains(errOut, "no DKG made epoch 3's key") {
		t.Fatalf("epoch 3's transcript: exit %d: %s", code, errOut)
	}
}
