package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the program version and the versions of its cryptographic dependencies",
		Long: `version prints the version this binary was built as ("(devel)" for a build from a
checkout) and the module versions it was built with of gnark (proofs),
filippo.io/edwards25519 (signatures and threshold keys), gopher-lua (predicates) and
badger (storage): what a report of a bug or of a differing replay should name. --json
gives the same as one object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			deps := map[string]string{}
			main := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok {
				main = bi.Main.Version
				for _, d := range bi.Deps {
					deps[d.Path] = d.Version
				}
			}
			names := []string{"github.com/consensys/gnark", "filippo.io/edwards25519", "github.com/yuin/gopher-lua", "github.com/dgraph-io/badger/v4"}
			out := map[string]string{"fractal": main}
			for _, n := range names {
				out[n] = deps[n]
			}
			return emit(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "fractal %s\n", main)
				for _, n := range names {
					if deps[n] != "" {
						fmt.Fprintf(w, "  %s %s\n", n, deps[n])
					}
				}
			})
		},
	})
}
