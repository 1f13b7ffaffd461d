package resume

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// cutBody hands out data up to cut, then fails as a dropped connection.
type cutBody struct {
	r      io.Reader
	closed bool
}

var errCut = errors.New("connection reset by peer")

func (c *cutBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errCut
	}
	return n, err
}

func (c *cutBody) Close() error { c.closed = true; return nil }

// source serves data from an offset, cutting off each body after cut bytes.
type source struct {
	data    string
	cut     int
	offsets []int64
	bodies  []*cutBody
}

func (s *source) open(_ context.Context, offset int64) (io.ReadCloser, error) {
	s.offsets = append(s.offsets, offset)
	rest := s.data[offset:]
	var b *cutBody
	if len(rest) > s.cut {
		b = &cutBody{r: strings.NewReader(rest[:s.cut])}
	} else {
		b = &cutBody{r: strings.NewReader(rest)}
		return struct {
			io.Reader
			io.Closer
		}{strings.NewReader(rest), b}, nil
	}
	s.bodies = append(s.bodies, b)
	return b, nil
}

func TestResume(t *testing.T) {
	const data = "0123456789abcdefghij"
	for _, tc := range []struct {
		name    string
		cut     int
		want    string
		offsets []int64 // reopen offsets after the first body
		err     error
	}{
		{name: "whole first time", cut: 100, want: data},
		{name: "cut twice, resumed at each offset", cut: 8, want: data, offsets: []int64{8, 16}},
		{name: "more cuts than MaxReopens", cut: 3, want: data[:3*(MaxReopens+1)], offsets: []int64{3, 6, 9}, err: errCut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &source{data: data, cut: tc.cut}
			first, _ := src.open(context.Background(), 0)
			src.offsets = nil
			r := &Reader{Ctx: context.Background(), Body: first, Reopen: src.open}
			got, err := io.ReadAll(r)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if string(got) != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			if !slices.Equal(src.offsets, tc.offsets) {
				t.Errorf("reopened at %v, want %v", src.offsets, tc.offsets)
			}
			for i, b := range src.bodies[:max(len(src.bodies)-1, 0)] {
				if !b.closed {
					t.Errorf("body %d not closed before reopening", i)
				}
			}
		})
	}
}

// Without Reopen, or once the context is done, a cut is the caller's error.
func TestNoResume(t *testing.T) {
	src := &source{data: "0123456789", cut: 4}
	body, _ := src.open(context.Background(), 0)
	got, err := io.ReadAll(&Reader{Ctx: context.Background(), Body: body})
	if !errors.Is(err, errCut) || string(got) != "0123" {
		t.Errorf("without Reopen: %q, %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body, _ = src.open(ctx, 0)
	src.offsets = nil
	got, err = io.ReadAll(&Reader{Ctx: ctx, Body: body, Reopen: src.open})
	if !errors.Is(err, errCut) || len(src.offsets) != 0 {
		t.Errorf("cancelled: %q, %v, reopened at %v", got, err, src.offsets)
	}
	// A failed reopen says where it was resuming.
	body, _ = src.open(context.Background(), 0)
	failing := func(context.Context, int64) (io.ReadCloser, error) { return nil, errors.New("403 Forbidden") }
	_, err = io.ReadAll(&Reader{Ctx: context.Background(), Body: body, Reopen: failing})
	if err == nil || !strings.Contains(err.Error(), "resuming at byte 4: 403 Forbidden") {
		t.Errorf("failed reopen: %v", err)
	}
}
