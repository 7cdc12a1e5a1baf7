// Command heartbeatwal drives Lifeguard's Go heartbeat middleware (the real
// Table and Metadata stores) against running River jobs, and prints how many
// beats it wrote, how long they took and how much WAL the server generated
// meanwhile, as one JSON line.
//
// Each job's Work is called with an inner function that returns at once: the
// middleware writes its first beat and its last beat, exactly the SQL it runs
// on a timer for a long job. Jobs are taken round-robin from the running
// jobs, so with every job already beating once, all measured writes are the
// steady-state updates of a long job's heartbeat.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/river-lifeguard/lifeguard/heartbeat"
)

type result struct {
	Store       string  `json:"store"`
	Beats       int64   `json:"beats"`
	Applied     int64   `json:"applied"`
	Seconds     float64 `json:"seconds"`
	WALBytes    int64   `json:"wal_bytes"`
	Concurrency int     `json:"concurrency"`
}

// countingDB counts the middleware's writes and the rows they changed.
type countingDB struct {
	pool    *pgxpool.Pool
	beats   atomic.Int64
	applied atomic.Int64
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.pool.Exec(ctx, sql, args...)
	if err == nil {
		c.beats.Add(1)
		c.applied.Add(tag.RowsAffected())
	}
	return tag, err
}

// Query passes the middleware's removal of ended jobs' rows through, uncounted:
// the jobs here stay running, so it finds nothing to remove and writes no WAL.
func (c *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return c.pool.Query(ctx, sql, args...)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeatwal:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL")
	store := flag.String("store", "table", "table or metadata")
	key := flag.String("metadata-key", "health_check_at", "metadata key of the Metadata store")
	beats := flag.Int("beats", 1000, "beats to write (two per job run)")
	jobs := flag.Int("jobs", 1000, "running jobs to beat for, round-robin")
	concurrency := flag.Int("concurrency", 8, "jobs beating at once")
	flag.Parse()

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()

	rows, err := loadJobs(ctx, pool, *jobs)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no running jobs to beat for")
	}
	var st heartbeat.Store
	switch *store {
	case "table":
		st = heartbeat.Table()
	case "metadata":
		st = heartbeat.Metadata(*key)
	default:
		return fmt.Errorf("unknown store %q", *store)
	}
	db := &countingDB{pool: pool}
	// An hour between ticks: only the first and last beat of each Work call.
	mw, err := heartbeat.NewMiddleware(db, heartbeat.Config{Interval: time.Hour, Store: st})
	if err != nil {
		return err
	}

	runs := (*beats + 1) / 2
	before, err := walLSN(ctx, pool)
	if err != nil {
		return err
	}
	started := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *concurrency)
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(runs) {
					return
				}
				job := rows[i%int64(len(rows))]
				if err := mw.Work(ctx, job, func(context.Context) error { return nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var wal int64
	if err := pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint", before).Scan(&wal); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(result{
		Store:       *store,
		Beats:       db.beats.Load(),
		Applied:     db.applied.Load(),
		Seconds:     elapsed.Seconds(),
		WALBytes:    wal,
		Concurrency: *concurrency,
	})
}

func walLSN(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var lsn string
	err := pool.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	return lsn, err
}

// loadJobs reads running jobs as River hands them to Work: the fields the
// middleware uses (ID, attempt, attempted_at, attempted_by, kind).
func loadJobs(ctx context.Context, pool *pgxpool.Pool, limit int) ([]*rivertype.JobRow, error) {
	rows, err := pool.Query(ctx, `SELECT id, attempt, attempted_at, attempted_by, kind
		FROM river_job WHERE state = 'running' ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*rivertype.JobRow, error) {
		job := &rivertype.JobRow{}
		err := row.Scan(&job.ID, &job.Attempt, &job.AttemptedAt, &job.AttemptedBy, &job.Kind)
		return job, err
	})
}
