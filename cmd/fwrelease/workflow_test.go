package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

func TestWorkflowsLint(t *testing.T) {
	bin := testserver.Binary(t, "actionlint", "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12")
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), ".github", "workflows", "*.yml"))
	if len(files) < 3 {
		t.Fatalf("workflows: %v", files)
	}
	out, err := exec.Command(bin, files...).CombinedOutput()
	if err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
}

// The release workflow's commands, run in order as its jobs do: the target
// matrix, one build per "runner", then one publish that merges and signs,
// to every channel (the real S3 and OCI servers, the GitHub fake, a local
// mirror), then verify. A single `release` of the same source gives the
// same manifest.
func TestWorkflowCommandsMatchSingleRelease(t *testing.T) {
	skipShort(t)
	s3srv := testserver.StartS3(t, "releases")
	publicRead(t, s3srv, "releases")
	registry := testserver.StartRegistry(t) + "/runpod/flash-worker"
	gh := testserver.StartGitHub(t, "ghp_workflowTestToken")
	dir := t.TempDir()
	cfg, pub := releaseConfig(t, dir, s3srv.Endpoint)
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "  github: {owner: runpod-workers, repo: flash, api_url: %q, upload_url: %q}\n  oci: {repository: %s, plain_http: true}\n", gh.APIURL(), gh.UploadURL(), registry)
	f.Close()
	env := append(s3srv.Env(), "GITHUB_SHA="+fixedCommit, "GITHUB_TOKEN=ghp_workflowTestToken")

	// Job 1: the matrix.
	r := run(t, dir, env, "--config", cfg, "targets", "--json")
	var targets []targetJSON
	if err := json.Unmarshal([]byte(r.stdout), &targets); err != nil || len(targets) != 4 {
		t.Fatalf("targets --json: %v %s", err, r.stdout)
	}
	// Job 2: one build per runner.
	var from []string
	for _, tg := range targets {
		d := filepath.Join(dir, "shards", tg.ID)
		if r := run(t, dir, env, "--config", cfg, "--dist", d, "build", "--target", tg.ID); r.code != 0 {
			t.Fatalf("build %s: %s", tg.ID, r.stderr)
		}
		from = append(from, "--from", d)
	}
	// Job 3: merge (as a check), then publish everything and verify.
	if r := run(t, dir, env, append(append([]string{"manifest", "merge"}, from...), "-o", filepath.Join(dir, "merged.json"))...); r.code != 0 {
		t.Fatalf("merge: %s", r.stderr)
	}
	dist := filepath.Join(dir, "dist")
	r = run(t, dir, env, append(append([]string{"--config", cfg, "--dist", dist, "--allow-insecure", "publish"}, from...), "--key", filepath.Join(filepath.Dir(cfg), "release.key"))...)
	if r.code != 0 {
		t.Fatalf("publish: exit %d\n%s", r.code, r.stderr)
	}
	for _, tg := range targets {
		if !strings.Contains(r.stdout, tg.ID) {
			t.Errorf("the summary does not mention %s:\n%s", tg.ID, r.stdout)
		}
	}
	if draft, assets, ok := gh.Release("v1.2.0"); !ok || draft || len(assets) != 10 {
		t.Errorf("GitHub release: found %v, draft %v, %d assets (want published, 4 tarballs + 4 bundles + manifest + bundle)", ok, draft, len(assets))
	}
	v := run(t, dir, nil, "--allow-insecure", "verify", filepath.Join(dist, "manifest.json"), "--key", pub)
	if v.code != 0 || strings.Count(v.stdout, " ok ") != 16 {
		t.Errorf("verify (4 targets × local, s3, github, oci): exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	sharded, _ := os.ReadFile(filepath.Join(dist, "manifest.json"))

	// The same release in one go converges on the same manifest.
	single := filepath.Join(dir, "single")
	r = run(t, dir, env, "--config", cfg, "--dist", single, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("release: %s", r.stderr)
	}
	if n := strings.Count(r.stderr, "msg=uploaded"); n != 0 {
		t.Errorf("the single release re-uploaded %d files", n)
	}
	whole, _ := os.ReadFile(filepath.Join(single, "manifest.json"))
	if string(whole) != string(sharded) {
		t.Errorf("sharded and single releases differ:\n%s\n---\n%s", sharded, whole)
	}
}
