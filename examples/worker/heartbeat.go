package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/river-lifeguard/lifeguard/heartbeat"
)

// heartbeatMiddleware builds Lifeguard's heartbeat middleware from the config
// (nil for HEARTBEAT_STORE=none: a worker without beats, as many are). The
// table store's table is created first, so a fresh database just works.
func heartbeatMiddleware(ctx context.Context, pool *pgxpool.Pool, cfg runConfig, logger *slog.Logger) (rivertype.Middleware, error) {
	var store heartbeat.Store
	switch cfg.HeartbeatStore {
	case "none":
		return nil, nil
	case "metadata":
		store = heartbeat.Metadata(cfg.HeartbeatMetadataKey)
	default:
		store = heartbeat.Table()
		if err := heartbeat.Migrate(ctx, pool, cfg.Schema); err != nil {
			return nil, err
		}
	}
	mw, err := heartbeat.NewMiddleware(pool, heartbeat.Config{
		Interval: cfg.HeartbeatInterval,
		Store:    store,
		Schema:   cfg.Schema,
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}
	return mw, nil
}

func migrateHeartbeat(ctx context.Context, pool *pgxpool.Pool, schema string, stdout io.Writer) error {
	if err := heartbeat.Migrate(ctx, pool, schema); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "heartbeat: table", heartbeat.TableName, "is in place")
	return err
}
