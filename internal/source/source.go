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
	Tag string
	// What CheckRelease judges, found in a git work tree.
	tagCommit string   // the commit v{version} points at, if it exists
	headTags  []string // the v* tags pointing at Commit
	dirty     []string // `git status --porcelain` lines
	version   string
	dir       string
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

// readGit finds the release tag and the work tree's changes. Outside a git
// work tree (a source tarball, GITHUB_SHA without a checkout) there is
// nothing to find, and no tag is claimed.
func (i *Info) readGit(ctx context.Context, o Options) {
	i.version, i.dir = o.Version, o.Dir
	tag := "v" + o.Version
	i.tagCommit, _ = git(ctx, o.Dir, "rev-parse", "--verify", "-q", "refs/tags/"+tag+"^{commit}")
	if i.tagCommit != "" && i.tagCommit == i.Commit {
		i.Tag = tag
	}
	if tags, err := git(ctx, o.Dir, "tag", "--points-at", i.Commit, "--list", "v*"); err == nil && tags != "" {
		i.headTags = strings.Fields(tags)
	}
	args := []string{"status", "--porcelain", "--untracked-files=normal", "--", "."}
	dir, _ := filepath.Abs(o.Dir)
	for _, ex := range o.Exclude {
		abs, _ := filepath.Abs(ex)
		if rel, err := filepath.Rel(dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			args = append(args, ":(exclude)"+rel)
		}
	}
	if out, err := git(ctx, o.Dir, args...); err == nil && out != "" {
		i.dirty = strings.Split(out, "\n")
	}
}

// CheckRelease refuses to call this source a release when the work tree
// has uncommitted changes (what was built is then in no commit), when the
// release tag points at another commit, or when the commit is tagged for
// another version (GITHUB_REF_NAME counts, on a tag push).
func (i Info) CheckRelease() error {
	var problems []string
	if len(i.dirty) > 0 {
		shown := i.dirty[:min(len(i.dirty), 5)]
		more := ""
		if len(i.dirty) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(i.dirty)-len(shown))
		}
		problems = append(problems, fmt.Sprintf("the work tree %s has changes no commit holds (%s%s); commit or stash them", i.dir, strings.Join(shown, "; "), more))
	}
	tag := "v" + i.version
	if i.tagCommit != "" && i.tagCommit != i.Commit {
		problems = append(problems, fmt.Sprintf("tag %s points at %s, not at the commit being released, %s", tag, short(i.tagCommit), short(i.Commit)))
	}
	for _, t := range i.headTags {
		if t != tag && i.Tag == "" {
			problems = append(problems, fmt.Sprintf("commit %s is tagged %s, but the version is %s", short(i.Commit), t, i.version))
		}
	}
	if ref := os.Getenv("GITHUB_REF_NAME"); os.Getenv("GITHUB_REF_TYPE") == "tag" && ref != tag && i.version != "" {
		problems = append(problems, fmt.Sprintf("this run is for tag %s (GITHUB_REF_NAME), but the version is %s", ref, i.version))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("refusing a release: %s (--allow-dirty releases anyway)", strings.Join(problems, "; "))
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
