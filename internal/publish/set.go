package publish

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/runpod-workers/fwrelease/internal/artifact"
)

// Set is the channels of one release, in publishing order: each optional
// interface is passed on to the channels that have it, and the first
// failure stops it, named by its channel.
type Set struct {
	channels []Publisher
	log      *slog.Logger
}

// NewSet makes a set of channels; log (nil: silent) hears about a latest
// that did not move.
func NewSet(log *slog.Logger, channels ...Publisher) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{channels: channels, log: log}
}

// Channels are the set's channels, in publishing order.
func (s *Set) Channels() []Publisher { return s.channels }

// DryRun is the set with every channel replaced by one that publishes
// nothing and logs what it would do with log.
func (s *Set) DryRun(log func(msg string, args ...any)) *Set {
	dry := make([]Publisher, len(s.channels))
	for i, p := range s.channels {
		dry[i] = &dryRun{inner: p, log: log}
	}
	return &Set{channels: dry, log: s.log}
}

// each runs fn on every channel, stopping at the first error.
func (s *Set) each(fn func(p Publisher) error) error {
	for _, p := range s.channels {
		if err := fn(p); err != nil {
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	return nil
}

// Preflight lets every channel refuse what it cannot take before anything
// is uploaded anywhere.
func (s *Set) Preflight(arts []artifact.Artifact) error {
	return s.each(func(p Publisher) error {
		if pf, ok := p.(Preflighter); ok {
			return pf.Preflight(arts)
		}
		return nil
	})
}

// PushIndex ties the release's artifacts together where a channel indexes
// them.
func (s *Set) PushIndex(ctx context.Context, version string) error {
	return s.each(func(p Publisher) error {
		if ix, ok := p.(Indexer); ok {
			return ix.PushIndex(ctx, version)
		}
		return nil
	})
}

// Finalize makes the release visible where a channel hides it until then.
func (s *Set) Finalize(ctx context.Context, version string) error {
	return s.each(func(p Publisher) error {
		if f, ok := p.(Finalizer); ok {
			return f.Finalize(ctx, version)
		}
		return nil
	})
}

// MoveLatest reports whether any channel moved; one that did not (it points
// at this or a newer version already) is logged.
func (s *Set) MoveLatest(ctx context.Context, version string, body []byte) (bool, error) {
	movedAny := false
	err := s.each(func(p Publisher) error {
		lm, ok := p.(LatestMover)
		if !ok {
			return nil
		}
		moved, err := lm.MoveLatest(ctx, version, body)
		if err == nil && !moved {
			s.log.Info("latest not moved: it already points at this or a newer version", "channel", p.Name())
		}
		movedAny = movedAny || moved
		return err
	})
	return movedAny, err
}
