package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/redact"
)

// globalOptions are the flags every command takes.
type globalOptions struct {
	config        string
	dist          string
	json          bool
	allowInsecure bool
	verbose       bool
	stdout        io.Writer
	stderr        io.Writer
}

func newRoot() *cobra.Command {
	g := &globalOptions{stdout: os.Stdout, stderr: os.Stderr}
	root := &cobra.Command{
		Use:           "fwrelease",
		Short:         "Build, sign, publish and verify flash-worker releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&g.config, "config", config.DefaultFile, "the release config")
	f.StringVar(&g.dist, "dist", "dist", "the output directory")
	f.BoolVar(&g.json, "json", false, "print results as JSON")
	f.BoolVar(&g.allowInsecure, "allow-insecure", false, "permit plain-HTTP loopback endpoints and URLs (tests, local mirrors)")
	f.BoolVarP(&g.verbose, "verbose", "v", false, "log every step")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newTargets(g),
		newBuild(g),
		newRelease(g),
		newManifest(g),
		newSign(g),
		newVerify(g),
		newPublish(g),
		newPin(g),
		newInject(g),
		newInspect(g),
		newVersion(g),
	)
	return root
}

func (g *globalOptions) logger() *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(redact.Writer(g.stderr), &slog.HandlerOptions{Level: level}))
}

func (g *globalOptions) loadConfig(version string) (*config.Config, error) {
	return config.Load(g.config, version)
}

// usageError marks a mistake in how the command was called: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// isCobraUsage recognises cobra's own usage errors, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// args wraps a cobra argument check so that its failure exits with 2.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}
