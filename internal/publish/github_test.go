package publish

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

const testToken = "ghp_fwreleaseTestToken0123456789"

func newGitHub(t *testing.T, srv *testserver.GitHub, token string) *GitHub {
	t.Helper()
	g, err := NewGitHub(GitHubOptions{Owner: "runpod-workers", Repo: "flash", APIURL: srv.APIURL(), UploadURL: srv.UploadURL(), Token: token, Commit: strings.Repeat("c", 40), AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	g.Backoff = 10 * time.Millisecond
	return g
}

func TestGitHubRelease(t *testing.T) {
	ctx := context.Background()
	srv := testserver.StartGitHub(t, testToken)
	dir := t.TempDir()
	objs := []artifact.Artifact{
		writeObject(t, dir, "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz", []byte("tarball one")),
		writeObject(t, dir, "flash-worker-v1.2.0-py3.12-linux-x86_64.tar.gz", []byte("tarball two")),
		writeObject(t, dir, "manifest.json", []byte(`{"schema_version":1}`)),
	}

	// Faults on the first run: a 5xx burst, a secondary rate limit, and an
	// upload whose response is lost after GitHub stored the asset.
	srv.Set(func(g *testserver.GitHub) { g.Fail5xx, g.SecondaryRateLimit, g.DropUploads = 2, 1, 1 })
	g := newGitHub(t, srv, testToken)
	for _, o := range objs {
		at, err := g.Publish(ctx, o)
		if err != nil {
			t.Fatalf("publishing %s: %v", o.Key(), err)
		}
		if want := srv.URL + "/runpod-workers/flash/releases/download/" + o.Key(); at.URL != want || at.Channel != "github" {
			t.Errorf("location %+v, want %s on github", at, want)
		}
	}
	srv.Set(func(g *testserver.GitHub) {
		if g.Fail5xx+g.SecondaryRateLimit+g.DropUploads != 0 {
			t.Errorf("faults not all met: 5xx %d, rate limit %d, dropped uploads %d", g.Fail5xx, g.SecondaryRateLimit, g.DropUploads)
		}
	})
	draft, assets, ok := srv.Release("v1.2.0")
	if !ok || !draft {
		t.Fatalf("release v1.2.0: found %v, draft %v; want a draft until Finalize", ok, draft)
	}
	if len(assets) != 3 {
		t.Errorf("assets %v, want 3 and no duplicates", keys(assets))
	}
	if n, _ := srv.Counts(); n != 3 {
		t.Errorf("%d uploads stored, want 3 (the lost response must not cause a second upload)", n)
	}
	if err := g.Finalize(ctx, "1.2.0"); err != nil {
		t.Fatal(err)
	}
	if draft, _, _ := srv.Release("v1.2.0"); draft {
		t.Error("Finalize left the release a draft")
	}

	t.Run("re-run uploads nothing", func(t *testing.T) {
		for _, omit := range []bool{false, true} {
			srv.Set(func(g *testserver.GitHub) { g.OmitDigest = omit })
			before, _ := srv.Counts()
			again := newGitHub(t, srv, testToken)
			for _, o := range objs {
				if _, err := again.Publish(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			if after, _ := srv.Counts(); after != before || again.Uploaded != 0 {
				t.Errorf("omit digest %v: re-run uploaded %d assets", omit, after-before)
			}
		}
		srv.Set(func(g *testserver.GitHub) { g.OmitDigest = false })
	})

	t.Run("different bytes", func(t *testing.T) {
		other := writeObject(t, t.TempDir(), "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz", []byte("changed"))
		_, err := newGitHub(t, srv, testToken).Publish(ctx, other)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), objs[0].SHA256) || !strings.Contains(err.Error(), other.SHA256) {
			t.Errorf("error %v; want ErrExists with both digests", err)
		}
		rep := newGitHub(t, srv, testToken)
		rep.Replace = true
		if _, err := rep.Publish(ctx, other); err != nil {
			t.Fatal(err)
		}
		_, assets, _ := srv.Release("v1.2.0")
		if string(assets[other.File]) != "changed" || len(assets) != 3 {
			t.Errorf("--replace: assets %v", keys(assets))
		}
	})

	t.Run("over 2 GiB is refused before any request", func(t *testing.T) {
		huge := artifact.Artifact{File: "huge.tar.gz", Release: manifest.Release{Version: "1.3.0"}, Path: "/nonexistent/huge.tar.gz", Size: 3 << 30}
		err := newGitHub(t, srv, testToken).Preflight([]artifact.Artifact{objs[0], huge})
		if err == nil || !strings.Contains(err.Error(), "huge.tar.gz") || !strings.Contains(err.Error(), "S3 or OCI") {
			t.Errorf("error %v", err)
		}
		if _, _, ok := srv.Release("v1.3.0"); ok {
			t.Error("a release was created for a refused asset")
		}
	})

	t.Run("the token never appears in errors", func(t *testing.T) {
		bad := newGitHub(t, srv, "ghp_wrongTokenXYZ")
		_, err := bad.Publish(ctx, objs[0])
		if err == nil || strings.Contains(err.Error(), "ghp_wrongTokenXYZ") || !strings.Contains(err.Error(), "401") {
			t.Errorf("error %v", err)
		}
		if _, err := NewGitHub(GitHubOptions{Owner: "o", Repo: "r"}); err == nil || !strings.Contains(err.Error(), "GITHUB_TOKEN") {
			t.Errorf("no token: %v", err)
		}
	})
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
