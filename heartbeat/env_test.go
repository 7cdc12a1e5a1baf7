package heartbeat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// These tests run against a real PostgreSQL (DATABASE_URL) and River's real
// client. Each test gets its own schema, migrated by River's own migrator,
// and drops it when done, so tests are independent and may run in parallel.

func databaseURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Fatal("DATABASE_URL is not set: the heartbeat tests need a real PostgreSQL where they " +
			"may create schemas (tests/integration/test_go_heartbeat.py sets it for `make test`)")
	}
	return url
}

type testEnv struct {
	pool *pgxpool.Pool
	// schema is where River's tables live. clientSchema is what River's
	// client is configured with, hbSchema what the middleware and Migrate
	// are: "" when the test reaches the schema through the search path.
	schema       string
	clientSchema string
	hbSchema     string
	// pollOnly: River's listener builds LISTEN channel names from the schema
	// without quoting them, so in an oddly named schema River's client can
	// only poll.
	pollOnly bool
}

type envOption func(*envOptions)

type envOptions struct {
	schema     string
	searchPath bool
	oddName    bool
}

// withOddSchema names the test's schema (quotes, spaces, non-ASCII welcome).
// River's client only accepts plain identifiers as Config.Schema, so it
// reaches such a schema through the search path, as a user with such a name
// would; River's migrator and the heartbeat package get the name itself.
func withOddSchema(name string) envOption {
	return func(o *envOptions) { o.schema, o.oddName = name, true }
}

// viaSearchPath configures River and the middleware with Schema "" and puts
// the test's schema on the connections' search path instead.
func viaSearchPath() envOption { return func(o *envOptions) { o.searchPath = true } }

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	var o envOptions
	for _, opt := range opts {
		opt(&o)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	if o.schema == "" {
		base := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
		o.schema = "hb_" + base[:min(len(base), 28)] // River allows 46 bytes
	}
	o.schema += "_" + hex.EncodeToString(suffix)

	ctx := context.Background()
	poolConfig, err := pgxpool.ParseConfig(databaseURL(t))
	if err != nil {
		t.Fatalf("parse DATABASE_URL: %v", err)
	}
	env := &testEnv{schema: o.schema, clientSchema: o.schema, hbSchema: o.schema}
	migrateSchema := o.schema
	if o.searchPath || o.oddName {
		poolConfig.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{o.schema}.Sanitize()
		env.clientSchema = ""
	}
	if o.searchPath {
		env.hbSchema, migrateSchema = "", ""
	}
	env.pollOnly = o.oddName
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	quoted := pgx.Identifier{o.schema}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+quoted); err != nil {
		pool.Close()
		t.Fatalf("create schema %s: %v", quoted, err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+quoted+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", quoted, err)
		}
		pool.Close()
	})
	env.pool = pool
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: migrateSchema})
	if err != nil {
		t.Fatalf("river migrator: %v", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatalf("river migrations in %s: %v", quoted, err)
	}
	return env
}

func riverDriver(pool *pgxpool.Pool) *riverpgxv5.Driver { return riverpgxv5.New(pool) }

func (e *testEnv) migrateHeartbeat(t testing.TB) {
	t.Helper()
	if err := Migrate(context.Background(), e.pool, e.hbSchema); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

// table is a fully qualified, quoted table name in the test's schema.
func (e *testEnv) table(name string) string { return qualified(e.schema, name) }

func (e *testEnv) middleware(t testing.TB, cfg Config) *Middleware {
	t.Helper()
	cfg.Schema = e.hbSchema
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, nil)
	}
	mw, err := NewMiddleware(e.pool, cfg)
	if err != nil {
		t.Fatalf("NewMiddleware: %v", err)
	}
	return mw
}

// startClient starts a real River client working the default queue with the
// given middleware and workers; it is hard-stopped when the test ends.
func (e *testEnv) startClient(t testing.TB, mw *Middleware, workers *river.Workers) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := river.NewClient(riverpgxv5.New(e.pool), &river.Config{
		Schema:            e.clientSchema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 5}},
		Workers:           workers,
		Middleware:        []rivertype.Middleware{mw},
		JobTimeout:        -1,
		FetchPollInterval: 50 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            testLogger(t, nil),
		TestOnly:          true,
		PollOnly:          e.pollOnly,
	})
	if err != nil {
		t.Fatalf("river client: %v", err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatalf("start river client: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.StopAndCancel(ctx); err != nil {
			t.Errorf("stop river client: %v", err)
		}
	})
	return client
}

