package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// run works jobs until ctx ends (SIGTERM/SIGINT) or, with EXIT_WHEN_IDLE,
// until the queues have been empty for that long.
func run(ctx context.Context, cfg runConfig, logger *slog.Logger) error {
	pool, err := connect(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	tame = cfg.Tame
	active := &activeJobs{}
	middleware := []rivertype.Middleware{active}
	hb, err := heartbeatMiddleware(ctx, pool, cfg, logger)
	if err != nil {
		return err
	}
	if hb != nil {
		middleware = append(middleware, hb)
	}

	queues := make(map[string]river.QueueConfig, len(cfg.Queues))
	for _, q := range cfg.Queues {
		queues[q] = river.QueueConfig{MaxWorkers: cfg.MaxWorkers}
	}
	jobTimeout := cfg.JobTimeout
	if jobTimeout == 0 {
		// Long-running jobs are the point of this worker: River's default
		// one-minute timeout would cancel them.
		jobTimeout = -1
	}
	// Config.ID stays unset on purpose: River derives the client ID from the
	// hostname (the pod name), which is how Lifeguard maps a job to its pod.
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:               logger,
		Schema:               cfg.Schema,
		Queues:               queues,
		Workers:              newWorkers(logger),
		Middleware:           middleware,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: cfg.RescueStuckJobsAfter,
		FetchPollInterval:    cfg.FetchPollInterval,
	})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	if err := client.Start(context.Background()); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	logger.Info("worker started", "client_id", client.ID(), "queues", cfg.Queues,
		"heartbeat_store", cfg.HeartbeatStore, "heartbeat_interval", cfg.HeartbeatInterval.String())

	reason := waitForStop(ctx, cfg, client, active, logger)
	logger.Info("worker stopping", "reason", reason)
	return shutdown(client, cfg.ShutdownTimeout, logger)
}

// waitForStop blocks until a signal arrives or the worker has been idle for
// EXIT_WHEN_IDLE, and says which.
func waitForStop(ctx context.Context, cfg runConfig, client *river.Client[pgx.Tx], active *activeJobs, logger *slog.Logger) string {
	if cfg.ExitWhenIdle <= 0 {
		<-ctx.Done()
		return "signal"
	}
	poll := time.NewTicker(500 * time.Millisecond)
	defer poll.Stop()
	var idleSince time.Time
	for {
		select {
		case <-ctx.Done():
			return "signal"
		case <-poll.C:
		}
		idle, err := isIdle(ctx, cfg, client, active)
		if err != nil {
			logger.Warn("idle check failed", "error", err)
			idle = false
		}
		switch {
		case !idle:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) >= cfg.ExitWhenIdle:
			return "idle for " + cfg.ExitWhenIdle.String()
		}
	}
}

// isIdle: nothing running in this process and nothing available in its queues.
func isIdle(ctx context.Context, cfg runConfig, client *river.Client[pgx.Tx], active *activeJobs) (bool, error) {
	if active.count.Load() > 0 {
		return false, nil
	}
	res, err := client.JobList(ctx, river.NewJobListParams().
		Queues(cfg.Queues...).
		States(rivertype.JobStateAvailable).
		First(1))
	if err != nil {
		return false, err
	}
	return len(res.Jobs) == 0 && active.count.Load() == 0, nil
}

// shutdown stops River gracefully (running jobs may finish), then cancels the
// jobs still running after the timeout.
func shutdown(client *river.Client[pgx.Tx], timeout time.Duration, logger *slog.Logger) error {
	softCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := client.Stop(softCtx)
	if err == nil {
		logger.Info("worker stopped")
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop river client: %w", err)
	}
	logger.Warn("jobs still running after the shutdown timeout; cancelling them", "timeout", timeout.String())
	hardCtx, cancelHard := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelHard()
	if err := client.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("jobs ignored cancellation; exiting with them still running: %w", err)
	}
	logger.Info("worker stopped after cancelling jobs")
	return nil
}

// activeJobs counts jobs being worked in this process, for EXIT_WHEN_IDLE.
type activeJobs struct {
	river.MiddlewareDefaults
	count atomic.Int64
}

func (a *activeJobs) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	a.count.Add(1)
	defer a.count.Add(-1)
	return doInner(ctx)
}
