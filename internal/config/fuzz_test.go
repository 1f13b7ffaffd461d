package config

import (
	"strings"
	"testing"
)

// FuzzParse: any input either parses into a config that validated, or
// fails with a message naming the file; it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(strings.Replace(minimal, "matrix:\n", "matrix:\n  exclude: [{accel: cpu}]\n  accel: [cpu, cu128]\n", 1)))
	f.Add([]byte("version: {from: &a x}\nname: *a\n"))
	f.Add([]byte("slim: {max_size: 99999999999999999999GiB}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(c.Targets()) == 0 || c.Name == "" || c.Format == "" {
			t.Fatalf("accepted a config with no targets or defaults: %+v", c)
		}
	})
}
