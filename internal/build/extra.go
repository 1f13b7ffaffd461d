package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mholt/archives"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// Extra files (the config's extra_files) come from outside the repository,
// so they are trusted only by digest: each is fetched once per build into a
// cache keyed by its sha256, checked, and then copied (or one member
// extracted) into every target that needs it.

// fetchExtras brings every extra file the targets need into the cache and
// returns where each digest's bytes are.
func (b *Builder) fetchExtras(ctx context.Context, targets []target.Target) (map[string]string, error) {
	cached := map[string]string{}
	if len(b.Config.ExtraFiles) == 0 {
		return cached, nil
	}
	dir, err := cacheDir(b.Dist)
	if err != nil {
		return nil, err
	}
	for i, e := range b.Config.ExtraFiles {
		for _, t := range targets {
			src, _, _ := e.Resolve(t.Arch)
			want := e.SHA256.For(t.Arch)
			if _, done := cached[want]; done {
				continue
			}
			limit, limitName := int64(e.MaxSize), fmt.Sprintf("extra_files[%d].max_size", i)
			if limit <= 0 {
				limit, limitName = defaultExtraMaxSize, fmt.Sprintf("the default extra_files[%d].max_size", i)
			}
			p, err := b.fetchPinned(ctx, dir, src, e.URL != "", want, limit, limitName)
			if err != nil {
				return nil, fmt.Errorf("extra_files[%d]: %w", i, err)
			}
			cached[want] = p
		}
	}
	return cached, nil
}

// cacheDir holds downloads by sha256 (extra files, locked wheels):
// $XDG_CACHE_HOME/fwrelease/sha256 or the platform's equivalent, else a
// directory under dist/.
func cacheDir(dist string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(dist, ".cache")
	}
	dir := filepath.Join(base, "fwrelease", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the download cache %s: %w", dir, err)
	}
	return dir, nil
}

// defaultExtraMaxSize bounds an extra file whose entry sets no max_size:
// the static binaries and archives workers ship are tens of MiB.
var defaultExtraMaxSize int64 = 1 << 30

// Downloads give up when the server accepts no connection within
// dialTimeout, or sends no byte for idleTimeout (headers included): a
// stalled mirror fails the build instead of hanging it. Tests shorten them.
var (
	dialTimeout = 30 * time.Second
	idleTimeout = 60 * time.Second
)

// fetchPinned returns the cache path of src's bytes, fetching them unless
// the cache already holds bytes with that digest. It reads at most limit
// bytes (limitName says where that bound comes from): an endless or
// oversized source stops at limit+1, before the disk fills.
func (b *Builder) fetchPinned(ctx context.Context, cacheDir, src string, remote bool, want string, limit int64, limitName string) (string, error) {
	dst := filepath.Join(cacheDir, want)
	if got, err := archive.FileSHA256(dst); err == nil && got == want {
		return dst, nil
	}
	var (
		r   io.ReadCloser
		err error
	)
	if remote {
		r, err = b.download(ctx, src)
	} else {
		r, err = os.Open(src)
	}
	if err != nil {
		return "", err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(cacheDir, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", src, err)
	}
	if n > limit {
		return "", fmt.Errorf("%s sends more than %s (%d bytes); stopped reading there", src, limitName, limit)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%s has sha256 %s, not the pinned %s: the file changed, or the pin is wrong", src, got, want)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return dst, nil
}

var errStalled = errors.New("the server sent nothing")

// download GETs url and returns its body. The connection must open within
// dialTimeout, and every idleTimeout at least one byte must arrive.
func (b *Builder) download(ctx context.Context, url string) (io.ReadCloser, error) {
	if err := insecure.Check(url, b.AllowInsecure); err != nil {
		return nil, err
	}
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: dialTimeout}).DialContext,
			TLSHandshakeTimeout: dialTimeout,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return insecure.Check(req.URL.String(), b.AllowInsecure)
		},
	}
	ctx, cancel := context.WithCancelCause(ctx)
	idle := time.AfterFunc(idleTimeout, func() { cancel(fmt.Errorf("%w for %s", errStalled, idleTimeout)) })
	fail := func(err error) (io.ReadCloser, error) {
		idle.Stop()
		cancel(nil)
		if c := context.Cause(ctx); errors.Is(c, errStalled) {
			err = c
		}
		return nil, fmt.Errorf("downloading %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fail(errors.New(resp.Status))
	}
	return &idleBody{body: resp.Body, ctx: ctx, cancel: cancel, idle: idle}, nil
}

