package testserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// GitHub is an in-process GitHub API for releases and assets, written from
// GitHub's REST documentation: drafts are listed but invisible to
// releases/tags/{tag}; an asset name can be taken once (422 already_exists);
// uploads go to a separate upload host path; assets report a sha256 digest.
// It can be told to fail: 5xx bursts, a secondary rate limit with
// Retry-After, and uploads whose response is lost after the asset is stored.
type GitHub struct {
	*httptest.Server
	Token string

	mu       sync.Mutex
	releases []*ghRelease
	nextID   int64

	Fail5xx            int  // the next N API requests answer 502
	SecondaryRateLimit int  // the next N requests answer 403 with Retry-After: 1
	DropUploads        int  // the next N uploads are stored, then the connection is cut
	OmitDigest         bool // assets carry no digest (older GitHub Enterprise)
	EchoAuthorization  bool // "Bad credentials" quotes the request's Authorization header
	UploadedAssets     int  // assets stored
	UploadedBytes      int64
}

type ghRelease struct {
	ID        int64      `json:"id"`
	TagName   string     `json:"tag_name"`
	Name      string     `json:"name"`
	Draft     bool       `json:"draft"`
	Commitish string     `json:"target_commitish"`
	Assets    []*ghAsset `json:"assets"`
}

type ghAsset struct {
	ID                 int64  `json:"id"`
	Name               string `json:"name"`
	Size               int64  `json:"size"`
	State              string `json:"state"`
	Digest             string `json:"digest,omitempty"`
	BrowserDownloadURL string `json:"browser_download_url"`
	ContentType        string `json:"content_type"`
	data               []byte
}

// StartGitHub serves the fake on 127.0.0.1. Its API base is URL+"/api/v3/"
// and its upload base URL+"/api/uploads/", as on GitHub Enterprise.
func StartGitHub(t testing.TB, token string) *GitHub {
	g := &GitHub{Token: token, nextID: 100}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

// APIURL and UploadURL are the bases for the config.
func (g *GitHub) APIURL() string    { return g.URL + "/api/v3/" }
func (g *GitHub) UploadURL() string { return g.URL + "/api/uploads/" }

var (
	releasesRE = regexp.MustCompile(`^/api/v3/repos/([^/]+)/([^/]+)/releases$`)
	byTagRE    = regexp.MustCompile(`^/api/v3/repos/[^/]+/[^/]+/releases/tags/(.+)$`)
	releaseRE  = regexp.MustCompile(`^/api/v3/repos/[^/]+/[^/]+/releases/(\d+)$`)
	assetsRE   = regexp.MustCompile(`^/api/v3/repos/[^/]+/[^/]+/releases/(\d+)/assets$`)
	assetRE    = regexp.MustCompile(`^/api/v3/repos/[^/]+/[^/]+/releases/assets/(\d+)$`)
	uploadRE   = regexp.MustCompile(`^/api/uploads/repos/[^/]+/[^/]+/releases/(\d+)/assets$`)
	downloadRE = regexp.MustCompile(`^/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/]+)$`)
)

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := r.URL.Path
	if m := downloadRE.FindStringSubmatch(p); m != nil && r.Method == http.MethodGet {
		g.download(w, m[3], m[4])
		return
	}
	if auth := r.Header.Get("Authorization"); auth != "Bearer "+g.Token {
		msg := "Bad credentials"
		if g.EchoAuthorization {
			msg += " (Authorization: " + auth + ")"
		}
		ghError(w, http.StatusUnauthorized, msg, "")
		return
	}
	if g.SecondaryRateLimit > 0 {
		g.SecondaryRateLimit--
		w.Header().Set("Retry-After", "1")
		ghError(w, http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
		return
	}
	if g.Fail5xx > 0 {
		g.Fail5xx--
		ghError(w, http.StatusBadGateway, "Server Error", "")
		return
	}
	switch {
	case releasesRE.MatchString(p) && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, g.releases)
	case releasesRE.MatchString(p) && r.Method == http.MethodPost:
		var in ghRelease
		json.NewDecoder(r.Body).Decode(&in)
		for _, rel := range g.releases {
			if rel.TagName == in.TagName {
				ghValidation(w, "Release", "tag_name")
				return
			}
		}
		g.nextID++
		rel := &ghRelease{ID: g.nextID, TagName: in.TagName, Name: in.Name, Draft: in.Draft, Commitish: in.Commitish, Assets: []*ghAsset{}}
		g.releases = append(g.releases, rel)
		writeJSON(w, http.StatusCreated, rel)
	case byTagRE.MatchString(p) && r.Method == http.MethodGet:
		tag := byTagRE.FindStringSubmatch(p)[1]
		for _, rel := range g.releases {
			if rel.TagName == tag && !rel.Draft {
				writeJSON(w, http.StatusOK, rel)
				return
			}
		}
		ghError(w, http.StatusNotFound, "Not Found", "")
	case releaseRE.MatchString(p) && r.Method == http.MethodPatch:
		rel := g.release(releaseRE.FindStringSubmatch(p)[1])
		if rel == nil {
			ghError(w, http.StatusNotFound, "Not Found", "")
			return
		}
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		if d, ok := in["draft"].(bool); ok {
			rel.Draft = d
		}
		writeJSON(w, http.StatusOK, rel)
	case assetsRE.MatchString(p) && r.Method == http.MethodGet:
		rel := g.release(assetsRE.FindStringSubmatch(p)[1])
		if rel == nil {
			ghError(w, http.StatusNotFound, "Not Found", "")
			return
		}
		writeJSON(w, http.StatusOK, g.view(rel.Assets))
	case assetRE.MatchString(p):
		g.assetRequest(w, r, assetRE.FindStringSubmatch(p)[1])
	case uploadRE.MatchString(p) && r.Method == http.MethodPost:
		g.upload(w, r, uploadRE.FindStringSubmatch(p)[1])
	default:
		ghError(w, http.StatusNotFound, "Not Found", "")
	}
}

