// Package heartbeat is River Lifeguard's worker side: a River worker
// middleware that proves, with two heartbeats written by the database's own
// clock, that a running job's process is alive and that its logic advances.
//
//   - The beat (beat_at) is written every Config.Interval while Work runs: the
//     first at the start of Work, the last when Work returns. It proves the
//     process is alive, not that the work moves.
//   - Progress (progress_at and a small JSON payload) is written when worker
//     code calls Progress. It proves the business logic advances.
//
// Every write is fenced on the job row: it applies only while the job is
// still running with the attempt (and attempted_at) this worker fetched, so a
// worker that lost its job can never refresh the heartbeat of whoever runs it
// now, and nothing is written for a job that is no longer running. A failed
// write never fails the job; it is logged and retried at the next beat.
//
// Two stores: Table (the default) keeps heartbeats in a narrow side table,
// <schema>.river_job_heartbeat, created by Migrate; Metadata(key) writes them
// into river_job.metadata, compatible with workers that already write a key
// such as health_check_at, at the cost of rewriting the whole job row (and its
// GIN-indexed metadata) on every beat.
//
// The Table store's row of a job is removed once its Work has returned and
// River has recorded the outcome, so the table holds about one row per
// running job; the operator prunes the rows of workers that died mid-job.
//
// Usage:
//
//	mw, err := heartbeat.NewMiddleware(pool, heartbeat.Config{Schema: schema})
//	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Schema:     schema,
//		Middleware: []rivertype.Middleware{mw},
//		...
//	})
//
// and, in a worker's Work:
//
//	_ = heartbeat.Progress(ctx, map[string]any{"rows": n})
package heartbeat
