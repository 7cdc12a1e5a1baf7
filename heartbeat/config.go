package heartbeat

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultInterval is the beat period when Config.Interval is zero.
const DefaultInterval = 10 * time.Second

// DB is what the middleware writes through: *pgxpool.Pool, *pgx.Conn and
// pgx.Tx all satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Config configures the middleware. The zero value is usable: a beat every
// DefaultInterval into the Table store on the connection's search path.
type Config struct {
	// Interval between beats while Work runs (default DefaultInterval).
	Interval time.Duration
	// Store says where heartbeats go (default Table()).
	Store Store
	// Schema holding River's tables (and the heartbeat table): the same value
	// as river.Config.Schema. Empty means the connection's search path.
	Schema string
	// Logger receives failed writes (default slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Interval < 0 {
		return c, errors.New("heartbeat: Config.Interval must not be negative")
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Store == nil {
		c.Store = Table()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
