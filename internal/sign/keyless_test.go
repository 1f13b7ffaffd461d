package sign

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/runpod-workers/fwrelease/internal/testserver"
)

const (
	reusableWorkflow = "https://github.com/runpod-workers/fwrelease/.github/workflows/worker-release.yml@refs/tags/v0.1.0"
	actionsIssuer    = "https://token.actions.githubusercontent.com"
)

// keylessBundle signs a file in a job of repo at ref that calls the
// reusable workflow, with the offline Fulcio and Rekor.
func keylessBundle(t *testing.T, ss *testserver.Sigstore, repo, ref string) (file, bundlePath string) {
	t.Helper()
	ss.Repository, ss.Ref = repo, ref
	for _, kv := range ss.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("SIGSTORE_ID_TOKEN", "")
	ctx := context.Background()
	s, err := NewKeyless(ctx, KeylessOptions{FulcioURL: ss.Fulcio.URL, RekorURL: ss.Rekor.URL})
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "flash-worker.tar.gz")
	if err := os.WriteFile(file, []byte("released by "+repo), 0o644); err != nil {
		t.Fatal(err)
	}
	bundlePath, err = s.SignFile(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	return file, bundlePath
}

// Every repository that calls the reusable workflow gets a certificate
// with the same SAN; only the source repository (and its ref) tells them
// apart, so that is what a keyless verification must pin.
func TestKeylessVerificationPinsTheSourceRepository(t *testing.T) {
	ss := testserver.StartSigstore(t, reusableWorkflow, actionsIssuer)
	trusted, err := root.NewTrustedRootFromPath(ss.TrustedRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	ours := Identity{SAN: reusableWorkflow, Issuer: actionsIssuer, Repository: "runpod-workers/flash"}
	v, err := NewIdentityVerifier(trusted, ours)
	if err != nil {
		t.Fatal(err)
	}
	check := func(file, bundlePath string) (string, error) {
		b, err := bundle.LoadJSONFromPath(bundlePath)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := hashFile(file, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return v.Check(b, "sha256", digest)
	}

	signer, err := check(keylessBundle(t, ss, "runpod-workers/flash", "refs/tags/v1.2.0"))
	if err != nil || signer != "https://github.com/runpod-workers/flash@refs/tags/v1.2.0" {
		t.Fatalf("our release: signer %q, %v", signer, err)
	}
	for _, c := range []struct{ repo, ref, want string }{
		{"evil/fork", "refs/tags/v1.2.0", "SourceRepositoryURI"},                 // another caller of the same workflow
		{"runpod-workers/flash-evil", "refs/tags/v1.2.0", "SourceRepositoryURI"}, // a prefix is not a match
		{"runpod-workers/flash", "refs/heads/main", "not at a tag"},              // ours, but not a release
	} {
		signer, err := check(keylessBundle(t, ss, c.repo, c.ref))
		if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s at %s: accepted as %q (%v); want a refusal naming %s", c.repo, c.ref, signer, err, c.want)
		}
	}

	if _, err := NewIdentityVerifier(trusted, Identity{SAN: reusableWorkflow, Issuer: actionsIssuer}); err == nil || !strings.Contains(err.Error(), "repository") {
		t.Errorf("no repository and no opt-out: %v", err)
	}
	if _, err := NewIdentityVerifier(trusted, Identity{SAN: reusableWorkflow, Issuer: actionsIssuer, Repository: "evil/../x y"}); err == nil {
		t.Error("a repository that is not OWNER/REPO was taken")
	}
	anyRepo, err := NewIdentityVerifier(trusted, Identity{SAN: reusableWorkflow, Issuer: actionsIssuer, AnyRepository: true})
	if err != nil {
		t.Fatal(err)
	}
	v = anyRepo
	if signer, err := check(keylessBundle(t, ss, "evil/fork", "refs/heads/x")); err != nil || signer != "https://github.com/evil/fork@refs/heads/x" {
		t.Errorf("the explicit opt-out: %q, %v", signer, err)
	}
}
