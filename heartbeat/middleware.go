package heartbeat

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// progressEvery is the most often progress is written for one job.
const progressEvery = time.Second

// Middleware is the River worker middleware writing heartbeats. Install it in
// river.Config.Middleware (globally) or return it from a worker's Middleware.
type Middleware struct {
	river.MiddlewareDefaults

	db      DB
	cfg     Config
	writer  writer
	sweeper *sweeper // nil for stores without rows of their own (Metadata)
}

var _ rivertype.WorkerMiddleware = (*Middleware)(nil)

// NewMiddleware returns the heartbeat middleware writing through db (usually
// the pool given to River's driver).
func NewMiddleware(db DB, cfg Config) (*Middleware, error) {
	if db == nil {
		return nil, errors.New("heartbeat: NewMiddleware needs a database")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	w, err := cfg.Store.writer(cfg.Schema)
	if err != nil {
		return nil, err
	}
	m := &Middleware{db: db, cfg: cfg, writer: w}
	if _, ok := cfg.Store.(tableStore); ok {
		m.sweeper = newSweeper(db, cfg.Schema, cfg.Logger)
	}
	return m, nil
}

// Work runs the job with a heartbeat goroutine beside it: a beat before the
// job's code starts, one every Interval, and a last one when Work returns (the
// Table store's row is removed once River has recorded the outcome). Beats go on
// while Work runs even after the job's context is cancelled: a job deaf to
// cancellation is still a live process, and the operator must see that. The
// goroutine has exited before Work returns, so no write can land after River
// completes the job.
func (m *Middleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	r := &jobBeats{
		m:        m,
		progress: newPendingProgress(),
		logger: m.cfg.Logger.With(slog.Int64("job_id", job.ID), slog.String("kind", job.Kind),
			slog.Int("attempt", job.Attempt)),
		base: beat{jobID: job.ID, attempt: job.Attempt, attemptedAt: job.AttemptedAt},
	}
	// River appends the fetching client's ID to attempted_by: the last one is us.
	if n := len(job.AttemptedBy); n > 0 {
		r.base.clientID = job.AttemptedBy[n-1]
	}
	// The first beat is written before the job's code runs, so even a job
	// that freezes its process at once has proved it started.
	beatCtx := context.WithoutCancel(ctx)
	r.write(beatCtx, false)
	done := make(chan struct{})
	exited := make(chan struct{})
	go r.loop(beatCtx, done, exited)
	defer func() { // also on panic, which River recovers above us
		close(done)
		<-exited
		if m.sweeper != nil {
			m.sweeper.ended(endedRun{jobID: job.ID, attempt: job.Attempt,
				attemptedAt: job.AttemptedAt, endedAt: time.Now()})
		}
	}()
	return doInner(context.WithValue(ctx, progressKey{}, r.progress))
}

// jobBeats is the heartbeat state of one running job.
type jobBeats struct {
	m        *Middleware
	progress *pendingProgress
	logger   *slog.Logger
	base     beat

	lastProgress time.Time // when progress was last written (local monotonic clock)
	notRunning   bool      // logged once that the fence no longer matches
}

func (r *jobBeats) loop(ctx context.Context, done <-chan struct{}, exited chan<- struct{}) {
	defer close(exited)
	ticker := time.NewTicker(r.m.cfg.Interval)
	defer ticker.Stop()
	var flush *time.Timer
	var flushC <-chan time.Time
	armFlush := func() {
		if flushC != nil {
			return
		}
		flush = time.NewTimer(max(0, progressEvery-time.Since(r.lastProgress)))
		flushC = flush.C
	}
	defer func() {
		if flush != nil {
			flush.Stop()
		}
	}()

	for {
		select {
		case <-done:
			// The last beat, with whatever progress is still pending.
			r.progress.close()
			r.write(ctx, true)
			return
		case <-ticker.C:
			dueProgress := time.Since(r.lastProgress) >= progressEvery
			if r.write(ctx, dueProgress) {
				armFlush()
			}
		case <-r.progress.wake:
			armFlush()
		case <-flushC:
			flushC = nil
			// A wake can outlive the payload it announced (written by a tick
			// meanwhile): only write when something is still pending.
			if r.progress.hasPending() && r.write(ctx, true) {
				armFlush()
			}
		}
	}
}

// write performs one beat, with the pending progress when withProgress. It
// returns true when progress is still pending afterwards (not yet due, or its
// write failed), so the caller schedules another try.
func (r *jobBeats) write(ctx context.Context, withProgress bool) (progressPending bool) {
	b := r.base
	if withProgress {
		b.progress, b.hasProgress = r.progress.take()
		if b.hasProgress {
			r.lastProgress = time.Now()
		}
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout(r.m.cfg.Interval))
	defer cancel()
	applied, err := r.m.writer.write(wctx, r.m.db, b)
	switch {
	case err != nil:
		r.logger.Warn("heartbeat: write failed; the job goes on and the next beat retries",
			slog.String("error", err.Error()))
		if b.hasProgress {
			r.progress.restore(b.progress)
		}
	case !applied && !r.notRunning:
		// River completed, cancelled or rescued the job, or another attempt
		// owns it now: nothing is written, by design.
		r.notRunning = true
		r.logger.Info("heartbeat: job no longer running with this attempt; not writing")
	}
	return r.progress.hasPending()
}

// writeTimeout bounds one write so a hung database cannot pile up beats.
func writeTimeout(interval time.Duration) time.Duration {
	return min(max(interval, time.Second), 10*time.Second)
}
