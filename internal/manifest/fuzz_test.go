package manifest

import (
	"os"
	"testing"
)

// FuzzDecode: Decode never panics, and what it accepts re-encodes to
// something it accepts again.
func FuzzDecode(f *testing.F) {
	if golden, err := os.ReadFile("testdata/manifest.golden.json"); err == nil {
		f.Add(golden)
	}
	f.Add([]byte(`{"schema_version": 1}`))
	f.Add([]byte(`{"schema_version": 2, "artifacts": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v\n%s", err, again)
		}
	})
}
