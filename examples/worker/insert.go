package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// insert inserts jobs with River's own client (InsertMany) and prints their
// ids as a JSON list.
func insert(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("insert", flag.ContinueOnError)
	kind := flags.String("kind", "", "job kind: "+kindNames())
	argsJSON := flags.String("args", "{}", "job args as a JSON object")
	queue := flags.String("queue", "", "queue (default: River's default queue)")
	priority := flags.Int("priority", 0, "priority 1 (highest) to 4 (default: River's default)")
	maxAttempts := flags.Int("max-attempts", 0, "max attempts (default: River's default)")
	count := flags.Int("count", 1, "number of identical jobs to insert")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("insert: unexpected arguments %q", flags.Args())
	}
	decode, ok := kinds[*kind]
	if !ok {
		return fmt.Errorf("insert: unknown kind %q (known kinds: %s)", *kind, kindNames())
	}
	jobArgs, err := decode([]byte(*argsJSON))
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if *count < 1 {
		return errors.New("insert: --count must be at least 1")
	}

	pool, err := connect(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// An insert-only client: no queues, so it works no jobs.
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: os.Getenv("RIVER_SCHEMA")})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	opts := &river.InsertOpts{Queue: *queue, Priority: *priority, MaxAttempts: *maxAttempts}
	params := make([]river.InsertManyParams, *count)
	for i := range params {
		params[i] = river.InsertManyParams{Args: jobArgs, InsertOpts: opts}
	}
	results, err := client.InsertMany(ctx, params)
	if err != nil {
		return fmt.Errorf("insert %d %s job(s): %w", *count, *kind, err)
	}
	ids := make([]int64, len(results))
	for i, r := range results {
		ids[i] = r.Job.ID
	}
	return json.NewEncoder(stdout).Encode(ids)
}
