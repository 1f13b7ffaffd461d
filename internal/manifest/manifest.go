// Package manifest is the release manifest that the SDK's injection
// generator consumes, and the per-target shards it is merged from; the
// format is docs/manifest.md.
// It imports nothing else of fwrelease, so consumers can depend on it alone.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// SchemaVersion is the version of the manifest format this package writes.
const SchemaVersion = 1

// Manifest describes one release of the worker.
type Manifest struct {
	SchemaVersion int        `json:"schema_version"`
	Name          string     `json:"name"`
	Version       string     `json:"version"`
	Source        Source     `json:"source"`
	Created       string     `json:"created"`
	Artifacts     []Artifact `json:"artifacts"`
}

type Source struct {
	Repository string `json:"repository"`
	Commit     string `json:"commit"`
	Tag        string `json:"tag,omitempty"` // only when the tag exists and points at Commit
}

// Artifact is one target's tarball.
type Artifact struct {
	Target          Target `json:"target"`
	File            string `json:"file"`
	Format          string `json:"format"`
	StripComponents int    `json:"strip_components"`
	Size            int64  `json:"size"`
	SHA256          string `json:"sha256"`
	// DiffID and TarSize are the tarball's uncompressed tar stream's
	// sha256 ("sha256:…") and length: what a start script also keeps on
	// the volume and checks, so a cache hit needs no decompression.
	DiffID  string   `json:"diff_id,omitempty"`
	TarSize int64    `json:"tar_size,omitempty"`
	URLs    []string `json:"urls"`
	// Channels names the channel each of URLs was published to, by channel
	// name: {"s3": "https://…"}. It sits beside urls so that readers of
	// urls alone see no change.
	Channels  map[string]string `json:"channels,omitempty"`
	OCI       string            `json:"oci,omitempty"`
	Signature *Signature        `json:"signature,omitempty"`
	// Layers are the target's tree split into image layers, tree at their
	// root, in the order they apply; Images the images made of them.
	Layers []Layer `json:"layers,omitempty"`
	Images *Images `json:"images,omitempty"`
}

// Layer is one gzip layer of a target's tree: the blob an OCI registry
// holds under digest ("sha256:…"), size bytes. URLs are where the same
// blob is published as a file beside the tarball, one per file channel,
// under the same rules as the artifact's urls.
type Layer struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// DiffID and TarSize are the uncompressed tar stream's sha256
	// ("sha256:…", the OCI diff ID) and length: what a start script keeps
	// on the volume and checks, so a cache hit needs no decompression.
	DiffID  string   `json:"diff_id,omitempty"`
	TarSize int64    `json:"tar_size,omitempty"`
	URLs    []string `json:"urls,omitempty"`
}

// Images are the OCI images of a target, by digest: the mount image (the
// tree at its root) and an overlay image (a base with the tree under
// /opt/flash-worker) per configured base, keyed by its accelerator.
type Images struct {
	Mount   string            `json:"mount,omitempty"`
	Overlay map[string]string `json:"overlay,omitempty"`
}

// ChannelOf names the channel u was published to, as the manifest records
// it; "" when it does not (a manifest written before it recorded channels).
func (a *Artifact) ChannelOf(u string) string {
	for ch, cu := range a.Channels {
		if cu == u {
			return ch
		}
	}
	return ""
}

type Target struct {
	ID     string `json:"id"`
	Python string `json:"python"`
	Accel  string `json:"accel"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
}

type Signature struct {
	Bundle string   `json:"bundle"`
	URLs   []string `json:"urls"`
}

// Release is the part of a manifest that is the same for every target.
type Release struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Source  Source `json:"source"`
	Created string `json:"created"`
}

// Shard is what one target's build leaves in dist/shards/<id>.json: its
// manifest entry, plus the release it belongs to so shards built on
// separate runners can be merged and checked against each other.
type Shard struct {
	Artifact
	Release Release `json:"release"`
}

// New assembles a manifest from shards, sorted by target ID. Shards of
// different releases, or one target with two digests, are refused.
func New(shards []Shard) (*Manifest, error) {
	if len(shards) == 0 {
		return nil, errors.New("no shards to merge")
	}
	rel := shards[0].Release
	byID := map[string]Artifact{}
	for _, s := range shards {
		if s.Release != rel {
			return nil, fmt.Errorf("shard %s is of release %s %s (commit %q), the others of %s %s (commit %q)",
				s.Target.ID, s.Release.Name, s.Release.Version, s.Release.Source.Commit, rel.Name, rel.Version, rel.Source.Commit)
		}
		if prev, ok := byID[s.Target.ID]; ok {
			if prev.SHA256 != s.SHA256 || prev.Size != s.Size {
				return nil, fmt.Errorf("target %s appears twice with different tarballs (sha256 %s and %s)", s.Target.ID, prev.SHA256, s.SHA256)
			}
			continue
		}
		byID[s.Target.ID] = s.Artifact
	}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: rel.Name, Version: rel.Version, Source: rel.Source, Created: rel.Created}
	for _, a := range byID {
		m.Artifacts = append(m.Artifacts, a)
	}
	sort.Slice(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].Target.ID < m.Artifacts[j].Target.ID })
	return m, nil
}

// Find returns the artifact of a target ID.
func (m *Manifest) Find(id string) (*Artifact, bool) {
	for i := range m.Artifacts {
		if m.Artifacts[i].Target.ID == id {
			return &m.Artifacts[i], true
		}
	}
	return nil, false
}

// Marshal is the canonical encoding: two-space indent, trailing newline.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads a manifest strictly: unknown fields and other schema
// versions are errors.
func Decode(data []byte) (*Manifest, error) {
	var probe struct {
		SchemaVersion int `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if probe.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("manifest schema_version %d is not %d; use a fwrelease that reads it", probe.SchemaVersion, SchemaVersion)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	return &m, nil
}

// WriteFile writes v canonically and atomically: readers see the old file or
// the new one, never a part.
func WriteFile(path string, v any) error {
	data, err := Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadShards reads every dist/shards/*.json under each directory.
func ReadShards(dirs ...string) ([]Shard, error) {
	var shards []Shard
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "shards", "*.json"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no shards in %s: run fwrelease build with --dist %s first", filepath.Join(dir, "shards"), dir)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading shard: %w", err)
			}
			var s Shard
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&s); err != nil {
				return nil, fmt.Errorf("decoding shard %s: %w", f, err)
			}
			shards = append(shards, s)
		}
	}
	return shards, nil
}