// BlockArgs is a test job that runs until the test releases it.
type BlockArgs struct{}

func (BlockArgs) Kind() string { return "block" }

// blockWorker runs before(ctx), announces the job, waits for release (or the
// job's cancellation), then runs after(ctx).
type blockWorker struct {
	river.WorkerDefaults[BlockArgs]
	before  func(ctx context.Context)
	after   func(ctx context.Context)
	started chan int64
	release chan struct{}
	deaf    bool // ignore the job's context, as a buggy job does
}

func newBlockWorker() *blockWorker {
	return &blockWorker{started: make(chan int64, 10), release: make(chan struct{})}
}

func (w *blockWorker) Work(ctx context.Context, job *river.Job[BlockArgs]) error {
	if w.before != nil {
		w.before(ctx)
	}
	w.started <- job.ID
	if w.deaf {
		<-w.release
		return nil
	}
	select {
	case <-w.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.after != nil {
		w.after(ctx)
	}
	return nil
}

func (w *blockWorker) workers() *river.Workers {
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	return workers
}

func (w *blockWorker) waitStarted(t testing.TB) int64 {
	t.Helper()
	select {
	case id := <-w.started:
		return id
	case <-time.After(15 * time.Second):
		t.Fatal("the job did not start within 15s")
		return 0
	}
}

func insertJob(t testing.TB, client *river.Client[pgx.Tx], opts *river.InsertOpts) *rivertype.JobRow {
	t.Helper()
	res, err := client.Insert(context.Background(), BlockArgs{}, opts)
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	return res.Job
}

// heartbeatRow is a row of the Table store, with the database's now() at read.
type heartbeatRow struct {
	Attempt    int
	ClientID   string
	BeatAt     time.Time
	ProgressAt *time.Time
	Progress   []byte
	DBNow      time.Time
}

func (e *testEnv) heartbeat(t testing.TB, jobID int64) (heartbeatRow, bool) {
	t.Helper()
	var row heartbeatRow
	err := e.pool.QueryRow(context.Background(),
		`SELECT attempt, client_id, beat_at, progress_at, progress, now() FROM `+e.table(TableName)+` WHERE job_id = $1`,
		jobID).Scan(&row.Attempt, &row.ClientID, &row.BeatAt, &row.ProgressAt, &row.Progress, &row.DBNow)
	if err == pgx.ErrNoRows {
		return row, false
	}
	if err != nil {
		t.Fatalf("read heartbeat of job %d: %v", jobID, err)
	}
	return row, true
}

func (e *testEnv) metadata(t testing.TB, jobID int64) []byte {
	t.Helper()
	var metadata []byte
	err := e.pool.QueryRow(context.Background(),
		`SELECT metadata FROM `+e.table("river_job")+` WHERE id = $1`, jobID).Scan(&metadata)
	if err != nil {
		t.Fatalf("read metadata of job %d: %v", jobID, err)
	}
	return metadata
}

func (e *testEnv) jobState(t testing.TB, jobID int64) string {
	t.Helper()
	var state string
	err := e.pool.QueryRow(context.Background(),
		`SELECT state FROM `+e.table("river_job")+` WHERE id = $1`, jobID).Scan(&state)
	if err != nil {
		t.Fatalf("read state of job %d: %v", jobID, err)
	}
	return state
}

func (e *testEnv) dbNow(t testing.TB) time.Time {
	t.Helper()
	var now time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatalf("now(): %v", err)
	}
	return now
}

func (e *testEnv) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogger logs to the test's output and, when buf is given, to buf too.
func testLogger(t testing.TB, buf *lockedBuffer) *slog.Logger {
	var handler slog.Handler = slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	if buf != nil {
		handler = slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	return slog.New(handler)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
