package redact

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Keychain resolves registry credentials as k does (the Docker config and
// its helpers) and makes each of their values a secret, so a registry that
// quotes the password back in an error does not get it printed. Publishing
// and verifying both talk to registries through it.
func Keychain(k authn.Keychain) authn.Keychain { return keychain{k} }

type keychain struct{ authn.Keychain }

func (k keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	a, err := k.Keychain.Resolve(res)
	if err != nil || a == authn.Anonymous {
		return a, err
	}
	cfg, err := authn.Authorization(context.Background(), a)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", res.RegistryStr(), err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
	for _, s := range []string{cfg.Password, cfg.Auth, basic, cfg.IdentityToken, cfg.RegistryToken} {
		Add(s)
	}
	return authn.FromConfig(*cfg), nil
}
