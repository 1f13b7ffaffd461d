package source

import (
	"context"
	"os/exec"
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
