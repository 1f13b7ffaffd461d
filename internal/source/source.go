// Package source finds what a release is built from: the repository, the
// commit and the time every file in the tarball is stamped with.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Info describes the source of a release.
type Info struct {
	Repository string    // "owner/name"; empty when unknown
	Commit     string    // full hex commit; empty outside a git work tree
	Epoch      time.Time // SOURCE_DATE_EPOCH, in UTC
	// Tag is "v{version}" when that tag exists and points at Commit; empty
	// otherwise, so a release never claims a tag that is not true.
	Tag       string
	tagCommit string // the commit v{version} points at, if it exists
	version   string
	dir       string
	exclude   []string
}

// Options are the inputs in order of precedence.
type Options struct {
	Dir        string // the source tree (the config's directory)
	Repository string // from the config
	Epoch      *int64 // from the config
	Version    string // the release version, whose tag is v{Version}
	// Exclude are paths (such as dist/) whose changes do not make the work
	// tree dirty.
	Exclude []string
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
	if info.Commit != "" && o.Version != "" {
		info.readGit(ctx, o)
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

// readGit finds the release tag, which every build records when it is
// true. Outside a git work tree (a source tarball, GITHUB_SHA without a
// checkout) there is nothing to find, and no tag is claimed.
func (i *Info) readGit(ctx context.Context, o Options) {
	i.version, i.dir, i.exclude = o.Version, o.Dir, o.Exclude
	i.tagCommit, _ = git(ctx, o.Dir, "rev-parse", "--verify", "-q", "refs/tags/v"+o.Version+"^{commit}")
	if i.tagCommit != "" && i.tagCommit == i.Commit {
		i.Tag = "v" + o.Version
	}
}

// dirty are the `git status --porcelain` lines of the work tree's changes,
// but for the excluded paths.
func (i Info) dirty(ctx context.Context) []string {
	args := []string{"status", "--porcelain", "--untracked-files=normal", "--", "."}
	dir, _ := filepath.Abs(i.dir)
	for _, ex := range i.exclude {
		abs, _ := filepath.Abs(ex)
		if rel, err := filepath.Rel(dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			args = append(args, ":(exclude)"+rel)
		}
	}
	if out, err := git(ctx, i.dir, args...); err == nil && out != "" {
		return strings.Split(out, "\n")
	}
	return nil
}

// CheckRelease refuses to call this source a release when the work tree
// has uncommitted changes (what was built is then in no commit), when the
// release tag points at another commit, or when the commit is tagged for
// another version (GITHUB_REF_NAME counts, on a tag push). Only a release
// asks, so only a release runs `git status` and `git tag`.
func (i Info) CheckRelease(ctx context.Context) error {
	var problems []string
	if i.dir != "" {
		problems = i.workTreeProblems(ctx)
	}
	if ref := os.Getenv("GITHUB_REF_NAME"); os.Getenv("GITHUB_REF_TYPE") == "tag" && ref != "v"+i.version && i.version != "" {
		problems = append(problems, fmt.Sprintf("this run is for tag %s (GITHUB_REF_NAME), but the version is %s", ref, i.version))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("refusing a release: %s (--allow-dirty releases anyway)", strings.Join(problems, "; "))
}

// workTreeProblems are what the git work tree says against a release.
func (i Info) workTreeProblems(ctx context.Context) []string {
	var problems []string
	if dirty := i.dirty(ctx); len(dirty) > 0 {
		shown := dirty[:min(len(dirty), 5)]
		more := ""
		if len(dirty) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(dirty)-len(shown))
		}
		problems = append(problems, fmt.Sprintf("the work tree %s has changes no commit holds (%s%s); commit or stash them", i.dir, strings.Join(shown, "; "), more))
	}
	tag := "v" + i.version
	if i.tagCommit != "" && i.tagCommit != i.Commit {
		problems = append(problems, fmt.Sprintf("tag %s points at %s, not at the commit being released, %s", tag, short(i.tagCommit), short(i.Commit)))
	}
	var headTags []string
	if tags, err := git(ctx, i.dir, "tag", "--points-at", i.Commit, "--list", "v*"); err == nil && tags != "" {
		headTags = strings.Fields(tags)
	}
	for _, t := range headTags {
		if t != tag && i.Tag == "" {
			problems = append(problems, fmt.Sprintf("commit %s is tagged %s, but the version is %s", short(i.Commit), t, i.version))
		}
	}
	return problems
}

func short(commit string) string { return commit[:min(len(commit), 12)] }

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
