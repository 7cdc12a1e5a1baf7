package heartbeat

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBeatsAppearWhileWorkRunsAndStopWhenItReturns(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	interval := 150 * time.Millisecond
	worker := newBlockWorker()
	mw := env.middleware(t, Config{Interval: interval})
	// The row outlives the job here, so the last beat can be read (sweep_test.go
	// covers its removal).
	mw.sweeper.every = time.Hour
	client := env.startClient(t, mw, worker.workers())

	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)

	// Several distinct beats while the job runs, each by the database clock.
	beats := map[time.Time]bool{}
	eventually(t, 5*time.Second, "three distinct beats", func() bool {
		if row, ok := env.heartbeat(t, jobID); ok {
			beats[row.BeatAt] = true
		}
		return len(beats) >= 3
	})
	row, _ := env.heartbeat(t, jobID)
	if row.Attempt != 1 || row.ClientID != client.ID() {
		t.Errorf("row has attempt %d client %q; want attempt 1 client %q", row.Attempt, row.ClientID, client.ID())
	}
	if age := row.DBNow.Sub(row.BeatAt); age < 0 || age > 2*time.Second {
		t.Errorf("beat age %s while running; want within a few intervals of %s", age, interval)
	}

	releasedAt := env.dbNow(t)
	close(worker.release)
	eventually(t, 5*time.Second, "the job to complete", func() bool { return env.jobState(t, jobID) == "completed" })

	final, _ := env.heartbeat(t, jobID)
	if final.BeatAt.Before(releasedAt) {
		t.Errorf("last beat at %s is before Work returned (released at %s): no beat when Work returned",
			final.BeatAt, releasedAt)
	}
	time.Sleep(4 * interval)
	after, _ := env.heartbeat(t, jobID)
	if !after.BeatAt.Equal(final.BeatAt) {
		t.Errorf("beat_at moved from %s to %s after the job finished: beats did not stop", final.BeatAt, after.BeatAt)
	}
}

func TestTheFirstBeatIsWrittenBeforeTheJobsCodeRuns(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	worker := newBlockWorker()
	beatsAtStart := make(chan int, 1)
	worker.before = func(ctx context.Context) {
		// A job that freezes its process right here must already have a beat.
		var n int
		if err := env.pool.QueryRow(ctx, `SELECT count(*) FROM `+env.table(TableName)).Scan(&n); err != nil {
			t.Errorf("count beats: %v", err)
		}
		beatsAtStart <- n
	}
	client := env.startClient(t, env.middleware(t, Config{Interval: time.Minute}), worker.workers())
	insertJob(t, client, nil)
	worker.waitStarted(t)
	if n := <-beatsAtStart; n != 1 {
		t.Errorf("%d beats when the job's code started; want 1", n)
	}
	close(worker.release)
}

func TestBeatsGoOnWhileAJobDeafToCancellationStillRuns(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	interval := 100 * time.Millisecond
	worker := newBlockWorker()
	worker.deaf = true
	cancelled := make(chan struct{})
	worker.before = func(ctx context.Context) {
		go func() { <-ctx.Done(); close(cancelled) }()
	}
	client := env.startClient(t, env.middleware(t, Config{Interval: interval}), worker.workers())
	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)

	if _, err := client.JobCancel(context.Background(), jobID); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the job's context was not cancelled")
	}
	// The context is gone but Work still runs: the process is alive, and the
	// beat must keep saying so (the operator judges such a job Overdue or
	// Stuck, never dead).
	cancelledAt := env.dbNow(t)
	eventually(t, 5*time.Second, "beats after the job's context was cancelled", func() bool {
		row, ok := env.heartbeat(t, jobID)
		return ok && row.BeatAt.After(cancelledAt.Add(2*interval))
	})
	close(worker.release)
	eventually(t, 5*time.Second, "the job to finish", func() bool { return env.jobState(t, jobID) != "running" })
}

func TestAFailedBeatIsLoggedAndNeverFailsTheJob(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	// No Migrate: every write to the heartbeat table fails.
	var logs lockedBuffer
	worker := newBlockWorker()
	mw := env.middleware(t, Config{Interval: 50 * time.Millisecond, Logger: testLogger(t, &logs)})
	client := env.startClient(t, mw, worker.workers())

	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	eventually(t, 5*time.Second, "a logged write failure", func() bool {
		return strings.Contains(logs.String(), "heartbeat: write failed")
	})
	close(worker.release)
	eventually(t, 5*time.Second, "the job to complete despite failing beats", func() bool {
		return env.jobState(t, jobID) == "completed"
	})
	if !strings.Contains(logs.String(), "job_id="+strconv.FormatInt(jobID, 10)) {
		t.Errorf("failure log does not name the job: %s", logs.String())
	}
}
