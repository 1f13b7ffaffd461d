// Package artifact is the one description of a file a release publishes:
// build produces a tarball's, signing adds its bundle's, publishing adds
// the Locations each went to, and shards and the manifest are made from
// artifacts only when they are written. Inside one process nothing is
// re-derived from the file on disk; a release read back from dist/ is
// checked once, when it is loaded.
//
// A new kind of published thing is a Kind constant here; the channels
// that carry it switch on Kind in Publish and return
// the zero Location for kinds they do not carry, and Entry records it in
// the manifest if the manifest names it.
package artifact

import (
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// Kind says what an Artifact is to a channel that treats kinds differently.
type Kind int

const (
	File      Kind = iota // the manifest, or any other file of the release
	Tarball               // a target's tarball
	Signature             // a Sigstore bundle
	Layer                 // a tarball's image layer, as a file beside it
)

// Artifact is a target's tarball, its signature, or any other file of a
// release (the manifest) with Target left zero.
type Artifact struct {
	Kind    Kind
	Target  target.Target
	Release manifest.Release // name, version, source and pinned time
	File    string           // "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz"
	Path    string           // on disk
	Format  string           // tarballs: "tar+gzip" or "tar+zstd"
	Size    int64
	SHA256  string
	// DiffID and TarSize are a tarball's uncompressed tar stream's
	// ("sha256:…" and its length), as its manifest entry records them.
	DiffID  string
	TarSize int64
	// Layers are a tarball's tree as image layers, and Images the images
	// made of them, as its manifest entry records them.
	Layers []manifest.Layer
	Images *manifest.Images
	// LayerFiles are a tarball's Layers as files of the release (Kind
	// Layer), in the same order, published beside it; where each went
	// becomes its layer's urls. Nil: the layers keep the urls they have.
	LayerFiles []Artifact
	// Signature is a tarball's bundle, once signed.
	Signature *Artifact
	// Signs is what a signature signs (without its own Signature).
	Signs *Artifact
	// Locations are where the artifact was published, in publishing order.
	Locations []Location
}

// Location is where one channel put an artifact.
type Location struct {
	Channel string // "s3"
	URL     string // a download URL, or with Ref a content reference
	// Ref marks a content reference (repository@sha256:…), which the
	// manifest keeps in its oci field rather than among the URLs.
	Ref bool
}

// Carried reports whether the channel stored the artifact at all (a
// registry does not carry the release manifest).
func (l Location) Carried() bool { return l.URL != "" }

// Key is the file's path below a channel's root: "v1.2.0/{file}".
func (a Artifact) Key() string { return Key(a.Release.Version, a.File) }

// Tag is the release's tag: "v1.2.0".
func (a Artifact) Tag() string { return Tag(a.Release.Version) }

// Key is a file's path below a channel's root: "v{version}/{file}".
func Key(version, file string) string { return path.Join(Tag(version), file) }

// Tag is a release's tag, "v{version}": the git tag, the GitHub release and
// the prefix of every key and OCI tag.
func Tag(version string) string { return "v" + version }

// Published records that the artifact went to l (the zero Location, a
// channel that does not carry it, records nothing; the same one twice,
// once).
func (a *Artifact) Published(l Location) {
	if l.Carried() && !slices.Contains(a.Locations, l) {
		a.Locations = append(a.Locations, l)
	}
}

// SignedBy attaches sig, a bundle over a, as a's signature.
func (a *Artifact) SignedBy(sig Artifact) {
	signed := *a
	signed.Signature, signed.Locations = nil, nil
	sig.Kind, sig.Target, sig.Release, sig.Signs = Signature, a.Target, a.Release, &signed
	a.Signature = &sig
}

// LayerFileName is the name a tarball's layer is published under beside
// it: "flash-worker-v1.2.0-py3.11-linux-x86_64.deps.layer.tar.gz".
func LayerFileName(tarball, layer string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(tarball, ".tar.gz"), ".tar.zst")
	return base + "." + layer + ".layer.tar.gz"
}

