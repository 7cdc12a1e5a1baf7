package heartbeat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProgressIsRecordedCoalescedAndFlushedWhenWorkReturns(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	// Every write of progress_at lands in an audit table, so the test counts
	// the database writes, not just the final state.
	env.exec(t, `CREATE TABLE `+env.table("progress_writes")+` (progress jsonb, progress_at timestamptz)`)
	env.exec(t, `CREATE FUNCTION `+env.table("audit_progress")+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.progress_at IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.progress_at IS DISTINCT FROM OLD.progress_at) THEN
				INSERT INTO `+env.table("progress_writes")+` VALUES (NEW.progress, NEW.progress_at);
			END IF;
			RETURN NEW;
		END $$`)
	env.exec(t, `CREATE TRIGGER audit_progress AFTER INSERT OR UPDATE ON `+env.table(TableName)+
		` FOR EACH ROW EXECUTE FUNCTION `+env.table("audit_progress")+`()`)

	worker := newBlockWorker()
	burstDone := make(chan time.Time, 1)
	worker.before = func(ctx context.Context) {
		// 30 reports over 1.5 s: far more often than once a second.
		for n := range 30 {
			if err := Progress(ctx, map[string]int{"n": n}); err != nil {
				t.Errorf("Progress: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		burstDone <- time.Now()
	}
	worker.after = func(ctx context.Context) {
		// Reported right before returning: only the end-of-Work flush can write it.
		_ = Progress(ctx, map[string]string{"n": "last"})
	}
	// Beats far apart: progress must not wait for the next beat.
	mw := env.middleware(t, Config{Interval: time.Minute})
	mw.sweeper.every = time.Hour // keep the row after the job ends, to read the last flush
	client := env.startClient(t, mw, worker.workers())
	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	burstAt := <-burstDone

	eventually(t, 5*time.Second, "the burst's latest payload", func() bool {
		row, ok := env.heartbeat(t, jobID)
		return ok && jsonEqual(t, row.Progress, `{"n": 29}`)
	})
	if waited := time.Since(burstAt); waited > 3*time.Second {
		t.Errorf("the latest payload took %s to be written; want within about a second", waited)
	}
	writes := env.progressWrites(t)
	if len(writes) < 2 || len(writes) > 3 {
		t.Fatalf("30 calls over 1.5s made %d progress writes; want 2 or 3 (at most one a second)", len(writes))
	}
	for i := 1; i < len(writes); i++ {
		// A second apart on the worker's clock; the database's timestamps
		// can squeeze that by one write's latency, never to the 50 ms of the calls.
		if gap := writes[i].Sub(writes[i-1]); gap < 500*time.Millisecond {
			t.Errorf("progress writes %d and %d are %s apart; want at most one a second", i-1, i, gap)
		}
	}

	close(worker.release)
	eventually(t, 5*time.Second, "the job to complete", func() bool { return env.jobState(t, jobID) == "completed" })
	row, _ := env.heartbeat(t, jobID)
	if !jsonEqual(t, row.Progress, `{"n": "last"}`) {
		t.Errorf("progress %s after Work returned; want the payload reported just before returning", row.Progress)
	}
	if row.ProgressAt == nil || row.ProgressAt.After(row.BeatAt) {
		t.Errorf("progress_at %v should be set, and not after the last beat %s", row.ProgressAt, row.BeatAt)
	}
}

func TestProgressReportsMisuseWithoutFailingTheJob(t *testing.T) {
	t.Parallel()
	if err := Progress(context.Background(), 1); !errors.Is(err, ErrNotInJob) {
		t.Errorf("Progress outside a job = %v; want ErrNotInJob", err)
	}

	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	worker := newBlockWorker()
	var tooLarge, unencodable error
	var jobCtx context.Context
	worker.before = func(ctx context.Context) {
		jobCtx = ctx
		tooLarge = Progress(ctx, strings.Repeat("x", MaxProgressBytes))
		unencodable = Progress(ctx, func() {})
	}
	client := env.startClient(t, env.middleware(t, Config{Interval: time.Minute}), worker.workers())
	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	if !errors.Is(tooLarge, ErrProgressTooLarge) {
		t.Errorf("an oversized payload = %v; want ErrProgressTooLarge", tooLarge)
	}
	if unencodable == nil {
		t.Error("a payload JSON cannot encode was accepted")
	}
	eventually(t, 3*time.Second, "progress recorded without the oversized payload", func() bool {
		row, ok := env.heartbeat(t, jobID)
		return ok && row.ProgressAt != nil && row.Progress == nil
	})
	close(worker.release)
	eventually(t, 5*time.Second, "the job to complete", func() bool { return env.jobState(t, jobID) == "completed" })
	if err := Progress(jobCtx, 1); !errors.Is(err, ErrJobReturned) {
		t.Errorf("Progress after Work returned = %v; want ErrJobReturned", err)
	}
}

func (e *testEnv) progressWrites(t *testing.T) []time.Time {
	t.Helper()
	rows, err := e.pool.Query(context.Background(),
		`SELECT progress_at FROM `+e.table("progress_writes")+` ORDER BY progress_at`)
	if err != nil {
		t.Fatalf("progress writes: %v", err)
	}
	defer rows.Close()
	var at []time.Time
	for rows.Next() {
		var ts time.Time
		if err := rows.Scan(&ts); err != nil {
			t.Fatal(err)
		}
		at = append(at, ts)
	}
	return at
}
