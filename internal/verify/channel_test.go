package verify

import (
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// The channel comes from the manifest, not from the URL's shape: an S3 bucket
// behind a CDN path that looks like GitHub's is still s3.
func TestChannelFromManifest(t *testing.T) {
	u := "https://cdn.example.com/releases/download/v1.2.0/fw.tar.gz"
	a := &manifest.Artifact{URLs: []string{u}, Channels: map[string]string{"s3": u}}
	if ch := channelOf(a, u); ch != "s3" {
		t.Errorf("recorded channel: %s, want s3", ch)
	}
	// A manifest written before channels were recorded: the URL's shape.
	if ch := channelOf(&manifest.Artifact{URLs: []string{u}}, u); ch != "github" {
		t.Errorf("unrecorded channel: %s, want github", ch)
	}
}

// A signature is paired with its artifact by name, beside it, whatever the
// order of the lists.
func TestSignatureBeside(t *testing.T) {
	const file = "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz"
	s3, gh := "https://s3.example.com/fw/v1.2.0/", "https://github.com/o/r/releases/download/v1.2.0/"
	a := manifest.Artifact{
		File: file,
		URLs: []string{s3 + file, gh + file},
		Signature: &manifest.Signature{Bundle: file + ".sigstore.json", URLs: []string{
			gh + file + ".sigstore.json", // the other order from urls
			s3 + file + ".sigstore.json",
		}},
	}
	for _, base := range []string{s3, gh} {
		got, err := signatureBeside(a, base+file)
		if err != nil || got != base+file+".sigstore.json" {
			t.Errorf("beside %s: %s, %v", base, got, err)
		}
	}
	// No signature in that place: an error naming the bundle and the URL,
	// not another channel's signature.
	_, err := signatureBeside(a, "https://mirror.example.com/v1.2.0/"+file)
	if err == nil || !strings.Contains(err.Error(), "no signature "+file+".sigstore.json beside https://mirror.example.com/") {
		t.Errorf("no signature beside: %v", err)
	}
	a.Signature = nil
	if _, err := signatureBeside(a, s3+file); err != errMissingSignature {
		t.Errorf("unsigned: %v", err)
	}
}
