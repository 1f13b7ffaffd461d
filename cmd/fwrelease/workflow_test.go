package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

func TestWorkflowsLint(t *testing.T) {
	bin := testserver.Binary(t, "actionlint", "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12")
	dir := filepath.Join(repoRoot(t), ".github", "workflows")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	for _, name := range []string{"ci.yml", "snapshot.yml", "release.yml", "worker-release.yml", "goreleaser.yml"} {
		if !slices.Contains(files, filepath.Join(dir, name)) {
			t.Errorf("no %s among %v", name, files)
		}
	}
	// actionlint checks action.yml's inputs where a workflow uses it as ./
	// (ci.yml), and the reusable workflow's inputs where release.yml calls it.
	out, err := exec.Command(bin, files...).CombinedOutput()
	if err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
}

// Each job of the reusable workflow holds only what it needs: nothing by
// default, the OIDC token only where something is signed, write access only
// where something is published.
func TestWorkerReleasePermissions(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", "worker-release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Permissions map[string]string `yaml:"permissions"`
		Jobs        map[string]struct {
			Permissions map[string]string `yaml:"permissions"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	if wf.Permissions == nil || len(wf.Permissions) != 0 {
		t.Errorf("workflow-wide permissions %v, want {}", wf.Permissions)
	}
	want := map[string]map[string]string{
		"targets": {"contents": "read"},
		"build":   {"contents": "read"},
		"merge":   {},
		"sign":    {"contents": "read", "id-token": "write"},
		"publish": {"contents": "write", "packages": "write", "id-token": "write"},
		"verify":  {"contents": "read", "packages": "read"},
	}
	for name, job := range wf.Jobs {
		w, ok := want[name]
		if !ok {
			t.Errorf("job %s: no expected permissions in this test; add them", name)
			continue
		}
		if job.Permissions == nil || !maps.Equal(job.Permissions, w) {
			t.Errorf("job %s: permissions %v, want %v", name, job.Permissions, w)
		}
	}
	if len(wf.Jobs) != len(want) {
		t.Errorf("jobs %d, want %d", len(wf.Jobs), len(want))
	}
}

// The reusable release workflow's commands, run in order as its jobs do:
// the target matrix, one build per "runner", merge, sign, then publish to
// every channel (the real S3 and OCI servers, the GitHub fake, a local
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
	// Job 2: one build per runner; job 3 downloads every runner's shard
	// into one dist/ (download-artifact's merge-multiple) and merges.
	dist := filepath.Join(dir, "dist")
	for _, tg := range targets {
		d := filepath.Join(dir, "shards", tg.ID)
		if r := run(t, dir, env, "--config", cfg, "--dist", d, "build", "--target", tg.ID); r.code != 0 {
			t.Fatalf("build %s: %s", tg.ID, r.stderr)
		}
		if err := os.CopyFS(dist, os.DirFS(d)); err != nil {
			t.Fatal(err)
		}
	}
	if r := run(t, dir, env, "manifest", "merge", "--from", dist, "-o", filepath.Join(dir, "merged.json")); r.code != 0 {
		t.Fatalf("merge: %s", r.stderr)
	}
	// Job 4 signs, job 5 publishes what job 4 signed (signing only the
	// manifest), then verify.
	key := filepath.Join(filepath.Dir(cfg), "release.key")
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "sign", "--key", key); r.code != 0 || strings.Count(r.stdout, ".sigstore.json") != 4 {
		t.Fatalf("sign: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bundles := map[string][]byte{}
	matches, _ := filepath.Glob(filepath.Join(dist, "*.tar.gz.sigstore.json"))
	if len(matches) != 4 {
		t.Fatalf("%d tarball bundles in dist, want the 4 sign made: %v", len(matches), matches)
	}
	for _, m := range matches {
		bundles[m], _ = os.ReadFile(m)
	}
	r = run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "publish", "--from", dist, "--key", key)
	if r.code != 0 {
		t.Fatalf("publish: exit %d\n%s", r.code, r.stderr)
	}
	for m, b := range bundles {
		if now, _ := os.ReadFile(m); string(now) != string(b) {
			t.Errorf("publish signed %s again, after the sign job had", m)
		}
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
