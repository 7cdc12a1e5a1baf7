package heartbeat

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

func TestAnOldAttemptCannotOverwriteTheNewAttemptsBeat(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	interval := 100 * time.Millisecond
	worker := newBlockWorker()
	mw := env.middleware(t, Config{Interval: interval})
	client := env.startClient(t, mw, worker.workers())
	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	eventually(t, 5*time.Second, "the first beat", func() bool { _, ok := env.heartbeat(t, jobID); return ok })

	// Another client fetches the job anew (as after a rescue), while the old
	// worker's Work is still running and beating.
	var newAttemptedAt time.Time
	err := env.pool.QueryRow(context.Background(), `UPDATE `+env.table("river_job")+`
		SET attempt = attempt + 1, attempted_at = now(), attempted_by = attempted_by || 'newer-client'::text
		WHERE id = $1 RETURNING attempted_at`, jobID).Scan(&newAttemptedAt)
	if err != nil {
		t.Fatalf("simulate a new attempt: %v", err)
	}
	applied, err := mw.writer.write(context.Background(), env.pool,
		beat{jobID: jobID, attempt: 2, attemptedAt: &newAttemptedAt, clientID: "newer-client"})
	if err != nil || !applied {
		t.Fatalf("the new attempt's beat: applied=%v err=%v", applied, err)
	}
	newer, _ := env.heartbeat(t, jobID)

	time.Sleep(5 * interval) // the old worker keeps beating all along
	now, _ := env.heartbeat(t, jobID)
	if now.Attempt != 2 || now.ClientID != "newer-client" || !now.BeatAt.Equal(newer.BeatAt) {
		t.Errorf("old attempt refreshed the new one: row is attempt %d client %q beat %s; want 2 %q %s",
			now.Attempt, now.ClientID, now.BeatAt, "newer-client", newer.BeatAt)
	}
	close(worker.release)
}

// TestTheUpsertNeverMovesBackToAnOlderAttempt covers the race the job fence
// alone cannot: the old attempt passed the fence, but the newer attempt's row
// was committed before its upsert ran.
func TestTheUpsertNeverMovesBackToAnOlderAttempt(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	jobID, attemptedAt := env.runningJob(t, 1)
	env.exec(t, `INSERT INTO `+env.table(TableName)+` (job_id, attempt, client_id, beat_at)
		VALUES ($1, 2, 'newer-client', now() - interval '1 minute')`, jobID)
	before, _ := env.heartbeat(t, jobID)

	applied := env.write(t, Table(), beat{jobID: jobID, attempt: 1, attemptedAt: &attemptedAt,
		clientID: "old-client", hasProgress: true, progress: []byte(`{"n":1}`)})
	after, _ := env.heartbeat(t, jobID)
	if applied || after.Attempt != 2 || after.ClientID != "newer-client" || !after.BeatAt.Equal(before.BeatAt) || after.ProgressAt != nil {
		t.Errorf("old attempt's upsert applied=%v and left attempt %d client %q beat %s progress_at %v",
			applied, after.Attempt, after.ClientID, after.BeatAt, after.ProgressAt)
	}
}

func TestANewRunStartsWithoutTheOldRunsProgress(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	jobID, firstRun := env.runningJob(t, 1)
	if !env.write(t, Table(), beat{jobID: jobID, attempt: 1, attemptedAt: &firstRun, clientID: "test-client",
		hasProgress: true, progress: []byte(`{"rows": 10}`)}) {
		t.Fatal("the first run's progress was not written")
	}
	// The same client fetches the job again with the same attempt number (an
	// operator refunded the attempt): a new run, whose logic has not moved yet.
	var secondRun time.Time
	err := env.pool.QueryRow(context.Background(), `UPDATE `+env.table("river_job")+`
		SET attempted_at = now() WHERE id = $1 RETURNING attempted_at`, jobID).Scan(&secondRun)
	if err != nil {
		t.Fatal(err)
	}
	if !env.write(t, Table(), beat{jobID: jobID, attempt: 1, attemptedAt: &secondRun, clientID: "test-client"}) {
		t.Fatal("the second run's beat was not written")
	}
	row, _ := env.heartbeat(t, jobID)
	if row.ProgressAt != nil || row.Progress != nil {
		t.Errorf("the new run inherited progress_at %v progress %s", row.ProgressAt, row.Progress)
	}
	// Within one run, a beat keeps the progress.
	if !env.write(t, Table(), beat{jobID: jobID, attempt: 1, attemptedAt: &secondRun, clientID: "test-client",
		hasProgress: true, progress: []byte(`{"rows": 1}`)}) ||
		!env.write(t, Table(), beat{jobID: jobID, attempt: 1, attemptedAt: &secondRun, clientID: "test-client"}) {
		t.Fatal("the second run's writes were not applied")
	}
	if row, _ := env.heartbeat(t, jobID); row.ProgressAt == nil || !jsonEqual(t, row.Progress, `{"rows": 1}`) {
		t.Errorf("a beat dropped this run's progress: progress_at %v progress %s", row.ProgressAt, row.Progress)
	}
}

