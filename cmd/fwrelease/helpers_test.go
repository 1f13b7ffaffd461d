package main

// The helpers every end-to-end test uses: fwrelease built once, run as a
// user would; the example worker and its config as data; the snapshot of
// the example built once; golden files; the tools and interpreters the
// tests need.

import (
	"crypto/elliptic"

	"bytes"
	"errors"
	"flag"
	"fmt"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runpod-workers/fwrelease/internal/containertest"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

var update = flag.Bool("update", false, "rewrite golden files")

// bin is fwrelease built once for the tests that run it as a user would.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "fwrelease-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "fwrelease")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building fwrelease: %v\n%s", err, out)
		os.Exit(1)
	}
	code := containertest.Main(m) // m.Run, then the containers' storage removed
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs fwrelease in dir with extra environment variables.
func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func exampleConfig(t *testing.T) string {
	return filepath.Join(repoRoot(t), "examples", "flash-worker", "fwrelease.yaml")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// pythons finds the real interpreters of each version (pyenv's on this
// machine). A missing one fails the full run: the test would otherwise
// pass without checking anything.
func python(t *testing.T, version string) string {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	matches, _ := filepath.Glob(filepath.Join(root, "versions", version+".*", "bin", "python"+version))
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	// pyenv's shims run whichever version pyenv selects, not the one named.
	if p, err := exec.LookPath("python" + version); err == nil && !strings.Contains(p, "/shims/") {
		return p
	}
	{
		t.Fatalf("no Python %s interpreter under %s/versions or on PATH; install it (see .ci/run)", version, root)
	}
	return ""
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs pip and real interpreters; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the worker runs on linux only")
	}
}

const fixedCommit = "0123456789abcdef0123456789abcdef01234567"

// copyExample copies the example worker, giving every file a random mtime
// and the given permission bits, as another checkout on another machine
// would.
func copyExample(t *testing.T, dst string, fileMode, dirMode os.FileMode) {
	t.Helper()
	src := filepath.Join(repoRoot(t), "examples", "flash-worker")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, dirMode)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		mode := fileMode
		if info.Mode()&0o100 != 0 {
			mode |= 0o100
		}
		if err := os.WriteFile(out, data, mode); err != nil {
			return err
		}
		when := time.Unix(rand.Int63n(1<<32), 0)
		return os.Chtimes(out, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
}

type snapshot struct {
	dist     string
	manifest *manifest.Manifest
}

// releaseSnapshot runs `release --snapshot` under a umask and time zone.
func releaseSnapshot(t *testing.T, cfg, dist, umask, tz string) snapshot {
	t.Helper()
	s, err := buildSnapshot(cfg, dist, umask, tz)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func buildSnapshot(cfg, dist, umask, tz string) (snapshot, error) {
	cmd := exec.Command("sh", "-c", "umask "+umask+" && exec \"$0\" \"$@\"", bin, "--config", cfg, "--dist", dist, "release", "--snapshot")
	cmd.Env = append(os.Environ(), "TZ="+tz, "GITHUB_SHA="+fixedCommit, "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return snapshot{}, fmt.Errorf("release --snapshot: %v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != filepath.Join(dist, "manifest.json") {
		return snapshot{}, fmt.Errorf("release --snapshot: stdout = %q, want the manifest's path", got)
	}
	data, err := os.ReadFile(filepath.Join(dist, "manifest.json"))
	if err != nil {
		return snapshot{}, err
	}
	m, err := manifest.Decode(data)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{dist: dist, manifest: m}, nil
}

var (
	sharedOnce sync.Once
	shared     snapshot
	sharedErr  error
)

// sharedSnapshot is `release --snapshot` of the example (umask 022, UTC),
// built once per test binary beside it. Tests read it and leave it as it
// is; the few that tamper with it to see verify fail do not run in
// parallel and put back what they changed.
func sharedSnapshot(t *testing.T) snapshot {
	t.Helper()
	skipShort(t)
	sharedOnce.Do(func() {
		shared, sharedErr = buildSnapshot(exampleConfig(t), filepath.Join(filepath.Dir(bin), "snapshot", "dist"), "022", "UTC")
	})
	if sharedErr != nil {
		t.Fatalf("the shared snapshot: %v", sharedErr)
	}
	return shared
}

// tampered changes the file at p with change, and puts it back when the
// test ends (in place: the OCI layout's blobs are links to dist/'s files).
func tampered(t *testing.T, p string, change func([]byte) []byte) {
	t.Helper()
	data := readFile(t, p)
	t.Cleanup(func() {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Errorf("putting back %s: %v", p, err)
		}
	})
	if err := os.WriteFile(p, change(slices.Clone(data)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pythonDir makes a directory whose python3 and python3.X are the given
// version.
func pythonDir(t *testing.T, base, version string) string {
	t.Helper()
	dir := filepath.Join(base, "python"+version)
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"python3", "python" + version} {
		if err := os.Symlink(python(t, version), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func tool(t *testing.T, name, install string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testserver.Binary(t, name, install), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cosignBin finds the independent verifier. The full run fails without it:
// these tests would otherwise prove nothing.
func cosignBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, "go", "bin", "cosign")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("cosign not found on PATH or in ~/go/bin: go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 (see .ci/run)")
	}
	return p
}

// cosignVerify runs `cosign verify-blob` offline on a v0.3 bundle. With a
// key and no transparency log, an empty trusted root is all it needs.
func cosignVerify(t *testing.T, pub, file, bundle string) (string, error) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "trusted_root.json")
	os.WriteFile(root, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
	out, err := exec.Command(cosignBin(t), "verify-blob", "--key", pub, "--bundle", bundle,
		"--new-bundle-format", "--insecure-ignore-tlog", "--trusted-root", root, file).CombinedOutput()
	return string(out), err
}

// copyDir copies a fixture directory tree (files keep their exec bit).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-R", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -R %s %s: %v\n%s", src, dst, err, out)
	}
}

// workerConfig is a fwrelease.yaml as data: the example's, decoded, with
// a test's changes set on it.
type workerConfig map[string]any

// exampleWorker copies the example worker into dir (as copyExample) and
// returns its config as data, to change and write.
func exampleWorker(t *testing.T, dir string) workerConfig {
	t.Helper()
	copyExample(t, dir, 0o644, 0o755)
	return readConfig(t, filepath.Join(dir, "fwrelease.yaml"))
}

// readConfig reads a fwrelease.yaml as data.
func readConfig(t *testing.T, path string) workerConfig {
	t.Helper()
	c := workerConfig{}
	if err := yaml.Unmarshal(readFile(t, path), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// set sets a dotted key ("publish.s3", "matrix.python") to v, making the
// maps on the way; nil removes it.
func (c workerConfig) set(key string, v any) workerConfig {
	m := map[string]any(c)
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	if v == nil {
		delete(m, parts[len(parts)-1])
	} else {
		m[parts[len(parts)-1]] = v
	}
	return c
}

// setAll sets every dotted key of settings.
func (c workerConfig) setAll(settings map[string]any) workerConfig {
	for k, v := range settings {
		c.set(k, v)
	}
	return c
}

// write writes the config to path and returns path.
func (c workerConfig) write(t *testing.T, path string) string {
	t.Helper()
	data, err := yaml.Marshal(map[string]any(c))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeKeyPair writes a new unencrypted ECDSA P-256 signing key and its
// public key, in PEM.
func writeKeyPair(t *testing.T, privPath, pubPath string) {
	t.Helper()
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.SkipPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
}
