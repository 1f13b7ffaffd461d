// Package source finds what a release is built from: the repository, the
// commit and the time every file in the tarball is stamped with.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Info describes the source of a release.
type Info struct {
	Repository string    // "owner/name"; empty when unknown
	Commit     string    // full hex commit; empty outside a git work tree
	Epoch      time.Time // SOURCE_DATE_EPOCH, in UTC
}

// Options are the inputs in order of precedence.
type Options struct {
	Dir        string // the source tree (the config's directory)
	Repository string // from the config
	Epoch      *int64 // from the config
}

// Resolve finds the source information. The epoch comes from the config,
// else $SOURCE_DATE_EPOCH, else the commit's time; without any of them the
// build cannot be reproducible and Resolve fails saying how to fix it.
func Resolve(ctx context.Context, o Options) (Info, error) {
	info := Info{Repository: o.Repository}
	if info.Repository == "" {
		info.Repository = os.Getenv("GITHUB_REPOSITORY")
	}
	info.Commit = os.Getenv("GITHUB_SHA")
	if info.Commit == "" {
		info.Commit, _ = git(ctx, o.Dir, "rev-parse", "HEAD")
	}
	switch {
	case o.Epoch != nil:
		info.Epoch = time.Unix(*o.Epoch, 0).UTC()
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		s := os.Getenv("SOURCE_DATE_EPOCH")
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return Info{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a non-negative number of seconds", s)
		}
		info.Epoch = time.Unix(n, 0).UTC()
	case info.Commit != "":
		s, err := git(ctx, o.Dir, "log", "-1", "--format=%ct", info.Commit)
		n, perr := strconv.ParseInt(s, 10, 64)
		if err != nil || perr != nil {
			return Info{}, fmt.Errorf("reading the time of commit %s in %s: %w", info.Commit, o.Dir, errors.Join(err, perr))
		}
		info.Epoch = time.Unix(n, 0).UTC()
	default:
		return Info{}, fmt.Errorf("no SOURCE_DATE_EPOCH for %s: set source_date_epoch in the config, export SOURCE_DATE_EPOCH, or build from a git work tree", o.Dir)
	}
	return info, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
