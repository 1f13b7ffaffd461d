package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Multi fans out to several channels, in order, as one: Publish stores the
// object on each, and each optional interface is passed on to the channels
// that have it. The first failure stops it, named by its channel.
func Multi(log *slog.Logger, pubs ...Publisher) Publisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &multi{pubs: pubs, log: log}
}

type multi struct {
	pubs []Publisher
	log  *slog.Logger
}

var (
	_ Publisher   = (*multi)(nil)
	_ Preflighter = (*multi)(nil)
	_ Indexer     = (*multi)(nil)
	_ Finalizer   = (*multi)(nil)
	_ LatestMover = (*multi)(nil)
)

func (m *multi) Name() string {
	names := make([]string, len(m.pubs))
	for i, p := range m.pubs {
		names[i] = p.Name()
	}
	return strings.Join(names, "+")
}

// Publish returns the first channel's URL.
func (m *multi) Publish(ctx context.Context, obj Object) (string, error) {
	var first string
	for _, p := range m.pubs {
		u, err := p.Publish(ctx, obj)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p.Name(), err)
		}
		if first == "" {
			first = u
		}
	}
	return first, nil
}

// each runs fn on every channel, stopping at the first error.
func (m *multi) each(fn func(p Publisher) error) error {
	for _, p := range m.pubs {
		if err := fn(p); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	return nil
}

func (m *multi) Preflight(objs []Object) error {
	return m.each(func(p Publisher) error {
		if pf, ok := p.(Preflighter); ok {
			return pf.Preflight(objs)
		}
		return nil
	})
}

func (m *multi) PushIndex(ctx context.Context, version string) error {
	return m.each(func(p Publisher) error {
		if ix, ok := p.(Indexer); ok {
			return ix.PushIndex(ctx, version)
		}
		return nil
	})
}

func (m *multi) Finalize(ctx context.Context, version string) error {
	return m.each(func(p Publisher) error {
		if f, ok := p.(Finalizer); ok {
			return f.Finalize(ctx, version)
		}
		return nil
	})
}

// MoveLatest reports whether any channel moved; one that did not (it points
// at this or a newer version already) is logged.
func (m *multi) MoveLatest(ctx context.Context, version string, body []byte) (bool, error) {
	movedAny := false
	err := m.each(func(p Publisher) error {
		lm, ok := p.(LatestMover)
		if !ok {
			return nil
		}
		moved, err := lm.MoveLatest(ctx, version, body)
		if err == nil && !moved {
			m.log.Info("latest not moved: it already points at this or a newer version", "channel", p.Name())
		}
		movedAny = movedAny || moved
		return err
	})
	return movedAny, err
}

// errNoChannels is returned by Open when nothing is configured.
var errNoChannels = errors.New("no channels: the config's publish section names none; add publish.local, publish.s3, publish.github or publish.oci")
