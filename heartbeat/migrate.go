package heartbeat

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Beginner is what Migrate needs: *pgxpool.Pool and *pgx.Conn satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// migrateLockKey serialises concurrent Migrate calls (several workers starting
// at once): CREATE TABLE IF NOT EXISTS alone can still fail on a race in the
// catalog.
const migrateLockKey = "river_lifeguard.heartbeat.migrate"

// Migrate creates the Table store's heartbeat table in schema ("" = the search
// path), idempotently. The schema must exist (River's migrations need it too).
// There is no foreign key to river_job on purpose: River's cleaner deletes
// finished jobs; the middleware removes the rows of jobs it finished, and the
// operator prunes those of workers that died.
func Migrate(ctx context.Context, db Beginner, schema string) error {
	ddl := `CREATE TABLE IF NOT EXISTS ` + qualified(schema, TableName) + ` (
  job_id bigint PRIMARY KEY, attempt smallint NOT NULL, client_id text NOT NULL,
  beat_at timestamptz NOT NULL, progress_at timestamptz, progress jsonb
) WITH (fillfactor = 50)`
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("heartbeat: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, migrateLockKey); err != nil {
		return fmt.Errorf("heartbeat: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("heartbeat: migrate: create %s: %w", qualified(schema, TableName), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("heartbeat: migrate: commit: %w", err)
	}
	return nil
}
