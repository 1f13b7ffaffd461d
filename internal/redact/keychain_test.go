package redact

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// A registry that quotes the password back in an error must not get it
// printed: the credentials the Docker config gives are secrets, whichever
// form they take there.
func TestKeychainMakesCredentialsSecrets(t *testing.T) {
	for _, tt := range []struct{ name, entry, password string }{
		{"auth", `{"auth": %q}`, "first-registry-password"},
		{"username and password", `{"username": "ci", "password": %q}`, "second-registry-password"},
		{"identity token", `{"username": "<token>", "identitytoken": %q}`, "third-registry-refresh-token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			value := tt.password
			if tt.name == "auth" {
				value = base64.StdEncoding.EncodeToString([]byte("ci:" + tt.password))
			}
			dir := t.TempDir()
			entry := fmt.Sprintf(tt.entry, value)
			os.WriteFile(filepath.Join(dir, "config.json"), fmt.Appendf(nil, `{"auths": {"127.0.0.1:5999": %s}}`, entry), 0o600)
			t.Setenv("DOCKER_CONFIG", dir)
			reg, err := name.NewRegistry("127.0.0.1:5999")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Keychain(authn.DefaultKeychain).Resolve(reg); err != nil {
				t.Fatal(err)
			}
			echoed := "denied: bad credentials " + tt.password + " (" + value + ")"
			if got := String(echoed); strings.Contains(got, tt.password) || strings.Contains(got, value) {
				t.Errorf("String(%q) = %q, still showing the credential", echoed, got)
			}
		})
	}
}
