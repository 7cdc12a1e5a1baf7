package heartbeat

import (
	"context"
	"testing"
	"time"
)

func TestTheRowOfAnEndedRunIsRemovedOnlyOnceRiverRecordedTheOutcome(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	jobs := env.table("river_job")

	cases := []struct {
		name string
		// setup leaves a heartbeat row of attempt 2 and returns the ended run;
		// then it may move the job on.
		setup       func(t *testing.T) endedRun
		wantRow     bool // the row is still there after the sweep
		wantSettled bool // the run no longer waits for its row's removal
	}{
		{"still running (River's completer has not run yet)", func(t *testing.T) endedRun {
			return env.endedRun(t, "")
		}, true, false},
		{"completed", func(t *testing.T) endedRun {
			return env.endedRun(t, `UPDATE `+jobs+` SET state = 'completed', finalized_at = now() WHERE id = $1`)
		}, false, true},
		{"failed, retryable by River", func(t *testing.T) endedRun {
			return env.endedRun(t, `UPDATE `+jobs+` SET state = 'retryable' WHERE id = $1`)
		}, false, true},
		{"retried and running a newer attempt", func(t *testing.T) endedRun {
			return env.endedRun(t, `UPDATE `+jobs+` SET attempt = 3, attempted_at = now() WHERE id = $1`)
		}, true, true},
		{"refunded and running the same attempt number again", func(t *testing.T) endedRun {
			return env.endedRun(t, `UPDATE `+jobs+` SET attempted_at = now() + interval '1 second' WHERE id = $1`)
		}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := tc.setup(t)
			s := newSweeper(env.pool, env.hbSchema, testLogger(t, nil))
			settled, err := s.sweep(context.Background(), []endedRun{run})
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			if _, ok := env.heartbeat(t, run.jobID); ok != tc.wantRow {
				t.Errorf("row present %v after the sweep; want %v", ok, tc.wantRow)
			}
			if settled[run.jobID] != tc.wantSettled {
				t.Errorf("settled %v; want %v", settled[run.jobID], tc.wantSettled)
			}
		})
	}
}

func TestAWorkersTableHoldsOnlyRowsOfRunningJobs(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	worker := newBlockWorker()
	mw := env.middleware(t, Config{Interval: 100 * time.Millisecond})
	mw.sweeper.every = 50 * time.Millisecond
	client := env.startClient(t, mw, worker.workers())

	finished := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	running := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	if _, ok := env.heartbeat(t, finished); !ok {
		t.Fatal("no row while the job runs")
	}
	worker.release <- struct{}{} // one of the two returns
	eventually(t, 10*time.Second, "one job to complete", func() bool {
		return env.jobState(t, finished) == "completed" || env.jobState(t, running) == "completed"
	})
	if env.jobState(t, finished) != "completed" {
		finished, running = running, finished
	}
	eventually(t, 10*time.Second, "the completed job's row to go", func() bool {
		_, ok := env.heartbeat(t, finished)
		return !ok
	})
	if _, ok := env.heartbeat(t, running); !ok {
		t.Error("the running job's row went too")
	}
	eventually(t, 5*time.Second, "the sweeper to be idle", func() bool { return mw.sweeper.pendingCount() == 0 })
	close(worker.release)
}

// endedRun makes a running job (attempt 2) with a heartbeat row, then runs
// move (if any) on it, as River or the operator would after its Work returned.
func (e *testEnv) endedRun(t *testing.T, move string) endedRun {
	t.Helper()
	jobID, at := e.runningJob(t, 2)
	if !e.write(t, Table(), beat{jobID: jobID, attempt: 2, attemptedAt: &at, clientID: "test-client"}) {
		t.Fatal("the beat was not written")
	}
	if move != "" {
		e.exec(t, move, jobID)
	}
	return endedRun{jobID: jobID, attempt: 2, attemptedAt: &at, endedAt: time.Now()}
}

// pendingCount is how many ended runs still wait for their row's removal.
func (s *sweeper) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