func TestNothingIsWrittenForAJobNoLongerRunningWithThisAttempt(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	earlier := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)

	cases := []struct {
		name  string
		setup func(t *testing.T) beat
	}{
		{"never fetched (available)", func(t *testing.T) beat {
			job := insertJob(t, env.insertOnlyClient(t), nil)
			return beat{jobID: job.ID, attempt: 0, clientID: "c"}
		}},
		{"completed", func(t *testing.T) beat {
			jobID, at := env.runningJob(t, 1)
			env.exec(t, `UPDATE `+env.table("river_job")+` SET state = 'completed', finalized_at = now() WHERE id = $1`, jobID)
			return beat{jobID: jobID, attempt: 1, attemptedAt: &at, clientID: "c"}
		}},
		{"cancelled", func(t *testing.T) beat {
			jobID, at := env.runningJob(t, 1)
			env.exec(t, `UPDATE `+env.table("river_job")+` SET state = 'cancelled', finalized_at = now() WHERE id = $1`, jobID)
			return beat{jobID: jobID, attempt: 1, attemptedAt: &at, clientID: "c"}
		}},
		{"rescued to retryable", func(t *testing.T) beat {
			jobID, at := env.runningJob(t, 1)
			env.exec(t, `UPDATE `+env.table("river_job")+` SET state = 'retryable' WHERE id = $1`, jobID)
			return beat{jobID: jobID, attempt: 1, attemptedAt: &at, clientID: "c"}
		}},
		{"running a newer attempt", func(t *testing.T) beat {
			jobID, at := env.runningJob(t, 3)
			return beat{jobID: jobID, attempt: 2, attemptedAt: &at, clientID: "c"}
		}},
		{"running the same attempt number fetched again", func(t *testing.T) beat {
			jobID, _ := env.runningJob(t, 2)
			return beat{jobID: jobID, attempt: 2, attemptedAt: &earlier, clientID: "c"}
		}},
	}
	stores := []struct {
		name  string
		store Store
	}{{"table", Table()}, {"metadata", Metadata("health_check_at")}}

	for _, tc := range cases {
		for _, st := range stores {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				b := tc.setup(t)
				b.hasProgress, b.progress = true, []byte(`{"step":1}`)
				before := env.metadata(t, b.jobID)
				applied := env.write(t, st.store, b)
				if applied {
					t.Errorf("write applied to a job not running with attempt %d", b.attempt)
				}
				if _, ok := env.heartbeat(t, b.jobID); ok {
					t.Errorf("a heartbeat row was written")
				}
				if after := env.metadata(t, b.jobID); !bytes.Equal(before, after) {
					t.Errorf("metadata changed from %s to %s", before, after)
				}
			})
		}
	}
}

func TestMetadataStoreWritesOnlyItsKeysAsRFC3339Strings(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	// No Migrate: the metadata store must not need (or touch) the table.
	worker := newBlockWorker()
	worker.before = func(ctx context.Context) {
		if err := Progress(ctx, map[string]int{"step": 7}); err != nil {
			t.Errorf("Progress: %v", err)
		}
	}
	mw := env.middleware(t, Config{Interval: 100 * time.Millisecond, Store: Metadata("health_check_at")})
	client := env.startClient(t, mw, worker.workers())
	job := insertJob(t, client, &river.InsertOpts{Metadata: []byte(`{"owner": "billing"}`)})
	worker.waitStarted(t)

	var metadata map[string]json.RawMessage
	eventually(t, 5*time.Second, "progress in the metadata", func() bool {
		metadata = nil
		if err := json.Unmarshal(env.metadata(t, job.ID), &metadata); err != nil {
			t.Fatalf("metadata: %v", err)
		}
		return metadata["health_check_at_progress"] != nil
	})
	var inserted map[string]json.RawMessage
	if err := json.Unmarshal(job.Metadata, &inserted); err != nil {
		t.Fatalf("inserted metadata: %v", err)
	}
	want := []string{"health_check_at", "health_check_at_progress", "health_check_at_progress_at"}
	for key := range inserted {
		want = append(want, key)
	}
	var got []string
	for key := range metadata {
		got = append(got, key)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("metadata keys %v; want %v", got, want)
	}
	if string(metadata["owner"]) != `"billing"` {
		t.Errorf("owner = %s; the store clobbered a foreign key", metadata["owner"])
	}
	if !jsonEqual(t, metadata["health_check_at_progress"], `{"step": 7}`) {
		t.Errorf("progress = %s", metadata["health_check_at_progress"])
	}
	dbNow := env.dbNow(t)
	for _, key := range []string{"health_check_at", "health_check_at_progress_at"} {
		var s string
		if err := json.Unmarshal(metadata[key], &s); err != nil {
			t.Fatalf("%s = %s: not a JSON string: %v", key, metadata[key], err)
		}
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%s = %q: not RFC 3339: %v", key, s, err)
		}
		if age := dbNow.Sub(at); age < 0 || age > 5*time.Second {
			t.Errorf("%s = %s is %s before the database's now()", key, s, age)
		}
	}
	var table *string
	if err := env.pool.QueryRow(context.Background(), `SELECT to_regclass($1)::text`, env.table(TableName)).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if table != nil {
		t.Errorf("the metadata store created %s", *table)
	}
	close(worker.release)
}

