package coldstart

import (
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// layeredName is the layered start script's rows.
const layeredName = "`fwrelease inject --layers` (deps and worker layers)"

// layeredScripts releases the tree as 1.0.0 and 1.0.1 (only .version and
// MANIFEST.json differ) to an in-process GitHub behind l, where each
// tarball's layers are assets beside it, and returns inject --layers'
// command for each: the script fetches the layers from there, each cached
// on the volume by digest.
func layeredScripts(t *testing.T, fw, tree, work string, l *link) (v1, v2 []string) {
	t.Helper()
	const token = "ghp_benchToken"
	gh := testserver.StartGitHub(t, token)
	host := linkProxy(t, strings.TrimPrefix(gh.URL, "http://"), l)
	dir := filepath.Join(work, "layered")
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "bootstrap.sh"), []byte("#!/bin/sh\necho bootstrap ran\n"), 0o755)
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.SkipPassword)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "release.key"), priv, 0o600)
	os.WriteFile(filepath.Join(dir, "release.pub"), pub, 0o644)
	cfg := filepath.Join(dir, "fwrelease.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`name: flash-worker
version: "1.0.0"
source_date_epoch: 1767225600
matrix: {python: ["3.11"]}
files: [{src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: "0755"}]
deps: {dir: %s}
slim: {enabled: false}
sign: {key: release.key}
publish: {github: {owner: runpod-workers, repo: flash-worker, api_url: "http://%s/api/v3/", upload_url: "http://%s/api/uploads/"}}
`, tree, host, host)), 0o644)
	script := func(version string) []string {
		dist := filepath.Join(dir, "dist-"+version)
		cmd := exec.Command(fw, "--allow-insecure", "--config", cfg, "--dist", dist, "release", "--version", version)
		cmd.Env = append(os.Environ(), "GITHUB_TOKEN="+token, "GITHUB_SHA="+strings.Repeat("ab", 20))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("releasing %s to the GitHub fake: %v\n%s", version, err, out)
		}
		out, err := exec.Command(fw, "--json", "--allow-insecure", "inject", "--layers", "--manifest", filepath.Join(dist, "manifest.json"),
			"--key", filepath.Join(dir, "release.pub"), "--target", "py3.11-cpu-linux-x86_64").Output()
		var argv []string
		if err != nil || json.Unmarshal(out, &argv) != nil {
			t.Fatalf("inject --layers %s: %v %s", version, err, out)
		}
		return argv
	}
	return script("1.0.0"), script("1.0.1")
}
