package main

import (
	"encoding/json"
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
	t.Parallel()
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
	t.Parallel()
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
		"inputs":  {},
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
	t.Parallel()
	s3srv := testserver.StartS3(t, "releases")
	publicRead(t, s3srv, "releases")
	registry := testserver.StartRegistry(t) + "/runpod/flash-worker"
	gh := testserver.StartGitHub(t, "ghp_workflowTestToken")
	dir := t.TempDir()
	cfg, pub := releaseConfig(t, dir, s3srv.Endpoint, map[string]any{
		"publish.github": map[string]any{"owner": "runpod-workers", "repo": "flash", "api_url": gh.APIURL(), "upload_url": gh.UploadURL()},
		"publish.oci":    map[string]any{"repository": registry, "plain_http": true},
	})
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
	if draft, assets, ok := gh.Release("v1.2.0"); !ok || draft || len(assets) != 18 {
		t.Errorf("GitHub release: found %v, draft %v, %d assets (want published, 4 tarballs + 8 layer files + 4 bundles + manifest + bundle)", ok, draft, len(assets))
	}
	v := run(t, dir, nil, "--allow-insecure", "verify", filepath.Join(dist, "manifest.json"), "--key", pub)
	if v.code != 0 || strings.Count(v.stdout, " ok\n") != 44 || strings.Count(v.stdout, "(mount image)") != 4 || strings.Count(v.stdout, "github (deps layer)") != 4 {
		t.Errorf("verify (4 targets × local, s3, github, oci, the mount images, and 2 layer files × local, s3, github): exit %d\n%s%s", v.code, v.stdout, v.stderr)
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

type workflowStep struct {
	ID   string            `yaml:"id"`
	Name string            `yaml:"name"`
	Run  string            `yaml:"run"`
	Env  map[string]string `yaml:"env"`
}

// workflowSteps reads the steps of a job of a workflow (job ""): action.yml's.
func workflowSteps(t *testing.T, file, job string) []workflowStep {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs struct {
			Steps []workflowStep `yaml:"steps"`
		} `yaml:"runs"`
		Jobs map[string]struct {
			Steps []workflowStep `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if job == "" {
		return doc.Runs.Steps
	}
	return doc.Jobs[job].Steps
}

func stepNamed(t *testing.T, steps []workflowStep, name string) workflowStep {
	t.Helper()
	for _, s := range steps {
		if s.ID == name || s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q", name)
	return workflowStep{}
}

// runStep runs a step's script as GitHub Actions runs a bash step (bash
// -eo pipefail) in dir, with env; it returns the combined output.
func runStep(t *testing.T, dir, script string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + filepath.Join(dir, "bin") + ":/usr/bin:/bin", "GITHUB_OUTPUT=" + filepath.Join(dir, "github-output")}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A hostile input never runs a command: the reusable workflow refuses it
// by pattern before any job with a token, and even past that, the action
// hands the caller's words to fwrelease as an array without evaluating
// them (it ran eval "fwrelease $FWRELEASE_ARGS").
func TestWorkflowInputsAreNotEvaluated(t *testing.T) {
	hostile := []string{`s3 $(touch pwned-subst)`, "s3 `touch pwned-backtick`", `s3; touch pwned-semicolon`, `s3 && touch pwned-and`, "s3\ntouch pwned-newline", `*`}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	// A stand-in fwrelease that records its arguments, one per line.
	os.WriteFile(filepath.Join(dir, "bin", "fwrelease"), []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" >\"$ARGS_FILE\"\necho stdout-of-fwrelease\n"), 0o755)
	pwned := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "pwned-*"))
		return m
	}

	check := stepNamed(t, workflowSteps(t, ".github/workflows/worker-release.yml", "inputs"), "Check the inputs").Run
	good := []string{"CONFIG=examples/flash-worker/fwrelease.yaml", "CHANNELS=s3 github", "FWRELEASE_VERSION=v0.1.0", "IDENTITY="}
	if out, err := runStep(t, dir, check, good...); err != nil {
		t.Fatalf("good inputs refused: %v\n%s", err, out)
	}
	for _, in := range []struct{ name, value string }{
		{"CONFIG", "a b.yaml"}, {"CONFIG", "../x.yaml"}, {"CONFIG", "$(id).yaml"}, {"FWRELEASE_VERSION", "v1.0.0; id"},
		{"IDENTITY", "https://x/\"$(id)\""},
	} {
		if out, err := runStep(t, dir, check, append(good, in.name+"="+in.value)...); err == nil {
			t.Errorf("%s=%q passed the check:\n%s", in.name, in.value, out)
		}
	}
	opts := stepNamed(t, workflowSteps(t, ".github/workflows/worker-release.yml", "publish"), "Publish options").Run
	action := stepNamed(t, workflowSteps(t, "action.yml", ""), "run").Run
	for _, ch := range hostile {
		if out, err := runStep(t, dir, check, append(good, "CHANNELS="+ch)...); err == nil || !strings.Contains(out, "input channels") {
			t.Errorf("channels %q passed the check: %v\n%s", ch, err, out)
		}
		if out, err := runStep(t, dir, opts, "CHANNELS="+ch, "DRY_RUN=false"); err == nil {
			t.Errorf("publish options took channels %q:\n%s", ch, out)
		}
		// The action, given the words as the unchecked workflow built
		// them: fwrelease gets them literally, and nothing else runs.
		args := filepath.Join(dir, "args")
		env := []string{"FWRELEASE_ARGS=--config \"$FWRELEASE_CONFIG\" --dist ${SHARD} publish --to " + ch, "FWRELEASE_CONFIG=my config.yaml", "SHARD=dist/py3.11", "ARGS_FILE=" + args}
		out, err := runStep(t, dir, action, env...)
		if err != nil {
			t.Errorf("the action with channels %q: %v\n%s", ch, err, out)
			continue
		}
		got, _ := os.ReadFile(args)
		want := "--config\nmy config.yaml\n--dist\ndist/py3.11\npublish\n--to\n"
		if !strings.HasPrefix(string(got), want) || !strings.Contains(string(got), "\n"+strings.Fields(ch)[0]+"\n") {
			t.Errorf("channels %q: fwrelease got\n%s\nwant it to start\n%s", ch, got, want)
		}
		if out, _ := os.ReadFile(filepath.Join(dir, "github-output")); !strings.Contains(string(out), "stdout-of-fwrelease") {
			t.Errorf("the action's stdout output: %s", out)
		}
	}
	if p := pwned(); len(p) > 0 {
		t.Errorf("a hostile channels value ran a command: %v", p)
	}
	// Quotes group, an unmatched one is an error (never a guess).
	if _, err := runStep(t, dir, action, `FWRELEASE_ARGS=verify "unterminated`, "ARGS_FILE="+filepath.Join(dir, "args")); err == nil {
		t.Error("an unmatched quote was accepted")
	}
}
