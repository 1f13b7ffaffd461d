package containertest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// state is the test binary's: one storage, one registry, images pulled
// once.
type state struct {
	dir, root, runroot, tmpdir, registriesConf string
	registry                                   string
	server                                     *httptest.Server

	mu     sync.Mutex
	images map[string]*imageOnce
}

type imageOnce struct {
	once sync.Once
	ref  string
	err  error
}

var global struct {
	sync.Mutex
	main  bool
	state *state
}

// Main runs the tests, then removes the private storage (unmounting what
// podman left mounted in it). Use it from TestMain.
func Main(m *testing.M) int {
	global.Lock()
	global.main = true
	global.Unlock()
	code := m.Run()
	global.Lock()
	defer global.Unlock()
	if s := global.state; s != nil {
		if err := s.close(); err != nil {
			fmt.Fprintf(os.Stderr, "containertest: removing %s: %v\n", s.dir, err)
		}
	}
	return code
}

func shared() (*state, error) {
	global.Lock()
	defer global.Unlock()
	if !global.main {
		return nil, errors.New("the test binary's TestMain must call containertest.Main(m), which removes the containers' storage at the end")
	}
	if global.state != nil {
		return global.state, nil
	}
	removeStale(os.TempDir())
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", stalePrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	s := newState(dir)
	// No search registries: a short name never reaches the internet.
	if err := os.WriteFile(s.registriesConf, []byte("unqualified-search-registries = []\n"), 0o644); err != nil {
		return nil, err
	}
	blobs := filepath.Join(dir, "registry")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	s.server = httptest.NewServer(registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs)),
		registry.Logger(log.New(io.Discard, "", 0))))
	s.registry = strings.TrimPrefix(s.server.URL, "http://")
	global.state = s
	return s, nil
}

func newState(dir string) *state {
	return &state{dir: dir, root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "run"),
		tmpdir: filepath.Join(dir, "tmp"), registriesConf: filepath.Join(dir, "registries.conf"),
		images: map[string]*imageOnce{}}
}

// stalePrefix starts each test binary's storage directory, followed by
// its pid; short, since podman refuses a runroot path over 50 bytes.
const stalePrefix = "fwpod-"

// removeStale removes the storage of test binaries that were killed before
// Main could (their containers, mounts and files): a directory whose pid
// no process has any more. A live binary's, or a name without a pid, is
// left alone.
func removeStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, stalePrefix+"*"))
	for _, d := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), stalePrefix), "-")
		if n, err := strconv.Atoi(pid); err == nil && n > 0 && syscall.Kill(n, 0) == syscall.ESRCH {
			if err := newState(d).close(); err != nil {
				fmt.Fprintf(os.Stderr, "containertest: removing a killed test binary's %s: %v\n", d, err)
			}
		}
	}
}

// close removes every container, unmounts what is left under the storage
// and deletes it.
func (s *state) close() error {
	rt := &Runtime{state: s}
	rt.podman("rm", "--all", "--force", "--time", "0").Run()
	if s.server != nil {
		s.server.Close()
	}
	for _, m := range mountsUnder(s.dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	return os.RemoveAll(s.dir)
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	return mounts
}

// BaseImage returns one of BaseImages, built into the machine's cache if
// it is not there yet, pushed to the loopback registry and pulled.
func (rt *Runtime) BaseImage(t testing.TB, name string) string {
	t.Helper()
	s := rt.state
	s.mu.Lock()
	once, ok := s.images[name]
	if !ok {
		once = &imageOnce{}
		s.images[name] = once
	}
	s.mu.Unlock()
	once.once.Do(func() {
		once.ref, once.err = rt.pushBase(name)
		if once.err == nil {
			out, err := rt.podman("pull", "--quiet", "--tls-verify=false", once.ref).CombinedOutput()
			if err != nil {
				once.err = fmt.Errorf("podman pull %s: %v\n%s", once.ref, err, out)
			}
		}
	})
	if once.err != nil {
		t.Fatalf("base image %s: %v", name, once.err)
	}
	return once.ref
}

func (rt *Runtime) pushBase(base string) (string, error) {
	img, err := cachedImage(base)
	if err != nil {
		return "", err
	}
	ref := rt.state.registry + "/fwrelease-test/" + base + ":latest"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(tag, img); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return ref, nil
}
