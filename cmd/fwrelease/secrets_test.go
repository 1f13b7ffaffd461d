package main

import (
	"crypto/elliptic"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// Tokens, secret keys and key passwords never appear in output, logs or
// errors, even with -v and even when the request they authorise fails.
func TestSecretsNeverPrinted(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const (
		ghToken  = "ghp_secretTokenNeverPrinted0123"
		awsKey   = "awsSecretNeverPrinted0123456789"
		password = "cosignPasswordNeverPrinted"
	)
	srv := testserver.StartS3(t, "releases")
	gh := testserver.StartGitHub(t, "ghp_theRightToken")
	dir := t.TempDir()
	cfg, _ := releaseConfig(t, dir, srv.Endpoint, map[string]any{
		"publish.github": map[string]any{"owner": "runpod-workers", "repo": "flash", "api_url": gh.APIURL(), "upload_url": gh.UploadURL()},
	})
	// The release key is encrypted with the password, so signing reads it;
	// another key is encrypted with some other password, so decrypting it
	// fails with the password in hand.
	releaseKey := filepath.Join(dir, "src", "release.key")
	writeEncryptedKey(t, releaseKey, password)
	otherKey := filepath.Join(dir, "other.key")
	writeEncryptedKey(t, otherKey, "not the password")
	dist := filepath.Join(dir, "dist")
	env := []string{"GITHUB_SHA=" + fixedCommit, "GITHUB_TOKEN=" + ghToken, "AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + awsKey, "AWS_REGION=us-east-1", "COSIGN_PASSWORD=" + password}
	tarball := filepath.Join(dist, "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz")

	for _, tt := range []struct {
		args []string
		want string // in stderr: the failure the command must reach
	}{
		// Signs with the encrypted key, then S3 refuses the secret key
		// and GitHub the token.
		{[]string{"-v", "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--target", "py3.11-cpu-linux-x86_64"}, "s3"},
		{[]string{"-v", "--config", cfg, "--dist", dist, "--allow-insecure", "publish", "--to", "github"}, "github"},
		{[]string{"-v", "--config", cfg, "--dist", dist, "sign", "--key", otherKey}, "decrypt"},
		{[]string{"-v", "--config", cfg, "--dist", dist, "sign", "--key", filepath.Join(dir, "missing-cosign.key")}, "missing-cosign.key"},
		{[]string{"-v", "--config", cfg, "--dist", dist, "--allow-insecure", "publish", "--to", "s3", "--key", "env://NOPE"}, "NOPE"},
	} {
		r := run(t, dir, env, tt.args...)
		if r.code == 0 {
			t.Errorf("%v succeeded; the test wants failures", tt.args)
		}
		if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(tt.want)) {
			t.Errorf("%v failed without reaching the %q failure the test is about:\n%s", tt.args, tt.want, r.stderr)
		}
		for _, secret := range []string{ghToken, awsKey, password} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%v printed a secret:\n%s%s", tt.args, r.stdout, r.stderr)
			}
		}
		if slices.Contains(tt.args, "release") {
			// The release got past signing: the password was read.
			if _, err := os.Stat(tarball + ".sigstore.json"); err != nil {
				t.Errorf("the release did not sign with the encrypted key, so it never read COSIGN_PASSWORD: %v", err)
			}
		}
	}
}

// A server that quotes the secret it was sent back in its error: the
// token reaches neither the output nor dist/.
func TestEchoedSecretsRedacted(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	copyExample(t, src, 0o644, 0o755)
	cfg := filepath.Join(src, "fwrelease.yaml")
	dist := filepath.Join(dir, "dist")
	if r := run(t, dir, []string{"GITHUB_SHA=" + fixedCommit}, "--config", cfg, "--dist", dist, "build", "--target", "py3.11-cpu-linux-x86_64"); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	noSecret := func(what string, r result, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("%s printed the secret %q:\n%s%s", what, s, r.stdout, r.stderr)
			}
			filepath.WalkDir(dist, func(p string, d os.DirEntry, err error) error {
				if b, _ := os.ReadFile(p); err == nil && !d.IsDir() && strings.Contains(string(b), s) {
					t.Errorf("%s left the secret %q in %s", what, s, p)
				}
				return nil
			})
		}
	}

	t.Run("GitHub quotes the Authorization header", func(t *testing.T) {
		const token = "ghp_echoedTokenNeverPrinted0123456789"
		gh := testserver.StartGitHub(t, "ghp_theRightToken")
		gh.Set(func(g *testserver.GitHub) { g.EchoAuthorization = true })
		priv, _, _ := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.SkipPassword)
		os.WriteFile(filepath.Join(src, "release.key"), priv, 0o600)
		ghCfg := readConfig(t, cfg).
			set("sign", map[string]any{"key": "release.key"}).
			set("publish.github", map[string]any{"owner": "runpod-workers", "repo": "flash", "api_url": gh.APIURL(), "upload_url": gh.UploadURL()}).
			write(t, filepath.Join(src, "github.yaml"))
		if r := run(t, dir, nil, "--config", ghCfg, "--dist", dist, "sign"); r.code != 0 {
			t.Fatalf("sign: %s", r.stderr)
		}
		r := run(t, dir, []string{"GITHUB_SHA=" + fixedCommit, "GITHUB_TOKEN=" + token}, "-v", "--config", ghCfg, "--dist", dist, "--allow-insecure", "publish", "--to", "github")
		if r.code != 1 || !strings.Contains(r.stderr, "Bad credentials (Authorization: [REDACTED])") {
			t.Errorf("exit %d, want 1 and the echoed header redacted:\n%s", r.code, r.stderr)
		}
		noSecret("publish --to github", r, token)
	})

	t.Run("Fulcio quotes the OIDC token", func(t *testing.T) {
		ss := testserver.StartSigstore(t, workflowIdentity, actionsIssuer)
		ss.EchoToken = true
		kCfg := readConfig(t, cfg).
			set("sign", map[string]any{"keyless": true, "fulcio_url": ss.Fulcio.URL, "rekor_url": ss.Rekor.URL}).
			write(t, filepath.Join(src, "keyless.yaml"))
		r := run(t, dir, ss.Env(), "-v", "--config", kCfg, "--dist", dist, "--allow-insecure", "sign")
		if r.code != 1 || !strings.Contains(r.stderr, "invalid identity token [REDACTED]") {
			t.Errorf("exit %d, want 1 and the echoed token redacted:\n%s", r.code, r.stderr)
		}
		noSecret("sign --keyless", r, ss.RequestToken, "eyJhbGciOiJSUzI1NiJ9.")
	})
}

// writeEncryptedKey writes a private key encrypted with password, in the
// format cosign generate-key-pair writes.
func writeEncryptedKey(t *testing.T, path, password string) {
	t.Helper()
	priv, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte(password)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(priv), "ENCRYPTED") {
		t.Fatalf("the key is not encrypted:\n%s", priv)
	}
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Log lines carry errors, and errors can quote a server: the logger
// writes through the redactor.
func TestLoggerRedacts(t *testing.T) {
	var buf strings.Builder
	g := &globalOptions{stdout: io.Discard, stderr: &buf}
	g.logger().Warn("completing the upload failed", "error", "401 (Authorization: Bearer abcdefgh12345678)")
	if strings.Contains(buf.String(), "abcdefgh12345678") || !strings.Contains(buf.String(), "[REDACTED]") {
		t.Errorf("logged %q", buf.String())
	}
}
