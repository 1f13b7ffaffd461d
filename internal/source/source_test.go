package source

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResolvePrecedence(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "x", "--date", "@1700000000"}} {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(cmd.Environ(), "GIT_COMMITTER_DATE=@1700000000 +0000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	t.Setenv("GITHUB_SHA", "")
	t.Setenv("GITHUB_REPOSITORY", "")
	t.Setenv("SOURCE_DATE_EPOCH", "")

	info, err := Resolve(ctx, Options{Dir: repo})
	if err != nil || info.Epoch != time.Unix(1700000000, 0).UTC() || len(info.Commit) != 40 {
		t.Errorf("from the commit: %+v, %v", info, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
	t.Setenv("GITHUB_REPOSITORY", "runpod-workers/flash")
	info, _ = Resolve(ctx, Options{Dir: repo})
	if info.Epoch.Unix() != 1600000000 || info.Repository != "runpod-workers/flash" {
		t.Errorf("the environment must win over the commit: %+v", info)
	}
	cfgEpoch := int64(1500000000)
	info, _ = Resolve(ctx, Options{Dir: repo, Epoch: &cfgEpoch, Repository: "a/b"})
	if info.Epoch.Unix() != 1500000000 || info.Repository != "a/b" {
		t.Errorf("the config must win over the environment: %+v", info)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "soon")
	if _, err := Resolve(ctx, Options{Dir: repo}); err == nil || !strings.Contains(err.Error(), `SOURCE_DATE_EPOCH="soon"`) {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v", err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	if _, err := Resolve(ctx, Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "set source_date_epoch") {
		t.Errorf("no epoch anywhere: %v", err)
	}
}

// gitRepo makes a repository with one commit and returns it and the commit.
func gitRepo(t *testing.T) (string, string) {
	t.Helper()
	repo := t.TempDir()
	os.WriteFile(filepath.Join(repo, "worker.py"), []byte("x = 1\n"), 0o644)
	gitIn(t, repo, "init", "-q")
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "one")
	return repo, gitIn(t, repo, "rev-parse", "HEAD")
}

func gitIn(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestReleaseHonesty(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITHUB_SHA", "")
	t.Setenv("GITHUB_REF_TYPE", "")
	t.Setenv("SOURCE_DATE_EPOCH", "1")
	tests := []struct {
		name    string
		setup   func(t *testing.T, repo, head string)
		tag     bool   // Info.Tag is v1.2.0
		refusal string // CheckRelease's error, or "" for none
	}{
		{"clean, untagged", nil, false, ""},
		{"clean, tagged", func(t *testing.T, repo, _ string) { gitIn(t, repo, "tag", "v1.2.0") }, true, ""},
		{"annotated tag", func(t *testing.T, repo, _ string) {
			gitIn(t, repo, "-c", "user.name=t", "-c", "user.email=t@e", "tag", "-a", "-m", "r", "v1.2.0")
		}, true, ""},
		{"changed file", func(t *testing.T, repo, _ string) {
			os.WriteFile(filepath.Join(repo, "worker.py"), []byte("x = 2\n"), 0o644)
		}, false, "the work tree REPO has changes no commit holds (M worker.py); commit or stash them"},
		{"untracked file", func(t *testing.T, repo, _ string) {
			os.WriteFile(filepath.Join(repo, "new.py"), nil, 0o644)
		}, false, "(?? new.py)"},
		{"changes in dist only", func(t *testing.T, repo, _ string) {
			os.MkdirAll(filepath.Join(repo, "dist"), 0o755)
			os.WriteFile(filepath.Join(repo, "dist", "x.tar.gz"), nil, 0o644)
		}, false, ""},
		{"tag on another commit", func(t *testing.T, repo, head string) {
			gitIn(t, repo, "tag", "v1.2.0")
			gitIn(t, repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "two")
		}, false, "tag v1.2.0 points at HEAD1, not at the commit being released"},
		{"tagged for another version", func(t *testing.T, repo, _ string) { gitIn(t, repo, "tag", "v1.3.0") }, false,
			"is tagged v1.3.0, but the version is 1.2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, head := gitRepo(t)
			if tt.setup != nil {
				tt.setup(t, repo, head)
			}
			info, err := Resolve(ctx, Options{Dir: repo, Version: "1.2.0", Exclude: []string{filepath.Join(repo, "dist")}})
			if err != nil {
				t.Fatal(err)
			}
			if (info.Tag == "v1.2.0") != tt.tag || (!tt.tag && info.Tag != "") {
				t.Errorf("Tag = %q, want v1.2.0: %v", info.Tag, tt.tag)
			}
			err = info.CheckRelease(ctx)
			want := strings.NewReplacer("REPO", repo, "HEAD1", head[:12]).Replace(tt.refusal)
			switch {
			case want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--allow-dirty")):
				t.Errorf("CheckRelease = %v, want a refusal saying %q", err, want)
			}
		})
	}
	repo, _ := gitRepo(t)
	t.Setenv("GITHUB_REF_TYPE", "tag")
	t.Setenv("GITHUB_REF_NAME", "v2.0.0")
	info, _ := Resolve(ctx, Options{Dir: repo, Version: "1.2.0"})
	if err := info.CheckRelease(ctx); err == nil || !strings.Contains(err.Error(), "this run is for tag v2.0.0 (GITHUB_REF_NAME), but the version is 1.2.0") {
		t.Errorf("a tag push for another version: %v", err)
	}
}

// A build asks git only what it records (the commit, its time, the
// release tag); the work tree's state and the other tags are read when a
// release asks CheckRelease.
func TestGitStatusOnlyWhenReleasing(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GITHUB_SHA", "")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	repo, _ := gitRepo(t)
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	bin, log := t.TempDir(), filepath.Join(t.TempDir(), "git.log")
	wrapper := "#!/bin/sh\necho \"$*\" >> " + log + "\nexec " + realGit + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	calls := func() string { data, _ := os.ReadFile(log); return string(data) }

	info, err := Resolve(ctx, Options{Dir: repo, Version: "1.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if c := calls(); strings.Contains(c, " status ") || strings.Contains(c, "--points-at") || !strings.Contains(c, "refs/tags/v1.2.0") {
		t.Errorf("a build ran:\n%s", c)
	}
	os.WriteFile(filepath.Join(repo, "worker.py"), []byte("x = 2\n"), 0o644)
	if err := info.CheckRelease(ctx); err == nil || !strings.Contains(err.Error(), "M worker.py") {
		t.Errorf("CheckRelease of a changed work tree: %v", err)
	}
	if c := calls(); !strings.Contains(c, " status ") || !strings.Contains(c, "--points-at") {
		t.Errorf("a release ran:\n%s", c)
	}
}
