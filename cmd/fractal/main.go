// Command fractal runs and inspects a local Fractal instance: notes, keys, Lua
// predicates, transactions, Smart Lua chains, shielded transfers, threshold
// encryption and transfers between instances.
//
// Each group of verbs lives in its own file and adds itself to rootCmd in an
// init function. A verb reads its flags and files, calls the library and
// prints; the work itself lives in the library packages
// (docs/decisions/106-cmd-fractal-parses-and-prints.md).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Global flags shared by every verb.
var (
	flagHome string
	flagJSON bool
	flagWait time.Duration
)

var rootCmd = &cobra.Command{
	Use:   "fractal",
	Short: "Fractal: an Anoma-style execution environment with verifiable state",
	Long: `fractal runs a local Fractal instance: immutable notes, four-phase
transactions checked by Lua validity predicates, shielded transfers proven
with gnark, threshold encryption, and signed, re-executable state.

The instance lives in the folder given by --home (default ./.fractal). A
command that finds it open in another process waits for it up to --wait
(default 3s). With --json a failed command prints {"error": {...}} on
stdout as well as its one-line error on stderr (docs/CLI.md).`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// jsonOut holds what a verb prints with --json until it is known whether it
// failed: a failed verb prints one JSON object instead (errorJSON).
var jsonOut *bytes.Buffer

func init() {
	rootCmd.PersistentFlags().StringVar(&flagHome, "home", ".fractal", "instance folder")
	rootCmd.PersistentFlags().BoolVar(&flagJSON, "json", false, "print results as JSON")
	rootCmd.PersistentFlags().DurationVar(&flagWait, "wait", 3*time.Second, "how long to wait for an instance another process has open")
	rootCmd.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if flagJSON {
			jsonOut = new(bytes.Buffer)
			cmd.SetOut(jsonOut)
		}
	}
}

// run executes the command line and returns the process exit status. An
// error is one line on stderr and, with --json, a JSON object on stdout; so
// is a panic, which is a bug or a damaged store, never a stack trace for the
// user (status 2).
func run() (status int) {
	defer func() {
		if r := recover(); r != nil {
			msg, _, _ := strings.Cut(strings.TrimSpace(fmt.Sprint(r)), "\n")
			fmt.Fprintf(os.Stderr, "fractal: internal error: %s (if the instance's store is damaged, see docs/cli/backup.md)\n", shown.show(msg))
			status = 2
		}
	}()
	nameArgErrors(rootCmd)
	err := rootCmd.Execute()
	if flagJSON {
		var out []byte
		if jsonOut != nil {
			out = jsonOut.Bytes()
		}
		if err != nil {
			out = jsonError(err, out)
		}
		os.Stdout.Write(out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fractal: "+shown.show(err.Error()))
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

// nameArgErrors makes cobra's argument count errors ("accepts 1 arg(s),
// received 0") name the verb and its usage line, on every command.
func nameArgErrors(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err != nil && !strings.HasPrefix(err.Error(), strings.TrimPrefix(cmd.CommandPath(), "fractal ")+":") {
				return fmt.Errorf("%s: %w (usage: %s)", strings.TrimPrefix(cmd.CommandPath(), "fractal "), err, cmd.UseLine())
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		nameArgErrors(sub)
	}
}
