package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// Shards built on separate "runners" merge into the manifest a single
// build would give; the same target built two ways is refused.
func TestBuildShardsAndMerge(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	env := []string{"GITHUB_SHA=" + fixedCommit}
	ids := []string{"py3.10-cpu-linux-x86_64", "py3.13-cpu-linux-x86_64"}
	var dists []string
	for i, id := range ids {
		dist := filepath.Join(dir, "runner"+string(rune('a'+i)))
		dists = append(dists, dist)
		if r := run(t, dir, env, "--config", exampleConfig(t), "--dist", dist, "build", "--target", id); r.code != 0 {
			t.Fatalf("build %s: %s", id, r.stderr)
		}
	}
	out := filepath.Join(dir, "manifest.json")
	r := run(t, dir, nil, "manifest", "merge", "--from", dists[0], "--from", dists[1], "-o", out)
	if r.code != 0 {
		t.Fatalf("merge: %s", r.stderr)
	}
	data, _ := os.ReadFile(out)
	m, err := manifest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Artifacts) != 2 || m.Artifacts[0].Target.ID != ids[0] || m.Artifacts[1].Target.ID != ids[1] || m.Source.Commit != fixedCommit {
		t.Fatalf("merged manifest: %+v", m)
	}

	// The same targets in a whole snapshot have the same digests.
	s := sharedSnapshot(t)
	for _, a := range m.Artifacts {
		w, _ := s.manifest.Find(a.Target.ID)
		if w.SHA256 != a.SHA256 {
			t.Errorf("%s: sharded build %s, whole build %s", a.Target.ID, a.SHA256, w.SHA256)
		}
	}

	// One target built twice, differently.
	other := filepath.Join(dir, "runnerc")
	if r := run(t, dir, env, "--config", exampleConfig(t), "--dist", other, "build", "--target", ids[0], "--no-slim", "--version", "1.2.0"); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	os.Remove(out)
	r = run(t, dir, nil, "manifest", "merge", "--from", dists[0], "--from", other, "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "target "+ids[0]+" appears twice with different tarballs") {
		t.Errorf("conflicting shards: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed merge wrote the manifest")
	}
}
