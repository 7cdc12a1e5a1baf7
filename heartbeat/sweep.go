package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// A job's heartbeat row is removed once its Work has returned and River has
// recorded the outcome, so the table holds about one row per running job.
//
// Not in the round trip of the last beat, although that would be cheaper:
// River's completer records the outcome only after the middleware returns
// (batched, every 50 ms or so, longer while the database struggles), and in
// that window the job row is still `running`. A running job without a
// heartbeat row reads, to the operator, as a worker that took a job and never
// beat: it would restart the pod or retry a job that had just finished. So
// the row stays until the job no longer runs with this attempt, and the
// middleware removes the rows of all its jobs that ended in one statement,
// about once a second. Rows left behind by a worker that died (or stopped
// before the sweep) are the operator's to prune.
const (
	// sweepEvery is how long an ended job waits before its row is removed,
	// and the period of the sweeps while rows are pending.
	sweepEvery = time.Second
	// sweepBatch bounds one statement.
	sweepBatch = 1000
	// maxPending bounds the memory of a client whose database is down; the
	// oldest entries beyond it are left to the operator's pruning.
	maxPending = 10_000
	// sweepGiveUp: a job still running this long after its Work returned has
	// an outcome River could not record (a stopped client); the operator
	// prunes its row once the job moves on.
	sweepGiveUp = time.Minute
)

// endedRun is one run of a job whose Work has returned.
type endedRun struct {
	jobID       int64
	attempt     int
	attemptedAt *time.Time
	endedAt     time.Time
}

// sweeper removes the heartbeat rows of ended runs, in the background, while
// any are pending; it has no goroutine when nothing is pending.
type sweeper struct {
	db     DB
	sql    string
	logger *slog.Logger
	every  time.Duration

	mu      sync.Mutex
	pending []endedRun
	active  bool // a sweeping goroutine runs
	failing bool // the last sweep failed (logged once per failing streak)
}

func newSweeper(db DB, schema string, logger *slog.Logger) *sweeper {
	heartbeats := qualified(schema, TableName)
	jobs := qualified(schema, "river_job")
	// settled: runs that no longer run (the job finished, failed, was
	// rescued, or another fetch runs it now). The row is deleted only when
	// the job runs no attempt at all: a new run may already own the row (an
	// attempt number repeats after an operator's refund), and it cleans up
	// after itself. The DELETE runs even though only settled is selected:
	// PostgreSQL always executes a data-modifying WITH clause.
	statement := fmt.Sprintf(`WITH ended AS (
	SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) AS e(job_id, attempt, attempted_at)
), settled AS (
	SELECT e.job_id, e.attempt FROM ended AS e
	WHERE NOT EXISTS (
		SELECT 1 FROM %[2]s AS j
		WHERE j.id = e.job_id AND j.state = 'running' AND j.attempt = e.attempt
			AND (e.attempted_at IS NULL OR j.attempted_at = e.attempted_at))
), removed AS (
	DELETE FROM %[1]s AS hb USING settled AS s
	WHERE hb.job_id = s.job_id AND hb.attempt = s.attempt
		AND NOT EXISTS (SELECT 1 FROM %[2]s AS j WHERE j.id = s.job_id AND j.state = 'running')
	RETURNING hb.job_id
)
SELECT job_id FROM settled`, heartbeats, jobs)
	return &sweeper{db: db, sql: statement, logger: logger, every: sweepEvery}
}

// ended queues the run's row for removal.
func (s *sweeper) ended(run endedRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= maxPending {
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, run)
	if !s.active {
		s.active = true
		go s.loop()
	}
}

func (s *sweeper) loop() {
	for {
		time.Sleep(s.every)
		if !s.sweepOnce(context.Background()) {
			return
		}
	}
}

// sweepOnce runs the statement for up to sweepBatch pending runs; it returns
// false (and marks the sweeper idle) when nothing is left pending.
func (s *sweeper) sweepOnce(ctx context.Context) bool {
	s.mu.Lock()
	now := time.Now()
	kept := s.pending[:0]
	for _, run := range s.pending {
		if now.Sub(run.endedAt) < sweepGiveUp {
			kept = append(kept, run)
		}
	}
	s.pending = kept
	batch := append([]endedRun(nil), s.pending[:min(len(s.pending), sweepBatch)]...)
	if len(batch) == 0 {
		s.active = false
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()

	settled, err := s.sweep(ctx, batch)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && !s.failing:
		s.failing = true
		s.logger.Warn("heartbeat: removing the rows of ended jobs failed; retrying",
			slog.String("error", err.Error()))
	case err == nil && s.failing:
		s.failing = false
		s.logger.Info("heartbeat: removing the rows of ended jobs works again")
	}
	if len(settled) > 0 {
		kept := s.pending[:0]
		for _, run := range s.pending {
			if !settled[run.jobID] {
				kept = append(kept, run)
			}
		}
		s.pending = kept
	}
	return true
}

// sweep removes the rows of the runs in batch that have settled, and returns
// which jobs settled.
func (s *sweeper) sweep(ctx context.Context, batch []endedRun) (map[int64]bool, error) {
	jobIDs := make([]int64, len(batch))
	attempts := make([]int32, len(batch))
	attemptedAt := make([]*time.Time, len(batch))
	for i, run := range batch {
		jobIDs[i], attempts[i], attemptedAt[i] = run.jobID, int32(run.attempt), run.attemptedAt
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := s.db.Query(wctx, s.sql, jobIDs, attempts, attemptedAt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	settled := map[int64]bool{}
	for rows.Next() {
		var jobID int64
		if err := rows.Scan(&jobID); err != nil {
			return nil, err
		}
		settled[jobID] = true
	}
	return settled, rows.Err()
}
