package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/zk"
)

// shieldedCmd is the parent of every shielded-pool verb.
var shieldedCmd = &cobra.Command{
	Use:   "shielded",
	Short: "Shielded transfers: circuit keys, trusted-setup ceremony",
	Long: `Shielded notes are spent and created with Groth16 proofs of the 2-input,
2-output transfer circuit (docs/circuits.md). Its keys are cached under
HOME/zk/` + circuits.TransferName + `/.`,
}

var flagSetupDev bool

var shieldedSetupCmd = &cobra.Command{
	Use:   "setup [--dev]",
	Short: "Make (--dev) or check the transfer circuit's cached keys",
	Long: `setup compiles the transfer circuit and reports its cached keys: circuit,
constraint count, setup kind and the SHA-256 of the constraint system and of
both keys.

With --dev it first runs a single-party development setup and replaces the
cache. Whoever runs it could forge proofs, so its keys are labelled UNSAFE;
use "fractal shielded mpc" for keys meant to hold value.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		bar := stderrBar(2, "compiling circuit")
		cc, err := shielded.Compiled()
		if err != nil {
			return err
		}
		cache := zkCache()
		var k *zk.Keys
		if flagSetupDev {
			if bar != nil {
				bar.Add(1)
				bar.Describe("development setup")
			}
			k, err = cache.DevSetup(cc)
		} else {
			k, err = cache.Load(cc)
			if errors.Is(err, zk.ErrNoKeys) {
				err = errors.New("no keys yet: run `fractal shielded setup --dev` (unsafe) or an mpc ceremony")
			}
		}
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(cmd.ErrOrStderr())
		}
		if err != nil {
			return err
		}
		return emitKeys(cmd, k)
	},
}

// keysView is the JSON form of cached keys.
type keysView struct {
	Circuit      string `json:"circuit"`
	Setup        string `json:"setup"`
	Unsafe       bool   `json:"unsafe"`
	Constraints  int    `json:"constraints"`
	GnarkVersion string `json:"gnark_version"`
	CircuitHash  string `json:"circuit_hash"`
	PKHash       string `json:"pk_hash"`
	VKHash       string `json:"vk_hash"`
	Dir          string `json:"dir"`
}

func emitKeys(cmd *cobra.Command, k *zk.Keys) error {
	i := k.Info
	v := keysView{Circuit: i.Circuit, Setup: i.Setup, Unsafe: i.Setup == zk.SetupDev, Constraints: i.Constraints,
		GnarkVersion: i.GnarkVersion, CircuitHash: hex.EncodeToString(i.CircuitHash[:]),
		PKHash: hex.EncodeToString(i.PKHash[:]), VKHash: hex.EncodeToString(i.VKHash[:]),
		Dir: filepath.Join(zkCache().Dir, i.Circuit)}
	return emit(cmd, v, func(w io.Writer) {
		if v.Unsafe {
			fmt.Fprintln(w, "UNSAFE: development setup, whoever ran it can forge proofs")
		}
		fmt.Fprintf(w, "circuit %s (%d constraints, gnark %s)\n", v.Circuit, v.Constraints, v.GnarkVersion)
		fmt.Fprintf(w, "setup %s\n", v.Setup)
		fmt.Fprintf(w, "circuit hash %s\n", v.CircuitHash)
		fmt.Fprintf(w, "proving key %s\n", v.PKHash)
		fmt.Fprintf(w, "verifying key %s\n", v.VKHash)
		fmt.Fprintf(w, "keys in %s\n", v.Dir)
	})
}

func zkCache() zk.Cache { return zk.Cache{Dir: filepath.Join(flagHome, "zk")} }

var shieldedMPCCmd = &cobra.Command{
	Use:   "mpc",
	Short: "Multi-party trusted setup for the transfer circuit",
	Long: `mpc runs a file-based Groth16 ceremony (gnark mpcsetup) in a folder that
participants pass along: init, then contribute (each participant once or
more), seal phase 1 with a public beacon, contribute to phase 2, and seal
again, which verifies the transcript and installs the keys in HOME/zk. The
keys are sound if one contributor was honest. verify checks a transcript at
any point.`,
}

var shieldedMPCInitCmd = &cobra.Command{
	Use:   "init DIR",
	Short: "Start a ceremony for the transfer circuit in DIR",
	Long:  `init writes DIR/ceremony.bin naming the circuit, its hash and its domain size.`,
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		cc, err := shielded.Compiled()
		if err != nil {
			return err
		}
		if _, err := zk.InitCeremony(args[0], cc); err != nil {
			return err
		}
		v := map[string]any{"dir": args[0], "circuit": cc.Name, "circuit_hash": hex.EncodeToString(cc.Hash[:])}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "ceremony for %s in %s\n", cc.Name, args[0])
		})
	},
}

// openCeremony compiles the transfer circuit and opens the ceremony in dir.
func openCeremony(dir string) (*zk.Ceremony, error) {
	cc, err := shielded.Compiled()
	if err != nil {
		return nil, err
	}
	return zk.OpenCeremony(dir, cc)
}

var shieldedMPCContributeCmd = &cobra.Command{
	Use:   "contribute DIR",
	Short: "Add a contribution to the open phase of the ceremony in DIR",
	Long: `contribute reads the latest contribution, mixes in fresh randomness from
the operating system, writes the next contribution file and forgets the
randomness.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		c, err := openCeremony(args[0])
		if err != nil {
			return err
		}
		bar := stderrBar(1, "contributing")
		phase, n, err := c.Contribute()
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(cmd.ErrOrStderr())
		}
		if err != nil {
			return err
		}
		v := map[string]int{"phase": phase, "contribution": n}
		return emit(cmd, v, func(w io.Writer) { fmt.Fprintf(w, "phase %d contribution %d written\n", phase, n) })
	},
}

