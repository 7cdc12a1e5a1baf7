package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TableName is the heartbeat table of the Table store, in River's schema.
const TableName = "river_job_heartbeat"

// Store says where heartbeats are written: Table() or Metadata(key).
type Store interface {
	// writer binds the store to River's schema. Unexported: the set of stores
	// is closed, because the operator must know how to read each one.
	writer(schema string) (writer, error)
}

// writer performs one fenced heartbeat write; applied reports whether the job
// was still running with the writer's attempt (false is not an error).
type writer interface {
	write(ctx context.Context, db DB, b beat) (applied bool, err error)
}

// beat is one write: always a process beat, plus progress when hasProgress.
type beat struct {
	jobID       int64
	attempt     int
	attemptedAt *time.Time // nil only for rows River never fetched
	clientID    string
	hasProgress bool
	progress    []byte // JSON; nil writes SQL NULL
}

// qualified quotes a table name in schema ("" = the search path).
func qualified(schema, table string) string {
	if schema == "" {
		return pgx.Identifier{table}.Sanitize()
	}
	return pgx.Identifier{schema, table}.Sanitize()
}

// jobFence is the condition every write puts on River's job row: the job is
// still running, with the attempt this worker fetched. attempted_at guards the
// case where an attempt number repeats (an operator refunding an attempt):
// River sets it, from the database clock, on every fetch.
const jobFence = `j.id = $1 AND j.state = 'running' AND j.attempt = $2
	AND ($4::timestamptz IS NULL OR j.attempted_at = $4::timestamptz)`

// Table is the default store: a narrow side table, river_job_heartbeat,
// created by Migrate. Beats rewrite a small row whose only index is the
// primary key, so they stay HOT updates (fillfactor 50 leaves the room).
func Table() Store { return tableStore{} }

type tableStore struct{}

func (tableStore) writer(schema string) (writer, error) {
	heartbeats := qualified(schema, TableName)
	jobs := qualified(schema, "river_job")
	// The upsert only ever moves forward: ON CONFLICT sees the latest
	// committed row, so an old attempt whose fence check raced with a new
	// fetch still cannot overwrite the newer attempt's row. A new run starts
	// without the old run's progress: progress written by this run is never
	// older than its attempted_at (both come from the database clock), which
	// also tells runs apart when an attempt number repeats.
	upsert := `INSERT INTO %[1]s AS hb (job_id, attempt, client_id, beat_at, progress_at, progress)
	SELECT j.id, j.attempt, $3::text, now(), %[3]s
	FROM %[2]s AS j
	WHERE ` + jobFence + `
	ON CONFLICT (job_id) DO UPDATE SET
		beat_at = EXCLUDED.beat_at,
		attempt = EXCLUDED.attempt,
		client_id = EXCLUDED.client_id,
		%[4]s
	WHERE hb.attempt <= EXCLUDED.attempt`
	sameRun := `hb.attempt = EXCLUDED.attempt AND hb.client_id = EXCLUDED.client_id
		AND ($4::timestamptz IS NULL OR hb.progress_at >= $4::timestamptz)`
	keepProgress := `progress_at = CASE WHEN ` + sameRun + ` THEN hb.progress_at END,
		progress = CASE WHEN ` + sameRun + ` THEN hb.progress END`
	newProgress := `progress_at = EXCLUDED.progress_at, progress = EXCLUDED.progress`
	return tableWriter{
		beatSQL:     fmt.Sprintf(upsert, heartbeats, jobs, "NULL::timestamptz, NULL::jsonb", keepProgress),
		progressSQL: fmt.Sprintf(upsert, heartbeats, jobs, "now(), $5::jsonb", newProgress),
	}, nil
}

type tableWriter struct {
	beatSQL     string
	progressSQL string
}

func (w tableWriter) write(ctx context.Context, db DB, b beat) (bool, error) {
	args := []any{b.jobID, b.attempt, b.clientID, b.attemptedAt}
	query := w.beatSQL
	if b.hasProgress {
		query = w.progressSQL
		args = append(args, progressArg(b.progress))
	}
	tag, err := db.Exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// Metadata stores heartbeats in river_job.metadata under key (for example
// "health_check_at", as many River users already write it): key holds the
// beat, key+"_progress_at" and key+"_progress" the progress. Values are
// written with the database clock as RFC 3339 JSON strings. Every beat
// rewrites the whole job row and its GIN-indexed metadata, so this store costs
// much more than Table; it exists for compatibility.
func Metadata(key string) Store { return metadataStore{key: key} }

type metadataStore struct{ key string }

func (s metadataStore) writer(schema string) (writer, error) {
	if s.key == "" {
		return nil, errors.New("heartbeat: Metadata store needs a non-empty key")
	}
	jobs := qualified(schema, "river_job")
	// Keys are bound parameters, never spliced into the SQL. to_jsonb(now())
	// renders an ISO 8601 / RFC 3339 string with the offset, which River's
	// own metadata readers and Go's time.RFC3339Nano both parse.
	update := `UPDATE %[1]s AS j SET metadata = j.metadata || jsonb_build_object(%[2]s)
	WHERE ` + jobFence
	return metadataWriter{
		key:         s.key,
		beatSQL:     fmt.Sprintf(update, jobs, "$3::text, to_jsonb(now())"),
		progressSQL: fmt.Sprintf(update, jobs, "$3::text, to_jsonb(now()), $5::text, to_jsonb(now()), $6::text, $7::jsonb"),
	}, nil
}

type metadataWriter struct {
	key         string
	beatSQL     string
	progressSQL string
}

func (w metadataWriter) write(ctx context.Context, db DB, b beat) (bool, error) {
	// $3 doubles as the key here: the fence's parameters keep their numbers.
	args := []any{b.jobID, b.attempt, w.key, b.attemptedAt}
	query := w.beatSQL
	if b.hasProgress {
		query = w.progressSQL
		args = append(args, w.key+"_progress_at", w.key+"_progress", progressArg(b.progress))
	}
	tag, err := db.Exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// progressArg passes a JSON payload as text (cast to jsonb in SQL), nil as NULL.
func progressArg(payload []byte) any {
	if payload == nil {
		return nil
	}
	return string(payload)
}
