package containertest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// recipe names the way the images are built: an image cached by another
// recipe is built again.
const recipe = "1"

// BaseImages are the names BaseImage accepts.
var BaseImages = []string{"slim-3.10", "slim-3.11", "slim-3.12", "slim-3.13", "gpu", "busybox"}

// GPUPython is the python3 of the "gpu" image, and TorchPython the only
// interpreter of it that has the stand-in torch.
const (
	GPUPython   = "3.10"
	TorchPython = "3.12"
)

// created is every cached image's creation time and every file's mtime.
var created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

const slimPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CacheDir is where the base images are cached.
func CacheDir() (string, error) {
	if d := os.Getenv("FWRELEASE_TEST_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "fwrelease-test"), nil
}

// cachedImage returns the cached image base, building it first when the
// cache has none of this recipe. Building holds the cache's lock.
func cachedImage(base string) (v1.Image, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	removeLeftovers(dir)
	p, err := openLayout(filepath.Join(dir, "oci"))
	if err != nil {
		return nil, err
	}
	key := base + "@" + recipe
	if img, err := find(p, key); err == nil || !errors.Is(err, errNotCached) {
		return img, err
	}
	img, err := buildImage(dir, base)
	if err != nil {
		return nil, fmt.Errorf("building %s into %s: %w", base, dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refName: key})); err != nil {
		return nil, fmt.Errorf("caching %s in %s: %w", base, dir, err)
	}
	return find(p, key)
}

const refName = "org.opencontainers.image.ref.name"

// removeLeftovers deletes what a build killed midway left (a test binary
// that timed out): partial layers and debootstrap trees. Only the lock's
// holder builds, so none of them is in use.
func removeLeftovers(dir string) {
	partial, _ := filepath.Glob(filepath.Join(dir, "layers", ".layer-*"))
	trees, _ := filepath.Glob(filepath.Join(dir, ".rootfs-*"))
	for _, p := range append(partial, trees...) {
		for _, m := range mountsUnder(p) {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
		os.RemoveAll(p)
	}
}

var errNotCached = errors.New("not cached")

func openLayout(dir string) (layout.Path, error) {
	if p, err := layout.FromPath(dir); err == nil {
		return p, nil
	}
	return layout.Write(dir, empty.Index)
}

func find(p layout.Path, key string) (v1.Image, error) {
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Annotations[refName] == key {
			return idx.Image(d.Digest)
		}
	}
	return nil, errNotCached
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// buildImage assembles base from cached layers, building those missing.
func buildImage(dir, base string) (v1.Image, error) {
	var names []string
	env := []string{"PATH=" + slimPath, "LANG=C.UTF-8"}
	cmd := []string{"python3"}
	switch base {
	case "slim-3.10", "slim-3.11", "slim-3.12", "slim-3.13":
		v := base[len("slim-"):]
		names = []string{"bookworm-minbase", "python-" + v + "-default"}
		env = append(env, "PYTHON_VERSION="+v)
	case "gpu":
		names = []string{"bookworm-minbase", "python-" + GPUPython + "-default"}
		for _, v := range []string{"3.11", "3.12", "3.13"} {
			names = append(names, "python-"+v)
		}
		names = append(names, "torch-"+TorchPython)
	case "busybox":
		names = []string{"busybox"}
		env, cmd = []string{"PATH=/bin"}, []string{"sh"}
	default:
		return nil, fmt.Errorf("unknown base image %q (known: %v)", base, BaseImages)
	}
	var layers []v1.Layer
	for _, n := range names {
		l, err := cachedLayer(dir, n)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", n, err)
		}
		layers = append(layers, l)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux", Created: v1.Time{Time: created},
		Config: v1.Config{Env: env, Cmd: cmd},
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, layers...)
}

// cachedLayer returns the gzipped layer tarball dir/layers/NAME.tar.gz,
// writing it first when missing.
func cachedLayer(dir, name string) (v1.Layer, error) {
	path := filepath.Join(dir, "layers", name+".tar.gz")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := buildLayer(dir, name, path); err != nil {
			return nil, err
		}
	}
	return tarball.LayerFromFile(path, tarball.WithMediaType(types.OCILayer))
}

func buildLayer(dir, name, path string) error {
	switch {
	case name == "bookworm-minbase":
		return rootfsLayer(dir, path)
	case name == "busybox":
		return busyboxLayer(path)
	case name == "torch-"+TorchPython:
		return torchLayer(path, TorchPython)
	}
	v, ok := strings.CutPrefix(name, "python-")
	if !ok {
		return fmt.Errorf("no recipe for layer %s", name)
	}
	v, def := strings.CutSuffix(v, "-default")
	return pythonLayer(path, v, def)
}
