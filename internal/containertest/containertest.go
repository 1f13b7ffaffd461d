// Package containertest runs real containers in tests: Debian's podman with
// runc, a private storage per test binary, --network=host so a container
// reaches servers on 127.0.0.1, and base images that look like the ones the
// worker meets in production, built offline once per machine, cached, served
// by a loopback registry and pulled from it.
//
// A test binary that uses it wraps its tests, so the private storage is
// removed when they end:
//
//	func TestMain(m *testing.M) { os.Exit(containertest.Main(m)) }
//
// Then, in a test:
//
//	rt := containertest.New(t)           // skips under -short; fails without podman
//	img := rt.BaseImage(t, "slim-3.11") // a python:3.11-slim look-alike, pulled
//	res := rt.Run(t, containertest.Options{Image: img, Cmd: []string{"python3", "-V"}})
//	// res.Stdout, res.Stderr, res.Code
//
//	c := rt.Create(t, opts) // a named container, removed when the test ends
//	c.Run(t)                // starts it and waits; again = a restarted container
//	c.Start(t)              // or in the background...
//	c.WaitHTTP(t, "http://127.0.0.1:8080/ping", time.Minute) // ...until it answers
//	c.Exec(t, "sh", "-c", "…") // a command inside the running container
//
// Base images (see BaseImages): "slim-3.10" … "slim-3.13" (Debian bookworm
// minbase from debootstrap with the pyenv interpreter of that version in
// /usr/local, no curl, no wget), "gpu" (3.10–3.13 side by side, python3 is
// 3.10, a stand-in torch 2.4.0 installed for 3.12 only) and "busybox".
// Options mounts host directories (Volumes) and images (Mounts, e.g.
// "type=image,source=REF,destination=/opt/flash-worker"); rt.Registry is the
// loopback registry to push images to, rt.Pull brings one into the storage
// and rt.RemoveImages takes images out of it.
//
// The images are cached under $FWRELEASE_TEST_CACHE, else the user's cache
// directory (~/.cache/fwrelease-test), as an OCI layout; a file lock keeps
// test binaries running at once from building them twice.
package containertest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options describe one container.
type Options struct {
	Image   string            // a reference BaseImage or Pull returned
	Cmd     []string          // the command, run instead of the image's entrypoint; none: the entrypoint
	Env     map[string]string // added to the image's environment
	Volumes []string          // -v values: "HOST:CONTAINER[:ro]"
	Mounts  []string          // --mount values: "type=image,source=REF,destination=DIR"
	Workdir string
}

// Result is what a container printed and how it exited.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Runtime is podman with this test binary's private storage.
type Runtime struct {
	state *state
}

// New returns the test binary's runtime. Under -short it skips the test;
// without podman, runc or debootstrap it fails it, naming the install
// command.
func New(t testing.TB) *Runtime {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real containers (podman); skipped with -short")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"podman", "podman"}, {"runc", "runc"}, {"debootstrap", "debootstrap"}, {"patchelf", "patchelf"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			t.Fatalf("%s not found: install it with apt-get install -y %s (.ci/run does)", tool.bin, tool.pkg)
		}
	}
	st, err := shared()
	if err != nil {
		t.Fatalf("starting the container runtime: %v", err)
	}
	return &Runtime{state: st}
}

// Registry is the loopback registry's host:port: push images to
// Registry()+"/name:tag", then Pull them.
func (rt *Runtime) Registry() string { return rt.state.registry }

