package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/redact"
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/internal/verify"
)

type verifyOptions struct {
	channels    []string
	key         string
	identity    string
	issuer      string
	repository  string
	anyRepo     bool
	trustedRoot string
}

func newVerify(g *globalOptions) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify MANIFEST",
		Short: "Verify a release: the manifest's signature, then every artifact on every channel",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			v, err := makeVerifier(o)
			if err != nil {
				return err
			}
			m, checks, err := verify.Release(cmd.Context(), a[0], verify.Options{
				Verifier: v, Channels: o.channels, AllowInsecure: g.allowInsecure, Log: g.logger(),
			})
			if m != nil {
				if perr := printChecks(g, a[0], m.Version, checks); perr != nil {
					return perr
				}
			}
			if errors.Is(err, verify.ErrFailed) && len(checks) > 0 {
				return fmt.Errorf("%s: %d of %d checks failed (see the table)", a[0], countFailed(checks), len(checks))
			}
			return err
		},
	}
	o.addFlags(cmd)
	return cmd
}

// addFlags adds which channels to check and whom to trust (verify, pin).
func (o *verifyOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&o.channels, "channel", nil, "check only this channel: "+channelList+" (repeatable)")
	o.addTrustFlags(cmd)
}

// addTrustFlags adds whom to trust (verify, pin, inject).
func (o *verifyOptions) addTrustFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "the public key the release was signed with (PEM)")
	f.StringVar(&o.identity, "certificate-identity", "", "keyless: the signer's identity (e.g. the release workflow's URL)")
	f.StringVar(&o.issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer (e.g. https://token.actions.githubusercontent.com)")
	f.StringVar(&o.repository, "certificate-github-repository", "", "keyless: the GitHub repository (OWNER/REPO) that released, from the certificate's Source Repository URI; its ref must be a tag")
	f.BoolVar(&o.anyRepo, "certificate-any-repository", false, "keyless: accept any source repository (unsafe with a reusable workflow, whose identity every caller shares)")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "keyless: a Sigstore trusted_root.json (default: public-good Sigstore's, fetched with TUF)")
}

func makeVerifier(o *verifyOptions) (*sign.Verifier, error) {
	switch {
	case o.key != "" && (o.identity != "" || o.issuer != "" || o.repository != ""):
		return nil, usageError{errors.New("give either --key or --certificate-identity/--certificate-oidc-issuer, not both")}
	case o.key != "":
		pub, err := os.ReadFile(o.key)
		if err != nil {
			return nil, fmt.Errorf("reading --key: %w", err)
		}
		return sign.NewKeyVerifier(pub)
	case o.identity != "" && o.issuer != "":
		if o.repository == "" && !o.anyRepo {
			return nil, usageError{errors.New("keyless verification needs --certificate-github-repository OWNER/REPO, the repository that released: a reusable workflow's --certificate-identity is the same for every repository that calls it (--certificate-any-repository accepts any, unsafely)")}
		}
		tr, err := trustedRoot(o.trustedRoot)
		if err != nil {
			return nil, err
		}
		v, err := sign.NewIdentityVerifier(tr, sign.Identity{SAN: o.identity, Issuer: o.issuer, Repository: o.repository, AnyRepository: o.anyRepo})
		if err != nil {
			return nil, usageError{err}
		}
		return v, nil
	}
	return nil, usageError{errors.New("say whom to trust: --key PUB, or --certificate-identity ID with --certificate-oidc-issuer URL and --certificate-github-repository OWNER/REPO")}
}

// trustedRoot reads path, or without one fetches public-good Sigstore's
// root through its TUF repository.
func trustedRoot(path string) (root.TrustedMaterial, error) {
	if path == "" {
		tr, err := root.FetchTrustedRoot()
		if err != nil {
			return nil, fmt.Errorf("fetching Sigstore's trusted root (offline? pass --trusted-root): %w", err)
		}
		return tr, nil
	}
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("reading --trusted-root: %w", err)
	}
	return tr, nil
}

func printChecks(g *globalOptions, ref, version string, checks []verify.Check) error {
	for i := range checks { // a mirror's error can quote credentials
		checks[i].Error = redact.String(checks[i].Error)
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(struct {
			Manifest string         `json:"manifest"`
			Version  string         `json:"version"`
			Checks   []verify.Check `json:"checks"`
		}{ref, version, checks})
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tCHANNEL\tSIZE\tSHA256\tSIGNATURE\tSIGNED BY\tRESULT")
	for _, c := range checks {
		result := "ok"
		if !c.OK {
			result = "FAIL: " + c.Error
		}
		short := c.SHA256
		if len(short) > 12 {
			short = short[:12]
		}
		signer := c.Signer
		if signer == "" {
			signer = "-"
		}
		channel := c.Channel
		if c.Image != "" {
			channel += " (" + c.Image + " image)"
		}
		if c.Layer != "" {
			channel += " (" + c.Layer + " layer)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", c.Target, channel, c.Size, short, c.Signature, signer, result)
	}
	return tw.Flush()
}

func countFailed(checks []verify.Check) int {
	n := 0
	for _, c := range checks {
		if !c.OK {
			n++
		}
	}
	return n
}
