package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"
)

// heartbeatMiddleware builds Lifeguard's heartbeat middleware from the config
// (nil for HEARTBEAT_STORE=none).
func heartbeatMiddleware(pool *pgxpool.Pool, cfg runConfig, logger *slog.Logger) (rivertype.Middleware, error) {
	return nil, nil
}

func migrateHeartbeat(ctx context.Context, pool *pgxpool.Pool, schema string, stdout io.Writer) error {
	return nil
}
