package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

const (
	// The reusable workflow signs: its URL is every caller's SAN.
	workflowIdentity = "https://github.com/runpod-workers/fwrelease/.github/workflows/worker-release.yml@refs/tags/v0.1.0"
	actionsIssuer    = "https://token.actions.githubusercontent.com"
)

// Keyless signing as in the release workflow, offline: the OIDC token from
// the Actions endpoint, a certificate from Fulcio, an entry in Rekor; then
// fwrelease verify and cosign check the identity against a trusted root.
func TestKeylessReleaseVerifies(t *testing.T) {
	skipShort(t)
	t.Parallel()
	ss := testserver.StartSigstore(t, workflowIdentity, actionsIssuer)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	cfg := exampleWorker(t, src).
		set("sign", map[string]any{"keyless": true, "fulcio_url": ss.Fulcio.URL, "rekor_url": ss.Rekor.URL}).
		set("publish.local", map[string]any{"dir": filepath.Join(dir, "mirror")}).
		write(t, filepath.Join(src, "fwrelease.yaml"))
	dist := filepath.Join(dir, "dist")
	env := append(ss.Env(), "GITHUB_SHA="+fixedCommit)

	r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--target", "py3.11-cpu-linux-x86_64")
	if r.code != 0 {
		t.Fatalf("keyless release: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, ss.RequestToken) {
		t.Error("the OIDC request token appeared in the output")
	}
	trusted := ss.TrustedRoot(t)
	mpath := filepath.Join(dist, "manifest.json")
	identity := []string{"--certificate-identity", workflowIdentity, "--certificate-oidc-issuer", actionsIssuer, "--trusted-root", trusted}
	ours := append([]string{"verify", mpath, "--certificate-github-repository", "runpod-workers/flash"}, identity...)
	v := run(t, dir, nil, ours...)
	if v.code != 0 || !strings.Contains(v.stdout, " ok ") || !strings.Contains(v.stdout, " https://github.com/runpod-workers/flash@refs/tags/v1.2.0 ") {
		t.Errorf("verify keyless: exit %d (want the table to name the repository it accepted)\n%s%s", v.code, v.stdout, v.stderr)
	}
	if v := run(t, dir, nil, append([]string{"verify", mpath}, identity...)...); v.code != 2 || !strings.Contains(v.stderr, "--certificate-github-repository") {
		t.Errorf("verify keyless without the repository: exit %d, want 2 and a message naming the flag\n%s", v.code, v.stderr)
	}
	v = run(t, dir, nil, "verify", mpath, "--certificate-github-repository", "runpod-workers/flash", "--certificate-identity", "https://github.com/evil/fork/.github/workflows/release.yml@refs/tags/v1.2.0", "--certificate-oidc-issuer", actionsIssuer, "--trusted-root", trusted)
	if v.code != 1 || !strings.Contains(v.stderr, "signature verification failed") {
		t.Errorf("verify with another identity: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}

	// cosign, independently: the certificate chain, the identity and the
	// Rekor entry (no CT log in this offline root, hence --insecure-ignore-sct).
	tarball := filepath.Join(dist, "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz")
	out, err := exec.Command(cosignBin(t), "verify-blob", "--bundle", tarball+".sigstore.json", "--new-bundle-format",
		"--certificate-identity", workflowIdentity, "--certificate-oidc-issuer", actionsIssuer,
		"--certificate-github-workflow-repository", "runpod-workers/flash", "--trusted-root", trusted, "--insecure-ignore-sct", tarball).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Errorf("cosign verify-blob (keyless): %v\n%s", err, out)
	}

	// A re-run converges: new signatures differ, the published ones stay.
	mirror := filepath.Join(dir, "mirror", "v1.2.0")
	published := map[string][]byte{}
	for _, name := range []string{filepath.Base(tarball) + ".sigstore.json", "manifest.json.sigstore.json", "manifest.json"} {
		published[name] = readFile(t, filepath.Join(mirror, name))
	}
	firstBundle := readFile(t, tarball+".sigstore.json")
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--target", "py3.11-cpu-linux-x86_64"); r.code != 0 {
		t.Errorf("keyless re-run: %s", r.stderr)
	}
	if bytes.Equal(readFile(t, tarball+".sigstore.json"), firstBundle) {
		t.Error("the re-run's signature is byte-identical to the first; the test cannot tell kept from replaced")
	}
	for name, before := range published {
		if !bytes.Equal(readFile(t, filepath.Join(mirror, name)), before) {
			t.Errorf("the re-run replaced the published %s", name)
		}
	}

	// Another repository calling the same reusable workflow gets a
	// certificate with the same SAN: its manifest is refused.
	ss.Repository = "evil/fork"
	if r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "sign"); r.code != 0 {
		t.Fatalf("signing as evil/fork: %s", r.stderr)
	}
	if v := run(t, dir, nil, ours...); v.code != 1 || !strings.Contains(v.stderr, "https://github.com/evil/fork") {
		t.Errorf("a manifest signed by evil/fork through the same workflow: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}

	// Without the Actions token, a clear message.
	r = run(t, dir, []string{"ACTIONS_ID_TOKEN_REQUEST_URL=", "SIGSTORE_ID_TOKEN="}, "--config", cfg, "--dist", dist, "--allow-insecure", "sign")
	if r.code != 1 || !strings.Contains(r.stderr, "id-token: write") {
		t.Errorf("no token: exit %d, %s", r.code, r.stderr)
	}
}
