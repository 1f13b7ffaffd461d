package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// Tokens, secret keys and key passwords never appear in output, logs or
// errors, even with -v and even when the request they authorise fails.
func TestSecretsNeverPrinted(t *testing.T) {
	skipShort(t)
	const (
		ghToken  = "ghp_secretTokenNeverPrinted0123"
		awsKey   = "awsSecretNeverPrinted0123456789"
		password = "cosignPasswordNeverPrinted"
	)
	srv := testserver.StartS3(t, "releases")
	gh := testserver.StartGitHub(t, "ghp_theRightToken")
	dir := t.TempDir()
	cfg, _ := releaseConfig(t, dir, srv.Endpoint)
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "  github: {owner: runpod-workers, repo: flash, api_url: %q, upload_url: %q}\n", gh.APIURL(), gh.UploadURL())
	f.Close()
	dist := filepath.Join(dir, "dist")
	env := []string{"GITHUB_SHA=" + fixedCommit, "GITHUB_TOKEN=" + ghToken, "AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + awsKey, "AWS_REGION=us-east-1", "COSIGN_PASSWORD=" + password}

	for _, args := range [][]string{
		{"-v", "--config", cfg, "--dist", dist, "--allow-insecure", "release"},                                      // S3 refuses the key, GitHub the token
		{"-v", "--config", cfg, "--dist", dist, "--allow-insecure", "publish", "--to", "github"},                    // GitHub alone
		{"-v", "--config", cfg, "--dist", dist, "sign", "--key", filepath.Join(dir, "missing-cosign.key")},          // a key that is not there
		{"-v", "--config", cfg, "--dist", dist, "--allow-insecure", "publish", "--to", "s3", "--key", "env://NOPE"}, // an empty key variable
	} {
		r := run(t, dir, env, args...)
		if r.code == 0 {
			t.Errorf("%v succeeded; the test wants failures", args)
		}
		for _, secret := range []string{ghToken, awsKey, password} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%v printed a secret:\n%s%s", args, r.stdout, r.stderr)
			}
		}
	}
}
