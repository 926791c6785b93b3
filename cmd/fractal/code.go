package main

import (
	"encoding/hex"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/inputfile"
)

func init() {
	codeCmd.AddCommand(codeDeployCmd)
	rootCmd.AddCommand(codeCmd)
}

var codeCmd = &cobra.Command{
	Use:   "code",
	Short: "Manage the instance's code registry (Lua predicates by SHA-256)",
	Long: `code manages the code registry: Lua validity predicates stored under the
SHA-256 of their source. Notes name their application and owner predicates by
that hash.`,
}

var codeDeployCmd = &cobra.Command{
	Use:   "deploy FILE.lua",
	Short: "Compile a Lua predicate and store it; print its hash",
	Long: `deploy reads FILE.lua, compiles it in the sandbox (refusing code that does
not compile or uses forbidden constructs), stores it in the code registry and
prints its SHA-256 hash in hex: the value to use as a note's application or
owner. Deploying the same code again prints the same hash.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		src, err := inputfile.Read(args[0], chain.MaxCodeBytes)
		if err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		shown.addCode(src, args[0])
		return withInstance(func(in *fractal.Instance) error {
			h, err := in.Deploy(src)
			if err != nil {
				return err
			}
			if err := recordName(flagHome, src, args[0]); err != nil {
				return fmt.Errorf("deploy: code %x stored, but its file name was not recorded: %w", h, err)
			}
			out := map[string]string{"file": args[0], "hash": hex.EncodeToString(h[:])}
			return emit(cmd, out, func(w io.Writer) { fmt.Fprintln(w, out["hash"]) })
		})
	}),
}
