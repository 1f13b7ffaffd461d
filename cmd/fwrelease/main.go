// Command fwrelease cuts releases of flash-worker: it builds, signs and
// publishes one tarball per Python × accelerator × architecture target, and
// verifies, pins and injects what it published.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/runpod-workers/fwrelease/internal/redact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// FWRELEASE_CPUPROFILE=FILE profiles a run, for the benchmarks.
	if path := os.Getenv("FWRELEASE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	err := execute(ctx)
	pprof.StopCPUProfile()
	if err == nil {
		return
	}
	// Errors can quote a server's words, and servers echo credentials.
	fmt.Fprintf(os.Stderr, "fwrelease: %s\n", redact.String(err.Error()))
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "fwrelease: interrupted; run the same command again to finish: what is published stays consistent, and a re-run converges")
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}