func TestACustomSchemaWithAnOddNameWorks(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withOddSchema(`life guard "é"`))
	env.migrateHeartbeat(t)
	env.migrateHeartbeat(t) // idempotent
	worker := newBlockWorker()
	worker.before = func(ctx context.Context) { _ = Progress(ctx, "halfway") }
	for _, store := range []Store{Table(), Metadata(`health "check" é`)} {
		client := env.startClient(t, env.middleware(t, Config{Interval: 100 * time.Millisecond, Store: store}), worker.workers())
		jobID := insertJob(t, client, nil).ID
		worker.waitStarted(t)
		worker.release <- struct{}{}
		eventually(t, 5*time.Second, "the job to complete", func() bool { return env.jobState(t, jobID) == "completed" })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = client.Stop(ctx)
		cancel()
		if _, isTable := store.(tableStore); isTable {
			row, ok := env.heartbeat(t, jobID)
			if !ok || !jsonEqual(t, row.Progress, `"halfway"`) {
				t.Errorf("table store in %q: row found=%v progress=%s", env.schema, ok, row.Progress)
			}
			continue
		}
		var metadata map[string]json.RawMessage
		_ = json.Unmarshal(env.metadata(t, jobID), &metadata)
		if metadata[`health "check" é`] == nil || !jsonEqual(t, metadata[`health "check" é_progress`], `"halfway"`) {
			t.Errorf("metadata store in %q wrote %v", env.schema, metadata)
		}
	}
}

func TestTheSearchPathSchemaIsUsedWhenSchemaIsEmpty(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, viaSearchPath())
	env.migrateHeartbeat(t) // with schema "": lands on the search path
	worker := newBlockWorker()
	client := env.startClient(t, env.middleware(t, Config{Interval: 100 * time.Millisecond}), worker.workers())
	jobID := insertJob(t, client, nil).ID
	worker.waitStarted(t)
	eventually(t, 5*time.Second, "a beat in the search path's schema", func() bool {
		_, ok := env.heartbeat(t, jobID) // reads the schema-qualified table
		return ok
	})
	close(worker.release)
}

// runningJob inserts a job and puts it in the state River's fetch leaves it
// in: running, with the given attempt and a fresh attempted_at.
func (e *testEnv) runningJob(t *testing.T, attempt int) (int64, time.Time) {
	t.Helper()
	job := insertJob(t, e.insertOnlyClient(t), nil)
	var attemptedAt time.Time
	err := e.pool.QueryRow(context.Background(), `UPDATE `+e.table("river_job")+`
		SET state = 'running', attempt = $2, attempted_at = now(), attempted_by = '{test-client}'
		WHERE id = $1 RETURNING attempted_at`, job.ID, attempt).Scan(&attemptedAt)
	if err != nil {
		t.Fatalf("make job %d running: %v", job.ID, err)
	}
	return job.ID, attemptedAt
}

func (e *testEnv) insertOnlyClient(t *testing.T) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := river.NewClient(riverDriver(e.pool), &river.Config{Schema: e.clientSchema})
	if err != nil {
		t.Fatalf("insert-only client: %v", err)
	}
	return client
}

// write performs one write through store's writer bound to the test's schema.
func (e *testEnv) write(t *testing.T, store Store, b beat) (applied bool) {
	t.Helper()
	w, err := store.writer(e.hbSchema)
	if err != nil {
		t.Fatalf("writer: %v", err)
	}
	applied, err = w.write(context.Background(), e.pool, b)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return applied
}

func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
