package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/nodefile"
	"github.com/fractalvm/fractal/fractal/node/relay"
	"github.com/fractalvm/fractal/keys"
)

// relay between nodes: --from and --to name a node's URL, or a folder a
// node runs on; the relayer needs no folder of either (decision 117).

func init() {
	relayCmd.Flags().Bool("follow", false, "keep relaying as the source seals blocks (between nodes), until SIGINT or SIGTERM")
	local := relayCmd.RunE
	relayCmd.RunE = trimmed(func(cmd *cobra.Command, args []string) error {
		fromArg, _ := cmd.Flags().GetString("from")
		toArg, _ := cmd.Flags().GetString("to")
		follow, _ := cmd.Flags().GetBool("follow")
		from, err := relayEnd(fromArg)
		if err != nil {
			return err
		}
		to, err := relayEnd(toArg)
		if err != nil {
			return err
		}
		if from == nil && to == nil && !follow {
			return local(cmd, args)
		}
		for _, e := range []struct {
			arg string
			c   *client.Client
		}{{fromArg, from}, {toArg, to}} {
			if e.c == nil {
				return fmt.Errorf("relay: no node runs on %s: between nodes, both ends are nodes (start one with fractal --home %s node)", e.arg, e.arg)
			}
		}
		signer, err := relayKey(cmd, toArg)
		if err != nil {
			return err
		}
		// A one-off relay prints what it did; a following one logs each
		// import as it is made.
		level := slog.LevelWarn
		if follow {
			level = slog.LevelInfo
		}
		r := relay.New(from, to, signer, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		if !follow {
			ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
			defer cancel()
			res, err := r.Once(ctx)
			if err != nil {
				return err
			}
			return emitRelay(cmd, res)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return r.Follow(ctx, func(res *fractal.RelayResult) {
			if res.Pending > 0 {
				printPass(res)
			}
		})
	})
}

// relayEnd returns the node an end of a relay names: a URL, or the node
// running on a folder; nil for a folder no node runs on.
func relayEnd(arg string) (*client.Client, error) {
	if arg == "" {
		return nil, errors.New("relay needs --from and --to")
	}
	if strings.Contains(arg, "://") {
		return client.New(arg)
	}
	info, _ := nodefile.Find(arg)
	if info == nil {
		return nil, nil
	}
	return client.New(info.URL)
}

// relayKey is --key, or the executor key of the destination's folder.
func relayKey(cmd *cobra.Command, to string) (keys.PrivateKey, error) {
	keyFile, _ := cmd.Flags().GetString("key")
	if keyFile == "" {
		if strings.Contains(to, "://") {
			return keys.PrivateKey{}, errors.New("relay to a node's URL needs --key KEYFILE: the key that signs the import transactions (the relayer's own)")
		}
		keyFile = filepath.Join(to, "executor.key")
	}
	return keys.LoadKeyFile(keyFile)
}

// printPass prints one pass of relay --follow at once (a long-running verb
// prints as it goes): a line per import, or with --json one JSON object per
// pass.
func printPass(res *fractal.RelayResult) {
	if flagJSON {
		imported := []string{}
		for _, id := range res.Imported {
			imported = append(imported, fmt.Sprintf("%x", id))
		}
		b, _ := json.Marshal(map[string]any{"pending": res.Pending, "imported": imported, "refused": len(res.Refused)})
		fmt.Fprintf(os.Stdout, "%s\n", b)
		return
	}
	for _, id := range res.Imported {
		fmt.Fprintf(os.Stdout, "imported %x\n", id)
	}
	for _, rc := range res.Refused {
		fmt.Fprintf(os.Stdout, "refused %s\n", receiptLine(rc))
	}
}