func (g *GitHub) upload(w http.ResponseWriter, r *http.Request, releaseID string) {
	rel := g.release(releaseID)
	if rel == nil {
		ghError(w, http.StatusNotFound, "Not Found", "")
		return
	}
	name := r.URL.Query().Get("name")
	for _, a := range rel.Assets {
		if a.Name == name {
			ghValidation(w, "ReleaseAsset", "name")
			return
		}
	}
	data, err := io.ReadAll(r.Body)
	if err != nil || int64(len(data)) != r.ContentLength {
		ghError(w, http.StatusBadRequest, "Bad Content-Length", "")
		return
	}
	sum := sha256.Sum256(data)
	g.nextID++
	a := &ghAsset{ID: g.nextID, Name: name, Size: int64(len(data)), State: "uploaded", Digest: "sha256:" + hex.EncodeToString(sum[:]),
		BrowserDownloadURL: fmt.Sprintf("%s/o/r/releases/download/%s/%s", g.URL, rel.TagName, name), ContentType: r.Header.Get("Content-Type"), data: data}
	rel.Assets = append(rel.Assets, a)
	g.UploadedAssets++
	g.UploadedBytes += int64(len(data))
	if g.DropUploads > 0 {
		g.DropUploads--
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
		return
	}
	writeJSON(w, http.StatusCreated, g.view([]*ghAsset{a})[0])
}

func (g *GitHub) assetRequest(w http.ResponseWriter, r *http.Request, id string) {
	for _, rel := range g.releases {
		for i, a := range rel.Assets {
			if strconv.FormatInt(a.ID, 10) != id {
				continue
			}
			switch {
			case r.Method == http.MethodDelete:
				rel.Assets = append(rel.Assets[:i], rel.Assets[i+1:]...)
				w.WriteHeader(http.StatusNoContent)
			case r.Method == http.MethodGet && r.Header.Get("Accept") == "application/octet-stream":
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(a.data)
			default:
				writeJSON(w, http.StatusOK, g.view([]*ghAsset{a})[0])
			}
			return
		}
	}
	ghError(w, http.StatusNotFound, "Not Found", "")
}

func (g *GitHub) download(w http.ResponseWriter, tag, name string) {
	for _, rel := range g.releases {
		if rel.TagName != tag || rel.Draft {
			continue
		}
		for _, a := range rel.Assets {
			if a.Name == name {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(a.data)
				return
			}
		}
	}
	http.NotFound(w, nil)
}

func (g *GitHub) view(assets []*ghAsset) []ghAsset {
	out := make([]ghAsset, len(assets))
	for i, a := range assets {
		out[i] = *a
		if g.OmitDigest {
			out[i].Digest = ""
		}
	}
	return out
}

func (g *GitHub) release(id string) *ghRelease {
	for _, rel := range g.releases {
		if strconv.FormatInt(rel.ID, 10) == id {
			return rel
		}
	}
	return nil
}

// Release returns a copy of the release of tag, for assertions.
func (g *GitHub) Release(tag string) (draft bool, assets map[string][]byte, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rel := range g.releases {
		if rel.TagName == tag {
			assets = map[string][]byte{}
			for _, a := range rel.Assets {
				if _, dup := assets[a.Name]; dup {
					assets[a.Name+" (duplicate)"] = a.data
				}
				assets[a.Name] = a.data
			}
			return rel.Draft, assets, true
		}
	}
	return false, nil, false
}

// Counts returns the upload counters.
func (g *GitHub) Counts() (assets int, bytes int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.UploadedAssets, g.UploadedBytes
}

// Set changes the fault settings under the lock.
func (g *GitHub) Set(f func(g *GitHub)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func ghError(w http.ResponseWriter, code int, msg, doc string) {
	body := map[string]string{"message": msg}
	if doc != "" {
		body["documentation_url"] = doc
	}
	if !strings.HasPrefix(msg, "Not") {
		w.Header().Set("X-GitHub-Request-Id", "FAKE")
	}
	writeJSON(w, code, body)
}

func ghValidation(w http.ResponseWriter, resource, field string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed",
		"errors":  []map[string]string{{"resource": resource, "code": "already_exists", "field": field}},
	})
}
