package heartbeat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

type rowsDone struct {
	Rows   int    `json:"rows"`
	Cursor string `json:"cursor"`
}

func TestResumeFromDecodesTheLastCheckpointIntoTheWorkersType(t *testing.T) {
	job := &rivertype.JobRow{ID: 7, Metadata: []byte(`{"tenant": "a", "lifeguard:resume":
		{"attempt": 2, "progress": {"rows": 30, "cursor": "k-30"}, "at": "2026-11-30T23:00:01.5Z"}}`)}

	var done rowsDone
	ok, err := ResumeFrom(job, &done)
	if err != nil || !ok {
		t.Fatalf("ResumeFrom: ok=%v err=%v", ok, err)
	}
	if done != (rowsDone{Rows: 30, Cursor: "k-30"}) {
		t.Fatalf("decoded %+v", done)
	}
	checkpoint, ok, err := LastCheckpoint(job)
	if err != nil || !ok {
		t.Fatalf("LastCheckpoint: ok=%v err=%v", ok, err)
	}
	want := time.Date(2026, 11, 30, 23, 0, 1, 500_000_000, time.UTC)
	if checkpoint.Attempt != 2 || !checkpoint.At.Equal(want) {
		t.Fatalf("checkpoint %+v", checkpoint)
	}
}

func TestResumeFromWithoutACheckpointLeavesTheProgressUntouched(t *testing.T) {
	for name, metadata := range map[string]string{
		"no metadata":      ``,
		"empty object":     `{}`,
		"other keys":       `{"tenant": "a"}`,
		"null key":         `{"lifeguard:resume": null}`,
		"null progress":    `{"lifeguard:resume": {"attempt": 1, "progress": null, "at": "2026-01-01T00:00:00Z"}}`,
		"missing progress": `{"lifeguard:resume": {"attempt": 1, "at": "2026-01-01T00:00:00Z"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			done := rowsDone{Rows: -1}
			ok, err := ResumeFrom(&rivertype.JobRow{ID: 1, Metadata: []byte(metadata)}, &done)
			if err != nil || ok {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if done.Rows != -1 {
				t.Fatalf("progress changed: %+v", done)
			}
		})
	}
}

func TestResumeFromNamesTheJobWhenACheckpointCannotBeRead(t *testing.T) {
	for name, tc := range map[string]struct{ metadata, want string }{
		"metadata":   {`not json`, "job 9 metadata"},
		"checkpoint": {`{"lifeguard:resume": "yesterday"}`, `job 9 metadata "lifeguard:resume"`},
		"progress":   {`{"lifeguard:resume": {"attempt": 3, "progress": {"rows": "many"}}}`, "job 9: decode the progress of attempt 3"},
	} {
		t.Run(name, func(t *testing.T) {
			var done rowsDone
			ok, err := ResumeFrom(&rivertype.JobRow{ID: 9, Metadata: []byte(tc.metadata)}, &done)
			if ok || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ok=%v err=%v, want an error containing %q", ok, err, tc.want)
			}
		})
	}
	if _, err := ResumeFrom(nil, &rowsDone{}); err != ErrNoJob {
		t.Fatalf("nil job: %v", err)
	}
}

type resumeArgs struct{}

func (resumeArgs) Kind() string { return "resume" }

// resumeWorker hands what ResumeFrom found in Work to the test.
type resumeWorker struct {
	river.WorkerDefaults[resumeArgs]
	resumed chan rowsDone
}

func (w *resumeWorker) Work(ctx context.Context, job *river.Job[resumeArgs]) error {
	var done rowsDone
	ok, err := ResumeFrom(job.JobRow, &done)
	if err != nil || !ok {
		return fmt.Errorf("ResumeFrom in Work: ok=%v err=%w", ok, err)
	}
	w.resumed <- done
	return nil
}

// A real River client hands Work the metadata Lifeguard wrote: the checkpoint
// reaches the next attempt through River's own fetch.
func TestAWorkerReadsTheCheckpointThroughRiversFetch(t *testing.T) {
	env := newTestEnv(t)
	env.migrateHeartbeat(t)
	w := &resumeWorker{resumed: make(chan rowsDone, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client := env.startClient(t, env.middleware(t, Config{Interval: time.Second}), workers)

	_, err := client.Insert(context.Background(), resumeArgs{}, &river.InsertOpts{Metadata: []byte(
		`{"lifeguard:resume": {"attempt": 1, "progress": {"rows": 41}, "at": "2026-11-30T23:00:00Z"}}`)})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	select {
	case done := <-w.resumed:
		if done.Rows != 41 {
			t.Fatalf("resumed from %+v", done)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the job did not run within 15s")
	}
}