var shieldedMPCVerifyCmd = &cobra.Command{
	Use:   "verify DIR",
	Short: "Verify every contribution of the ceremony in DIR",
	Long:  `verify checks each contribution against the one before it, and the phase-1 seal.`,
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		c, err := openCeremony(args[0])
		if err != nil {
			return err
		}
		st, err := c.Verify()
		if err != nil {
			return err
		}
		v := map[string]any{"phase1": st.Phase1, "phase1_sealed": st.Sealed1, "phase2": st.Phase2}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "ok: phase 1 %d contributions (sealed %v), phase 2 %d contributions\n", st.Phase1, st.Sealed1, st.Phase2)
		})
	},
}

var flagBeacon string

var shieldedMPCSealCmd = &cobra.Command{
	Use:   "seal DIR --beacon TEXT",
	Short: "Seal the open phase with a public beacon",
	Long: `seal verifies the open phase and closes it with the beacon (public
randomness fixed after the last contribution). Sealing phase 1 opens phase
2; sealing phase 2 installs the keys in HOME/zk, labelled mpc.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		c, err := openCeremony(args[0])
		if err != nil {
			return err
		}
		k, err := c.Seal([]byte(flagBeacon), zkCache())
		if err != nil {
			return err
		}
		if k == nil {
			return emit(cmd, map[string]int{"sealed_phase": 1}, func(w io.Writer) {
				fmt.Fprintln(w, "phase 1 sealed; phase 2 open")
			})
		}
		return emitKeys(cmd, k)
	},
}

func init() {
	shieldedSetupCmd.Flags().BoolVar(&flagSetupDev, "dev", false, "run the single-party development setup (UNSAFE)")
	shieldedMPCSealCmd.Flags().StringVar(&flagBeacon, "beacon", "", "public beacon text (required)")
	shieldedMPCCmd.AddCommand(shieldedMPCInitCmd, shieldedMPCContributeCmd, shieldedMPCVerifyCmd, shieldedMPCSealCmd)
	shieldedCmd.AddCommand(shieldedSetupCmd, shieldedMPCCmd)
	rootCmd.AddCommand(shieldedCmd)
}
