// Command keygen writes an ECDSA P-256 key pair (PEM) for the benchmarks.
package main

import (
	"crypto/elliptic"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: keygen PRIVATE.pem PUBLIC.pem")
		os.Exit(2)
	}
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.SkipPassword)
	if err == nil {
		err = os.WriteFile(os.Args[1], priv, 0o600)
	}
	if err == nil {
		err = os.WriteFile(os.Args[2], pub, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
