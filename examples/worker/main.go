// Command worker is the example River worker used by Lifeguard's tests and
// demo: a real River client (pgx driver, River's default client ID derived
// from the hostname) with job kinds that sleep, hang, crash, eat memory,
// stall and freeze.
//
//	worker run                 work jobs (configured by environment, see runConfig)
//	worker insert --kind K --args JSON [--queue Q] [--priority P] [--max-attempts N] [--count N]
//	worker migrate             create Lifeguard's heartbeat table
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
)

const usage = `usage:
  worker run
  worker insert --kind KIND --args JSON [--queue Q] [--priority P] [--max-attempts N] [--count N]
  worker migrate [--river]
environment: DATABASE_URL (required), RIVER_SCHEMA, and for run: WORKER_QUEUES, MAX_WORKERS,
  HEARTBEAT_STORE, HEARTBEAT_METADATA_KEY, HEARTBEAT_INTERVAL, EXIT_WHEN_IDLE, JOB_TIMEOUT,
  RESCUE_STUCK_JOBS_AFTER, SHUTDOWN_TIMEOUT`

func main() {
	if err := dispatch(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func dispatch(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stdout, nil))
	switch args[0] {
	case "run":
		cfg, err := runConfigFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		return run(ctx, cfg, logger)
	case "insert":
		return insert(ctx, args[1:], stdout)
	case "migrate":
		return migrate(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

func connect(ctx context.Context) (*pgxpool.Pool, error) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return nil, errors.New("DATABASE_URL is not set")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	return pool, nil
}
