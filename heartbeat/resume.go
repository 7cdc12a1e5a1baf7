package heartbeat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// ResumeKey is the river_job.metadata key where River Lifeguard keeps the
// last progress of an attempt it retried (a dead pod, a lost node, an OOM
// kill), cancelled or discarded, copied in the same fenced statement as the
// action itself: a job a user retries by hand (River's UI, JobRetry) resumes
// too. It outlives the heartbeat row (pruned once the attempt ends) and shows
// in River's UI.
const ResumeKey = "lifeguard:resume"

// Checkpoint is the last progress an earlier attempt of the job reported
// through Progress before Lifeguard retried, cancelled or discarded it.
type Checkpoint struct {
	// Attempt is the attempt that reported the progress.
	Attempt int `json:"attempt"`
	// Progress is the payload given to Progress, as JSON.
	Progress json.RawMessage `json:"progress"`
	// At is when the progress was written (the database's clock).
	At time.Time `json:"at"`
}

// ErrNoJob: ResumeFrom or LastCheckpoint was given a nil job row.
var ErrNoJob = errors.New("heartbeat: no job row to resume from")

// LastCheckpoint returns the checkpoint Lifeguard copied into the job's
// metadata when it retried, cancelled or discarded an earlier attempt, and
// whether there is one. A job that never reported progress before that has
// none, and neither has a job retried by River itself (an error returned from
// Work, River's rescuer): River retries its own failures without Lifeguard.
// A cancel's checkpoint is the progress known when Lifeguard asked River to
// cancel; what the worker reported after that is not in it.
func LastCheckpoint(job *rivertype.JobRow) (Checkpoint, bool, error) {
	if job == nil {
		return Checkpoint{}, false, ErrNoJob
	}
	if len(job.Metadata) == 0 {
		return Checkpoint{}, false, nil
	}
	var metadata map[string]json.RawMessage
	if err := json.Unmarshal(job.Metadata, &metadata); err != nil {
		return Checkpoint{}, false, fmt.Errorf("heartbeat: job %d metadata: %w", job.ID, err)
	}
	raw, ok := metadata[ResumeKey]
	if !ok || isNull(raw) {
		return Checkpoint{}, false, nil
	}
	var checkpoint Checkpoint
	if err := json.Unmarshal(raw, &checkpoint); err != nil {
		return Checkpoint{}, false, fmt.Errorf("heartbeat: job %d metadata %q: %w", job.ID, ResumeKey, err)
	}
	if isNull(checkpoint.Progress) {
		return Checkpoint{}, false, nil
	}
	return checkpoint, true, nil
}

// ResumeFrom decodes the last progress of an earlier attempt of the job into
// progress (a pointer, as for json.Unmarshal: the worker's own type) and
// reports whether there was one. Without one, progress is left untouched and
// the job starts from the beginning:
//
//	var done struct{ Rows int `json:"rows"` }
//	if _, err := heartbeat.ResumeFrom(job.JobRow, &done); err != nil { return err }
//	for row := done.Rows; row < total; row++ { ... heartbeat.Progress(ctx, map[string]int{"rows": row + 1}) }
//
// The contract: a payload given to Progress must be a checkpoint the job can
// restart from, reported after the work it describes is durable (committed,
// uploaded). Progress is written at most once a second and may be lost with
// the process, so the next attempt can repeat the work done since the last
// write, never skip any.
func ResumeFrom(job *rivertype.JobRow, progress any) (bool, error) {
	checkpoint, ok, err := LastCheckpoint(job)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(checkpoint.Progress, progress); err != nil {
		return false, fmt.Errorf("heartbeat: job %d: decode the progress of attempt %d: %w",
			job.ID, checkpoint.Attempt, err)
	}
	return true, nil
}

func isNull(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null"))
}
