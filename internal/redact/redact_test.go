package redact

import (
	"bytes"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "plainTokenValue123")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("COSIGN_PASSWORD", "hunter22")
	Add("fromAFile-secret")
	Add("x") // too short to be one
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3Rva2VuIn0.c2lnbmF0dXJl"
	tests := []struct{ in, want string }{
		{"GET https://api.github.com/x: 401 Bad credentials (Authorization: token plainTokenValue123)",
			"GET https://api.github.com/x: 401 Bad credentials (Authorization: [REDACTED])"},
		{`{"headers": {"Authorization": "Bearer abc.def.ghi"}}`, `{"headers": {"Authorization": "[REDACTED]"}}`},
		{"authorization=Basic dXNlcjpwYXNzd29yZA==", "authorization=[REDACTED]"},
		{"sent Basic dXNlcjpwYXNzd29yZA== over http", "sent Basic [REDACTED] over http"},
		{"fulcio: 401: invalid token " + jwt + " for issuer", "fulcio: 401: invalid token [REDACTED] for issuer"},
		{"token ghp_abcdefghijklmnopqrstuvwxyz0123 rejected", "token [REDACTED] rejected"},
		{"signature mismatch for key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "signature mismatch for key [REDACTED]"},
		{"decrypting with hunter22 failed", "decrypting with [REDACTED] failed"},
		{"read fromAFile-secret", "read [REDACTED]"},
		{"https://user:p4ss@registry.example/v2/", "https://[REDACTED]@registry.example/v2/"},
		{"GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2026&X-Amz-Signature=abc123: 403",
			"GET https://b.s3.amazonaws.com/k?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]: 403"},
		{"<AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId>", "<AWSAccessKeyId>[REDACTED]</AWSAccessKeyId>"},
		{"uploading x to s3://bucket/key: exit 1", "uploading x to s3://bucket/key: exit 1"},
		{"the basic layout, bearer of news", "the basic layout, bearer of news"},
		{"a basic structure", "a basic structure"},
		{"bearer eyJhbGciOi.x", "bearer [REDACTED]"},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestWriter(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "plainTokenValue123")
	var buf bytes.Buffer
	w := Writer(&buf)
	n, err := w.Write([]byte("level=ERROR msg=\"token plainTokenValue123\"\n"))
	if err != nil || n != len("level=ERROR msg=\"token plainTokenValue123\"\n") {
		t.Errorf("Write = %d, %v; want the input's length", n, err)
	}
	if strings.Contains(buf.String(), "plainTokenValue123") || !strings.Contains(buf.String(), Mask) {
		t.Errorf("wrote %q", buf.String())
	}
}
