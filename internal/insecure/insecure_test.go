package insecure

import "testing"

func TestCheck(t *testing.T) {
	tests := []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"https://s3.example.com", false, true},
		{"http://127.0.0.1:7070", false, false},
		{"http://127.0.0.1:7070", true, true},
		{"http://localhost:5000/x", true, true},
		{"http://[::1]:9000", true, true},
		{"http://10.0.0.5:7070", true, false},
		{"http://s3.example.com", true, false},
		{"ftp://127.0.0.1/x", true, false},
	}
	for _, tt := range tests {
		if err := Check(tt.url, tt.allow); (err == nil) != tt.ok {
			t.Errorf("Check(%q, %v) = %v, want ok=%v", tt.url, tt.allow, err, tt.ok)
		}
	}
}
