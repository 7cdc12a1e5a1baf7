package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// migrate creates Lifeguard's heartbeat table (and, with --river, River's own
// schema first, using River's migrator).
func migrate(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("migrate", flag.ContinueOnError)
	withRiver := flags.Bool("river", false, "also run River's own migrations first")
	if err := flags.Parse(args); err != nil {
		return err
	}
	schema := os.Getenv("RIVER_SCHEMA")
	pool, err := connect(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *withRiver {
		migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema})
		if err != nil {
			return fmt.Errorf("river migrator: %w", err)
		}
		res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return fmt.Errorf("river migrations: %w", err)
		}
		fmt.Fprintf(stdout, "river: applied %d migration(s)\n", len(res.Versions))
	}
	return migrateHeartbeat(ctx, pool, schema, stdout)
}
