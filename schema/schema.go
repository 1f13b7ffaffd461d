// Package schema embeds the JSON Schema of the release manifest, so that
// fwrelease checks every manifest it writes against the one file that
// documents the format for consumers.
package schema

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Manifest is schema/manifest.schema.json.
//
//go:embed manifest.schema.json
var Manifest []byte

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Manifest))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("manifest.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("manifest.schema.json")
})

// ValidateManifest checks a manifest's JSON against the schema.
func ValidateManifest(data []byte) error {
	s, err := compiled()
	if err != nil {
		return fmt.Errorf("compiling the manifest schema: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decoding manifest: %w", err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("the manifest does not match its schema: %w", err)
	}
	return nil
}
