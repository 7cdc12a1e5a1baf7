// Command river is a thin command line around River's own migrator
// (github.com/riverqueue/river/rivermigrate). River's published CLI module is
// not served by the module proxy this project builds from, so the project
// wraps the same migrator package the CLI uses: the schema it creates is
// exactly River's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "river:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: river migrate-up|migrate-down|migrate-list --database-url URL [--schema NAME]")
	}
	cmd := args[0]
	flags := flag.NewFlagSet(cmd, flag.ContinueOnError)
	databaseURL := flags.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	schema := flags.String("schema", "", "schema holding River's tables (default: the search path)")
	targetVersion := flags.Int("target-version", 0, "migrate up or down to this version (0: all)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if *databaseURL == "" {
		return errors.New("--database-url (or DATABASE_URL) is required")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, *databaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: *schema})
	if err != nil {
		return err
	}

	switch cmd {
	case "migrate-up", "migrate-down":
		direction := rivermigrate.DirectionUp
		opts := &rivermigrate.MigrateOpts{TargetVersion: *targetVersion}
		if cmd == "migrate-down" {
			direction = rivermigrate.DirectionDown
			if *targetVersion == 0 {
				opts.TargetVersion = -1
			}
		}
		res, err := migrator.Migrate(ctx, direction, opts)
		if err != nil {
			return err
		}
		for _, v := range res.Versions {
			fmt.Printf("applied %s migration %03d [%s]\n", res.Direction, v.Version, v.Duration)
		}
		if len(res.Versions) == 0 {
			fmt.Println("no migrations to apply")
		}
	case "migrate-list":
		all := migrator.AllVersions()
		current, err := migrator.ExistingVersions(ctx)
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for _, v := range current {
			applied[v.Version] = true
		}
		for _, v := range all {
			mark := " "
			if applied[v.Version] {
				mark = "*"
			}
			fmt.Printf("%s %03d %s\n", mark, v.Version, v.Name)
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}
