package console

import (
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

const refresh = 100 * time.Millisecond

// start starts the progress container on first use: a run that draws no bar
// writes nothing but its lines.
func (c *Console) start() *mpb.Progress {
	if c.progress == nil {
		c.progress = mpb.New(mpb.WithOutput(c.w), mpb.WithWidth(30), mpb.WithRefreshRate(refresh))
	}
	return c.progress
}

// spinner is a bar without a size: a step or a build in flight, with the
// time it has taken so far.
func (c *Console) spinner(key, label string) {
	if !c.opts.Bars || c.finished {
		return
	}
	c.dropBar(key)
	c.bars[key] = c.start().New(0, mpb.SpinnerStyle(),
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.BarRemoveOnComplete())
}

// dropBar completes a bar, which removes it (an aborted bar can leave its
// last frame on the screen).
func (c *Console) dropBar(key string) {
	if b, ok := c.bars[key]; ok {
		b.SetTotal(-1, true)
		delete(c.bars, key)
	}
}

// Upload draws one bar per upload in flight, with its throughput and ETA;
// it is a publish.Progress. Nil without bars.
func (c *Console) Upload() func(name string, done, total int64) {
	if !c.opts.Bars {
		return nil
	}
	return c.upload
}

func (c *Console) upload(name string, done, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || (c.progress == nil && done >= total) {
		return // finished before it was drawn, or after the run
	}
	key := "upload " + name
	b, ok := c.bars[key]
	if !ok {
		b = c.start().AddBar(total,
			mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
				decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace)),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
				decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace)),
			mpb.BarRemoveOnComplete())
		c.bars[key] = b
	}
	b.SetCurrent(done)
	if done >= total {
		delete(c.bars, key)
	}
}
