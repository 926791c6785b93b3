package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/internal/nodetest"
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
	want := fmt.Sprintf("after height 4: epoch 2 in force (epoch_blocks 4, dkg_window 1); epoch 3 may start at 9 (attempt 0)\n"+
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
	if _, errOut, code, _ := fractalCmd(t, dir, time.Minute, "tfhe", "check-transcript", "t.bin"); code == 0 || !strings.Contains(errOut, "confirmed by 0 holders") || !strings.Contains(errOut, "validator epochs --transcript-out, is checked with --chain)") {
		t.Fatalf("check-transcript without --chain: exit %d: %s", code, errOut)
	}
	if _, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "net/v0", "validator", "epochs", "--epoch", "3", "--transcript-out", "x.bin"); code == 0 || !strings.Contains(errOut, "no DKG made epoch 3's key") {
		t.Fatalf("epoch 3's transcript: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"--epoch", "2"}, {"--transcript-out", "x.bin"}} {
		_, errOut, code, _ := fractalCmd(t, dir, time.Minute, append([]string{"--home", "net/v0", "validator", "epochs"}, args...)...)
		if code != 1 || errOut != "fractal: validator epochs: --epoch E and --transcript-out FILE go together: the epoch whose transcript to write, and where\n" {
			t.Fatalf("epochs %v: exit %d: %q", args, code, errOut)
		}
	}
}

// TestValidatorSubmitEncryptedAfterEpochSwitch: four validator processes
// with epochs of 16 heights switch to epoch 2's key at height 17; then
// "validator submit --encrypted" sealing to the genesis key (--genesis) is
// refused by the validators, and the same verb with the node running on
// --home seals to the key in force that node serves: the payload is
// admitted, opened and run (its note lives). --node without --encrypted, or
// with --genesis, is refused.
func TestValidatorSubmitEncryptedAfterEpochSwitch(t *testing.T) {
	if os.Getenv("FRACTAL_DEVNET_LONG") == "" {
		t.Skip("four validator processes through an epoch switch (make devnet-long)")
	}
	dir := t.TempDir()
	files := map[string]string{
		"allow.lua": "return true\n",
		"alice.key": "2KgXomoYNRdlBq+CPZcw+mze5UDUp/iCVDBuDIRLym0=\n",
		"mint.json": `{"nonce": 1, "gas_limit": 100000, "read": [], "write": ["/ea247e820cda9e68c4b2268fe9ff4f376a32f82a422a8c0cdd274ce08048cc34/ea247e820cda9e68c4b2268fe9ff4f376a32f82a422a8c0cdd274ce08048cc34/*"],
 "calculation": "return {{provenance={}, application='ea247e820cda9e68c4b2268fe9ff4f376a32f82a422a8c0cdd274ce08048cc34', owner='ea247e820cda9e68c4b2268fe9ff4f376a32f82a422a8c0cdd274ce08048cc34', key='coin1', value='1'}}"}`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"--node", "http://127.0.0.1:1"},
		{"--encrypted", "--node", "http://127.0.0.1:1", "--genesis", "genesis.json"},
	} {
		_, errOut, code, _ := fractalCmd(t, dir, time.Minute, append([]string{"validator", "submit", "mint.json", "--key", "alice.key"}, args...)...)
		if code != 1 || !strings.HasPrefix(errOut, "fractal: validator submit: --") {
			t.Fatalf("submit %v: exit %d: %s", args, code, errOut)
		}
	}
	base := freeDevnetPort(t, 4)
	mustFractal(t, dir, "devnet", "--validators", "4", "--out", "net", "--base-port", fmt.Sprint(base),
		"--timeout-commit", "300ms", "--encrypted", "--epoch-blocks", "16", "--dkg-window", "4")
	genesisKey, _, err := validator.GenesisThresholdKey(filepath.Join(dir, "net", "v0", "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	stop := startValidators(t, dir, 4, func(i int) string {
		if i == 0 {
			return "node"
		}
		return "validator run"
	})
	defer stop()
	retryFractal(t, dir, "deploy", "--home", "net/v1", "validator", "deploy", "allow.lua")
	api, err := client.New(fmt.Sprintf("http://127.0.0.1:%d", validator.DevnetAPIPort(0, base)))
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 3*time.Minute, "epoch 2's key in force", func() bool {
		pk, _, err := api.ThresholdKey(context.Background())
		return err == nil && pk.ID() != genesisKey.ID()
	})
	_, errOut, code, _ := fractalCmd(t, dir, time.Minute, "--home", "net/v0", "validator", "submit", "mint.json", "--key", "alice.key",
		"--encrypted", "--genesis", "net/v0/config/genesis.json")
	if code != 1 || !strings.Contains(errOut, "tfhe: payload made for another key") {
		t.Fatalf("sealed to the genesis key: exit %d: %s", code, errOut)
	}
	out := mustFractal(t, dir, "--home", "net/v0", "validator", "submit", "mint.json", "--key", "alice.key", "--encrypted")
	if !strings.HasPrefix(out, "admitted payload ") {
		t.Fatalf("sealed to the key in force: %s", out)
	}
	nodetest.WaitFor(t, time.Minute, "the encrypted mint's note", func() bool {
		out, _, _, _ := fractalCmd(t, dir, time.Minute, "--home", "net/v0", "notes")
		return strings.HasSuffix(out, "\n1 notes\n")
	})
	stop()
}