// podman runs podman with the private storage and the options this
// machine needs.
func (rt *Runtime) podman(args ...string) *exec.Cmd {
	s := rt.state
	global := []string{
		"--root", s.root, "--runroot", s.runroot, "--tmpdir", s.tmpdir,
		"--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--storage-driver", "overlay",
	}
	cmd := exec.Command("podman", append(global, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+s.registriesConf)
	return cmd
}

// output runs podman and fails the test with its output when it fails.
func (rt *Runtime) output(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := rt.podman(args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// Pull brings ref (pushed to Registry) into the storage and returns it.
func (rt *Runtime) Pull(t testing.TB, ref string) string {
	t.Helper()
	rt.output(t, "pull", "--quiet", "--tls-verify=false", ref)
	return ref
}

// RemoveImages removes refs (those in the storage) and their containers;
// without refs every image: a host that has pulled nothing. Images
// BaseImage returned must then be pulled again (Pull) before they are used.
func (rt *Runtime) RemoveImages(t testing.TB, refs ...string) {
	t.Helper()
	if len(refs) == 0 {
		rt.output(t, "rmi", "--all", "--force")
		return
	}
	rt.output(t, append([]string{"rmi", "--force", "--ignore"}, refs...)...)
}

// Run runs a container to its end and removes it.
func (rt *Runtime) Run(t testing.TB, o Options) Result {
	t.Helper()
	c := rt.Create(t, o)
	defer c.remove()
	return c.Run(t)
}

// Container is a created container; Run and Start may be called again to
// restart it.
type Container struct {
	rt   *Runtime
	Name string
	once sync.Once
}

var seq struct {
	sync.Mutex
	n int
}

// Create creates a container from o without starting it; it is removed
// when the test ends.
func (rt *Runtime) Create(t testing.TB, o Options) *Container {
	t.Helper()
	seq.Lock()
	seq.n++
	name := fmt.Sprintf("fwtest-%d-%d", os.Getpid(), seq.n)
	seq.Unlock()
	args := []string{"create", "--name", name, "--pull", "never", "--network", "host",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"}
	if len(o.Cmd) > 0 {
		args = append(args, "--entrypoint", "")
	}
	for k, v := range o.Env {
		args = append(args, "--env", k+"="+v)
	}
	for _, v := range o.Volumes {
		args = append(args, "--volume", v)
	}
	for _, m := range o.Mounts {
		args = append(args, "--mount", m)
	}
	if o.Workdir != "" {
		args = append(args, "--workdir", o.Workdir)
	}
	args = append(append(args, o.Image), o.Cmd...)
	rt.output(t, args...)
	c := &Container{rt: rt, Name: name}
	t.Cleanup(c.remove)
	return c
}

func (c *Container) remove() {
	c.once.Do(func() { c.rt.podman("rm", "--force", "--time", "0", c.Name).Run() })
}

// Run starts the container, waits for it to end and returns what it
// printed during this run.
func (c *Container) Run(t testing.TB) Result {
	t.Helper()
	return c.rt.result(t, "start", "--attach", c.Name)
}

// Exec runs cmd in the running container (podman exec) and returns what
// it printed and how it exited.
func (c *Container) Exec(t testing.TB, cmd ...string) Result {
	t.Helper()
	return c.rt.result(t, append([]string{"exec", c.Name}, cmd...)...)
}

// result runs podman with a container's output as its own and returns it
// with the exit code; only a podman that cannot run fails the test.
func (rt *Runtime) result(t testing.TB, args ...string) Result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := rt.podman(args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// Start starts the container in the background.
func (c *Container) Start(t testing.TB) {
	t.Helper()
	c.rt.output(t, "start", c.Name)
}

// Logs returns what the container printed so far (stdout and stderr).
func (c *Container) Logs(t testing.TB) string {
	t.Helper()
	out, _ := c.rt.podman("logs", c.Name).CombinedOutput()
	return string(out)
}

// WaitHTTP waits until url answers 200 and returns the body; it fails the
// test with the container's logs when the container exits or time runs out.
func (c *Container) WaitHTTP(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return body.String()
			}
		}
		if !c.running() {
			t.Fatalf("container %s exited before %s answered; its output:\n%s", c.Name, url, c.Logs(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s; the container's output:\n%s", url, timeout, c.Logs(t))
	return ""
}

func (c *Container) running() bool {
	out, err := c.rt.podman("inspect", "--format", "{{.State.Running}}", c.Name).Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}
