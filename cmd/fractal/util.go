package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/notes"
)

// Helpers shared by the verbs of every group.

// openInstance opens the instance named by --home.
func openInstance() (*fractal.Instance, error) { return openWaiting(flagHome) }

// openWaiting opens the instance in home. While another process holds it,
// it tries again until --wait has passed, so two commands run one after
// the other rather than the second failing. The instance admits within the
// home's node configuration (max_tx_gas, decision 170), as the node would.
func openWaiting(home string) (*fractal.Instance, error) {
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		in, err := fractal.Open(home)
		if err == nil {
			in.SetMaxTxGas(cfg.MaxTxGas)
		}
		if !errors.Is(err, fractal.ErrInUse) {
			return in, err
		}
		if time.Since(start)+delay > flagWait {
			return nil, fmt.Errorf("%w (waited %v; --wait DURATION waits longer)", err, flagWait)
		}
		time.Sleep(delay)
	}
}

// withInstance opens the instance named by --home, runs f on it and closes it.
func withInstance(f func(in *fractal.Instance) error) error {
	in, err := openInstance()
	if err != nil {
		return err
	}
	defer in.Close()
	shown.load(flagHome)
	return f(in)
}

// emitReceipt prints a receipt as JSON or for people.
func emitReceipt(cmd *cobra.Command, v receiptView) error {
	return emit(cmd, v, v.print)
}

// readDecoded reads path (at most max bytes) and decodes it, naming the
// file in a decoding error.
func readDecoded[T any](path string, max int64, decode func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := inputfile.Read(path, max)
	if err != nil {
		return zero, err
	}
	v, err := decode(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// writeNew writes a file that must not exist yet; on a failed write it
// removes the partial file.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// parseHash parses 64 lower-case hex digits.
func parseHash(s string) (notes.Hash, error) {
	var h notes.Hash
	if len(s) != 64 {
		return h, fmt.Errorf("%q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil || hex.EncodeToString(h[:]) != s {
		return h, fmt.Errorf("%q is not lower-case hex", s)
	}
	return h, nil
}

// progressBar returns a progress function for long work whose total is
// known once it starts: on a terminal, a bar on stderr made at the first
// call and ended with its line when done reaches the total.
func progressBar(cmd *cobra.Command, what string) func(done, total int) {
	var bar *progressbar.ProgressBar
	started := false
	return func(done, total int) {
		if !started {
			bar, started = stderrBar(total, what), true
		}
		if bar == nil {
			return
		}
		bar.Set(done)
		if done >= total {
			fmt.Fprintln(cmd.ErrOrStderr())
			bar, started = nil, false
		}
	}
}

// stderrBar returns a progress bar on stderr when stderr is a terminal.
func stderrBar(max int, what string) *progressbar.ProgressBar {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return progressbar.NewOptions(max, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(what))
}
