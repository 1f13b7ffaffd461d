package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	s, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, _ *jsonschema.Schema, data []byte) error {
	t.Helper()
	return ValidateManifest(data)
}

// Every manifest the repository holds as a golden file is one fwrelease
// wrote, so the schema is checked against real output.
func TestGoldenManifestsMatchSchema(t *testing.T) {
	s := compile(t)
	files, _ := filepath.Glob("../*/*/testdata/*manifest*.golden.json")
	if len(files) < 2 {
		t.Fatalf("found only %v; the golden manifests moved?", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The snapshot golden file stands $DIST for its temporary directory.
		data = bytes.ReplaceAll(data, []byte("$DIST"), []byte("/tmp/dist"))
		if err := validate(t, s, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSchemaRejects(t *testing.T) {
	s := compile(t)
	good, err := os.ReadFile("../internal/manifest/testdata/manifest.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, s, good); err != nil {
		t.Fatalf("the golden manifest is invalid: %v", err)
	}
	tests := map[string][2]string{
		"plain http":       {"https://example.com", "http://example.com"},
		"other schema":     {`"schema_version": 1`, `"schema_version": 2`},
		"short sha256":     {`"sha256": "aaaa`, `"sha256": "aa`},
		"unknown field":    {`"name": "flash-worker"`, `"name": "flash-worker", "extra": 1`},
		"bad target id":    {`"id": "py3.11-cpu-linux-x86_64"`, `"id": "python3.11"`},
		"strip components": {`"strip_components": 1`, `"strip_components": 0`},
		"version with v":   {`"version": "1.2.0"`, `"version": "v1.2.0"`},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(string(good), r[0], r[1], 1)
			if bad == string(good) {
				t.Fatalf("%q not found in the golden manifest", r[0])
			}
			if err := validate(t, s, []byte(bad)); err == nil {
				t.Errorf("accepted a manifest with %s", name)
			}
		})
	}
}