// idleBody re-arms the idle timer on every byte that arrives.
type idleBody struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	idle   *time.Timer
}

func (r *idleBody) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 {
		r.idle.Reset(idleTimeout)
	}
	if err != nil && err != io.EOF {
		if c := context.Cause(r.ctx); errors.Is(c, errStalled) {
			err = c
		}
	}
	return n, err
}

func (r *idleBody) Close() error {
	r.idle.Stop()
	r.cancel(nil)
	return r.body.Close()
}

// addExtras puts each extra file, already fetched and checked, into root.
func (b *Builder) addExtras(ctx context.Context, t target.Target, root string, cached map[string]string) error {
	// The parent is made through an os.Root: a symlink staged from files
	// may lead outside root, and nothing is written through it (the
	// O_EXCL create does not follow a last-component link).
	to, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer to.Close()
	for i, e := range b.Config.ExtraFiles {
		src, member, dst := e.Resolve(t.Arch)
		from := cached[e.SHA256.For(t.Arch)]
		out := filepath.Join(root, filepath.FromSlash(dst))
		if err := mkParent(to, filepath.FromSlash(dst), nil); err != nil {
			return fmt.Errorf("extra_files[%d] %s: %w", i, src, err)
		}
		mode := os.FileMode(0o644)
		if e.Mode != "" {
			m, _ := strconv.ParseUint(e.Mode, 8, 32) // validated with the config
			mode = os.FileMode(m)
		}
		var err error
		if member == "" {
			err = copyRegular(from, out, mode)
		} else {
			err = extractMember(ctx, from, member, out, mode)
		}
		if err != nil {
			return fmt.Errorf("extra_files[%d] %s: %w", i, src, err)
		}
	}
	return nil
}

func copyRegular(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFileFrom(in, dst, mode)
}

func writeFileFrom(r io.Reader, dst string, mode os.FileMode) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s is already in the tarball (from files or another extra file)", filepath.Base(dst))
		}
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // the umask must not decide modes
}

// extractMember writes the one regular file of the archive whose path is
// member, or ends in "/"+member (archives such as uv's put everything
// under one top directory). A member stored as a tar hard link has no
// bytes of its own: its target's are written.
func extractMember(ctx context.Context, archivePath, member, dst string, mode os.FileMode) error {
	matches := func(name string) bool { return name == member || strings.HasSuffix(name, "/"+member) }
	found, link, err := walkMember(ctx, archivePath, matches, dst, mode)
	switch {
	case err != nil:
		return fmt.Errorf("extract %q: %w", member, err)
	case len(found) == 0:
		return fmt.Errorf("extract %q: no such file in the archive", member)
	case len(found) > 1:
		return fmt.Errorf("extract %q: several files match (%s); give the path inside the archive", member, strings.Join(found, ", "))
	case link == "":
		return nil
	}
	target := path.Clean(strings.TrimPrefix(link, "./"))
	found, link, err = walkMember(ctx, archivePath, func(name string) bool { return name == target }, dst, mode)
	switch {
	case err != nil:
		return fmt.Errorf("extract %q (a hard link to %s): %w", member, target, err)
	case len(found) != 1 || link != "":
		return fmt.Errorf("extract %q: a hard link to %s, which is not one regular file of the archive", member, target)
	}
	return nil
}

// walkMember writes to dst the first regular file whose cleaned name
// matches, unless it is a hard link, whose target it returns instead; it
// lists every match.
func walkMember(ctx context.Context, archivePath string, matches func(string) bool, dst string, mode os.FileMode) (found []string, link string, err error) {
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	format, stream, err := archives.Identify(ctx, "", f)
	if err != nil {
		return nil, "", fmt.Errorf("identifying the archive: %w", err)
	}
	ex, ok := format.(archives.Extractor)
	if !ok {
		return nil, "", fmt.Errorf("the file is not an archive (%s)", format.Extension())
	}
	err = ex.Extract(ctx, stream, func(ctx context.Context, fi archives.FileInfo) error {
		name := path.Clean(strings.TrimPrefix(fi.NameInArchive, "./"))
		if !fi.Mode().IsRegular() || !matches(name) {
			return nil
		}
		found = append(found, fi.NameInArchive)
		if len(found) > 1 {
			return nil
		}
		if h, ok := fi.Header.(*tar.Header); ok && h.Typeflag == tar.TypeLink {
			link = h.Linkname
			return nil
		}
		rc, err := fi.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		return writeFileFrom(rc, dst, mode)
	})
	return found, link, err
}
