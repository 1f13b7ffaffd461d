package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// realWorker copies testdata/real-worker into dir and serves the fake uv
// from 127.0.0.1, pointing its extra file at that URL instead of the path.
func realWorker(t *testing.T, dir string) string {
	t.Helper()
	copyDir(t, filepath.Join("testdata", "real-worker"), filepath.Join(dir, "real-worker"))
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join("testdata", "uv-dist"))))
	t.Cleanup(srv.Close)
	cfg := filepath.Join(dir, "real-worker", "fwrelease.yaml")
	data := readFile(t, cfg)
	served := strings.Replace(string(data), "path: ../uv-dist/", "url: "+srv.URL+"/", 1)
	if served == string(data) {
		t.Fatal("the fixture's config no longer has the uv path this test replaces")
	}
	if err := os.WriteFile(cfg, []byte(served), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// lockedFor is what uv.lock pins for a Python version, as the fixture's
// self-test prints it.
func lockedFor(py string) string {
	pkgs := []string{"fwdemo-greet==0.1.0", "fwdemo-speedups==0.1.0", "fwdemo-text==0.1.0"}
	if py == "3.10" {
		pkgs = append(pkgs, "fwfix-compat==1.0.0") // python_full_version < '3.11'
	}
	pkgs = append(pkgs, "fwfix-fast==0.3.0", "fwfix-server==0.2.0") // fwfix-server[standard]
	return strings.Join(pkgs, "\n") + "\n"
}

// The real worker's shape, end to end: version from pyproject.toml,
// dependencies from uv.lock (with a marker, an extra, a dev group left out
// and a C extension per ABI), uv fetched by digest from 127.0.0.1, an
// optional src/tests. Every target boots on its Python and reports exactly
// the locked versions; the newer fwfix-compat in the wheelhouse is not
// taken.
func TestRealWorkerSnapshot(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	cfg := realWorker(t, dir)
	dist := filepath.Join(dir, "dist")
	env := []string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "GITHUB_SHA=" + fixedCommit}
	r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release", "--snapshot")
	if r.code != 0 {
		t.Fatalf("release --snapshot: exit %d\n%s", r.code, r.stderr)
	}
	for _, py := range []string{"3.10", "3.11", "3.12", "3.13"} {
		t.Run(py, func(t *testing.T) {
			fw := filepath.Join(dir, "opt", py)
			os.MkdirAll(fw, 0o755)
			tarball := filepath.Join(dist, "flash-worker-v1.4.1-py"+py+"-linux-x86_64.tar.gz")
			if out, err := exec.Command("tar", "-xzf", tarball, "-C", fw, "--strip-components=1").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			boot := exec.Command(filepath.Join(fw, "bootstrap.sh"), "--test")
			boot.Env = append(os.Environ(), "PATH="+pythonDir(t, dir, py)+":"+os.Getenv("PATH"))
			out, err := boot.CombinedOutput()
			want := "uv 0.7.19 (fwrelease test fake, x86_64)\n" +
				fmt.Sprintf("worker-fixture 1.4.1 ok python %s\n", py) + lockedFor(py)
			if err != nil || string(out) != want {
				t.Errorf("bootstrap.sh --test: %v\n got: %q\nwant: %q", err, out, want)
			}
			if _, err := os.Stat(filepath.Join(fw, "src", "tests", "job.json")); err != nil {
				t.Errorf("the optional src/tests is present in the source but not in the tarball: %v", err)
			}
		})
	}
}

// A wheel whose bytes are not the ones uv.lock pins fails the build, naming
// the package; so does a fake uv whose digest is not the config's.
func TestRealWorkerTampered(t *testing.T) {
	skipShort(t)
	t.Parallel()
	tests := []struct {
		name   string
		tamper func(t *testing.T, worker string)
		want   *regexp.Regexp
	}{
		{"wheel", func(t *testing.T, worker string) {
			// Another wheel, larger: read only up to the locked size.
			whl := filepath.Join(worker, "wheelhouse", "fwfix_fast-0.3.0-py3-none-any.whl")
			other := readFile(t, filepath.Join(worker, "wheelhouse", "fwfix_compat-1.1.0-py3-none-any.whl"))
			os.WriteFile(whl, other, 0o644)
		}, regexp.MustCompile(`^fwrelease: building py3\.1[0-3]-cpu-linux-x86_64: installing dependencies for py3\.1[0-3]-cpu-linux-x86_64 from uv\.lock: package fwfix-fast 0\.3\.0: \S+/wheelhouse/fwfix_fast-0\.3\.0-py3-none-any\.whl sends more than the size uv\.lock records for it \(1157 bytes\)`)},
		{"uv", func(t *testing.T, worker string) {
			cfg := filepath.Join(worker, "fwrelease.yaml")
			os.WriteFile(cfg, []byte(strings.Replace(string(readFile(t, cfg)), "x86_64: 840f", "x86_64: 940f", 1)), 0o644)
		}, regexp.MustCompile(`^fwrelease: extra_files\[0\]: http://127\.0\.0\.1:[0-9]+/uv-x86_64-unknown-linux-musl\.tar\.gz has sha256 840f\S+, not the pinned 940f`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := realWorker(t, dir)
			tt.tamper(t, filepath.Dir(cfg))
			env := []string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}
			r := run(t, dir, env, "--config", cfg, "--dist", filepath.Join(dir, "dist"), "--allow-insecure", "build")
			first, _, _ := strings.Cut(r.stderr[strings.Index(r.stderr, "fwrelease: "):], "\n")
			if r.code != 1 || !tt.want.MatchString(first) {
				t.Errorf("exit %d, error line\n  %s\nwant it to match\n  %s\n%s", r.code, first, tt.want, r.stderr)
			}
			if matches, _ := filepath.Glob(filepath.Join(dir, "dist", "*.tar.gz")); len(matches) > 0 {
				t.Errorf("tarballs left behind: %v", matches)
			}
		})
	}
}