// LayerFile describes the tarball's layer l, whose file is at p, as a file
// of the release.
func (a *Artifact) LayerFile(l manifest.Layer, p string) Artifact {
	return Artifact{
		Kind: Layer, Target: a.Target, Release: a.Release,
		File: LayerFileName(a.File, l.Name), Path: p, Format: "tar+gzip",
		Size: l.Size, SHA256: strings.TrimPrefix(l.Digest, "sha256:"),
	}
}

// layers are the tarball's layers for its manifest entry, each with the
// URLs its file was published to.
func (a *Artifact) layers() []manifest.Layer {
	if a.LayerFiles == nil || len(a.LayerFiles) != len(a.Layers) {
		return a.Layers
	}
	out := make([]manifest.Layer, len(a.Layers))
	for i, l := range a.Layers {
		l.URLs = a.LayerFiles[i].urls()
		out[i] = l
	}
	return out
}

// urls are the download URLs of the artifact, without content references.
func (a *Artifact) urls() []string {
	urls := []string{}
	for _, l := range a.Locations {
		if !l.Ref && !slices.Contains(urls, l.URL) {
			urls = append(urls, l.URL)
		}
	}
	return urls
}

// Entry is the tarball's manifest entry, with where it was published.
func (a *Artifact) Entry() manifest.Artifact {
	t := a.Target
	e := manifest.Artifact{
		Target:          manifest.Target{ID: t.ID(), Python: t.Python, Accel: t.Accel, OS: t.OS, Arch: t.Arch},
		File:            a.File,
		Format:          a.Format,
		StripComponents: 1,
		Size:            a.Size,
		SHA256:          a.SHA256,
		DiffID:          a.DiffID,
		TarSize:         a.TarSize,
		URLs:            a.urls(),
		Layers:          a.layers(),
		Images:          a.Images,
	}
	for _, l := range a.Locations {
		switch {
		case l.Ref:
			e.OCI = l.URL
		case l.Channel != "":
			if e.Channels == nil {
				e.Channels = map[string]string{}
			}
			e.Channels[l.Channel] = l.URL
		}
	}
	if s := a.Signature; s != nil {
		e.Signature = &manifest.Signature{Bundle: s.File, URLs: s.urls()}
	}
	return e
}

// Shard is the tarball's shard: its entry and the release it belongs to.
func (a *Artifact) Shard() manifest.Shard {
	return manifest.Shard{Artifact: a.Entry(), Release: a.Release}
}

// FromShard describes the tarball of a shard read back from dir (what
// `fwrelease build` and `sign` left there), as they described it; the
// signature's size and digest are left for the caller to read.
func FromShard(dir string, s manifest.Shard) Artifact {
	t := s.Target
	a := Artifact{
		Kind:    Tarball,
		Target:  target.Target{Python: t.Python, Accel: t.Accel, OS: t.OS, Arch: t.Arch},
		Release: s.Release,
		File:    s.File,
		Path:    filepath.Join(dir, s.File),
		Format:  s.Format,
		Size:    s.Size,
		SHA256:  s.SHA256,
		DiffID:  s.DiffID,
		TarSize: s.TarSize,
		Layers:  s.Layers,
		Images:  s.Images,
	}
	for _, u := range s.URLs {
		a.Published(Location{Channel: s.ChannelOf(u), URL: u})
	}
	if s.OCI != "" {
		a.Published(Location{Channel: "oci", URL: s.OCI, Ref: true})
	}
	if s.Signature != nil {
		sig := Artifact{File: s.Signature.Bundle, Path: filepath.Join(dir, s.Signature.Bundle)}
		for _, u := range s.Signature.URLs {
			sig.Published(Location{URL: u})
		}
		a.SignedBy(sig)
	}
	return a
}
