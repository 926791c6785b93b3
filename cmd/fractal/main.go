// Command fractal runs and inspects a local Fractal instance: notes, keys, Lua
// predicates, transactions, Smart Lua chains, shielded transfers, threshold
// encryption and transfers between instances.
//
// Each group of verbs lives in its own file and adds itself to rootCmd in an
// init function.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Global flags shared by every verb.
var (
	flagHome string
	flagJSON bool
)

var rootCmd = &cobra.Command{
	Use:   "fractal",
	Short: "Fractal: an Anoma-style execution environment with verifiable state",
	Long: `fractal runs a local Fractal instance: immutable notes, four-phase
transactions checked by Lua validity predicates, shielded transfers proven
with gnark, threshold encryption, and signed, re-executable state.

The instance lives in the folder given by --home (default ./.fractal).`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	rootCmd.PersistentFlags().StringVar(&flagHome, "home", ".fractal", "instance folder")
	rootCmd.PersistentFlags().BoolVar(&flagJSON, "json", false, "print results as JSON")
}

// run executes the command line and returns the process exit status. Errors
// are printed as one line on stderr; so is a panic, which is a bug or a
// damaged store, never a stack trace for the user.
func run() (status int) {
	defer func() {
		if r := recover(); r != nil {
			msg, _, _ := strings.Cut(strings.TrimSpace(fmt.Sprint(r)), "\n")
			fmt.Fprintf(os.Stderr, "fractal: internal error: %s (if the instance's store is damaged, see docs/cli/backup.md)\n", msg)
			status = 2
		}
	}()
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fractal: "+err.Error())
		return 1
	}
	return 0
}

func main() { os.Exit(run()) }

// emit prints v as indented JSON when --json is set, and otherwise calls text.
func emit(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	w := cmd.OutOrStdout()
	if flagJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