// A uv.lock that pyproject.toml has moved past (another version, a
// dependency locked outside its new specifier) is refused before anything
// is built, as `uv export --locked` would, naming both files, the package,
// the locked version and the specifier.
func TestRealWorkerStaleLock(t *testing.T) {
	skipShort(t)
	tests := []struct{ name, from, to, want string }{
		{"version", `version = "1.4.1"`, `version = "1.4.2"`,
			"the project worker-fixture is locked at version 1.4.1, pyproject.toml says 1.4.2"},
		{"specifier", `"fwfix-compat>=1.0;`, `"fwfix-compat>=1.1;`,
			`package fwfix-compat is locked at 1.0.0, outside ">=1.1" that pyproject.toml's [project] dependencies asks for`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := realWorker(t, dir)
			py := filepath.Join(filepath.Dir(cfg), "pyproject.toml")
			text := string(readFile(t, py))
			if !strings.Contains(text, tt.from) {
				t.Fatalf("%s has no %q", py, tt.from)
			}
			os.WriteFile(py, []byte(strings.Replace(text, tt.from, tt.to, 1)), 0o644)
			env := []string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}
			r := run(t, dir, env, "--config", cfg, "--dist", filepath.Join(dir, "dist"), "--allow-insecure", "build")
			lock := filepath.Join(filepath.Dir(cfg), "uv.lock")
			want := "fwrelease: deps.lock: " + lock + " against " + py + ": " + tt.want + "; the lock is stale: run `uv lock` and commit uv.lock"
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
			}
			if matches, _ := filepath.Glob(filepath.Join(dir, "dist", "*.tar.gz")); len(matches) > 0 {
				t.Errorf("tarballs built from a stale lock: %v", matches)
			}
		})
	}
}

// A real (non-snapshot) release refuses uncommitted changes and a tag that
// is not this commit's or this version's, before building anything; a
// snapshot does not care.
func TestReleaseRefusesDirtyTreeAndWrongTag(t *testing.T) {
	skipShort(t)
	t.Parallel()
	git := func(t *testing.T, repo string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@e"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, repo string)
		want  string
	}{
		{"dirty", func(t *testing.T, repo string) {
			os.WriteFile(filepath.Join(repo, "real-worker", "src", "handler.py"), []byte("# changed\n"), 0o644)
		}, "refusing a release: the work tree $REPO/real-worker has changes no commit holds (M real-worker/src/handler.py); commit or stash them (--allow-dirty releases anyway)"},
		{"tag for another version", func(t *testing.T, repo string) { git(t, repo, "tag", "v1.5.0") },
			"but the version is 1.4.1 (--allow-dirty releases anyway)"},
		{"tag on another commit", func(t *testing.T, repo string) {
			git(t, repo, "tag", "v1.4.1")
			git(t, repo, "commit", "-q", "--allow-empty", "-m", "after the tag")
		}, "refusing a release: tag v1.4.1 points at "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			copyDir(t, filepath.Join("testdata", "real-worker"), filepath.Join(repo, "real-worker"))
			git(t, repo, "init", "-q")
			git(t, repo, "add", ".")
			git(t, repo, "commit", "-q", "-m", "worker")
			tt.setup(t, repo)
			cfg := filepath.Join(repo, "real-worker", "fwrelease.yaml")
			dist := filepath.Join(repo, "real-worker", "dist") // inside the tree, and not a change
			env := []string{"GITHUB_SHA=", "GITHUB_REF_TYPE=", "XDG_CACHE_HOME=" + filepath.Join(repo, "cache")}
			r := run(t, repo, env, "--config", cfg, "--dist", dist, "release")
			stderr := strings.ReplaceAll(r.stderr, repo, "$REPO")
			if r.code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("release: exit %d, want 1 and %q in\n%s", r.code, tt.want, stderr)
			}
			if m, _ := filepath.Glob(filepath.Join(dist, "*.tar.gz")); len(m) > 0 {
				t.Errorf("refused, yet built %v", m)
			}
			if tt.name != "dirty" {
				return // one target of one case is enough to show the override
			}
			r = run(t, repo, env, "--config", cfg, "--dist", dist, "release", "--allow-dirty", "--target", "py3.11-cpu-linux-x86_64")
			if strings.Contains(r.stderr, "fwrelease: refusing a release") || !strings.Contains(r.stderr, "releasing anyway (--allow-dirty)") {
				t.Errorf("--allow-dirty: exit %d\n%s", r.code, r.stderr)
			}
		})
	}
}
