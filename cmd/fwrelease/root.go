package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/config"
)

// globalOptions are the flags every command takes.
type globalOptions struct {
	config        string
	dist          string
	json          bool
	allowInsecure bool
	verbose       bool
	quiet         bool
	logFormat     string
	stdout        io.Writer
	stderr        io.Writer
	output        // how logs and progress reach stderr (output.go)
}

// execute runs the command line, then ends its terminal output (the step
// in flight marked failed, the summary) before main prints the error.
func execute(ctx context.Context) error {
	g := &globalOptions{stdout: os.Stdout, stderr: os.Stderr}
	err := newRoot(g).ExecuteContext(ctx)
	g.finishOutput(err)
	return err
}

func newRoot(g *globalOptions) *cobra.Command {
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
	f.BoolVarP(&g.quiet, "quiet", "q", false, "log errors only")
	f.StringVar(&g.logFormat, "log-format", "auto", "logs on stderr: auto (console on a terminal, else text), console, text (slog key=value) or json (for CI log processors)")
	root.MarkFlagsMutuallyExclusive("verbose", "quiet")
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.setupOutput() }
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
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "required flag", "if any flags in the group"} {
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
