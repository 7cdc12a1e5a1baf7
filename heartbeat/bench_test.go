package heartbeat

import (
	"context"
	"testing"

	"github.com/riverqueue/river"
)

// BenchmarkBeat measures what one beat costs the database, per store: time
// and WAL bytes (pg_current_wal_lsn() before and after), on a job row shaped
// as River writes it, with River's indexes (GIN on args and metadata) in
// place. Run: DATABASE_URL=... go test -run '^$' -bench Beat
func BenchmarkBeat(b *testing.B) {
	stores := []struct {
		name    string
		store   Store
		written string // the table each beat updates
	}{{"table", Table(), TableName}, {"metadata", Metadata("health_check_at"), "river_job"}}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			env := newTestEnv(b)
			env.migrateHeartbeat(b)
			client, err := river.NewClient(riverDriver(env.pool), &river.Config{Schema: env.clientSchema})
			if err != nil {
				b.Fatal(err)
			}
			res, err := client.Insert(context.Background(), BlockArgs{},
				&river.InsertOpts{Metadata: []byte(`{"tenant": "acme", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}`)})
			if err != nil {
				b.Fatal(err)
			}
			var attemptedAt = env.dbNow(b)
			env.exec(b, `UPDATE `+env.table("river_job")+` SET state = 'running', attempt = 1,
				attempted_at = $2, attempted_by = '{bench-client}' WHERE id = $1`, res.Job.ID, attemptedAt)
			w, err := st.store.writer(env.hbSchema)
			if err != nil {
				b.Fatal(err)
			}
			one := beat{jobID: res.Job.ID, attempt: 1, attemptedAt: &attemptedAt, clientID: "bench-client"}
			if _, err := w.write(context.Background(), env.pool, one); err != nil { // the row exists from here on
				b.Fatal(err)
			}
			// One connection, so its own statistics can be flushed and read.
			conn, err := env.pool.Acquire(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			updates := func() (all, hot int64) {
				// The flush happens at the end of its own statement.
				if _, err := conn.Exec(context.Background(), `SELECT pg_stat_force_next_flush()`); err != nil {
					b.Fatal(err)
				}
				err := conn.QueryRow(context.Background(), `SELECT n_tup_upd, n_tup_hot_upd
					FROM pg_stat_user_tables WHERE relid = $1::regclass`, env.table(st.written)).Scan(&all, &hot)
				if err != nil {
					b.Fatal(err)
				}
				return all, hot
			}
			allBefore, hotBefore := updates()
			start := env.walLSN(b)
			b.ResetTimer()
			for range b.N {
				applied, err := w.write(context.Background(), conn, one)
				if err != nil || !applied {
					b.Fatalf("beat: applied=%v err=%v", applied, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(env.walLSN(b)-start)/float64(b.N), "WAL-B/beat")
			allAfter, hotAfter := updates()
			if all := allAfter - allBefore; all > 0 {
				b.ReportMetric(100*float64(hotAfter-hotBefore)/float64(all), "%HOT")
			}
		})
	}
}

func (e *testEnv) walLSN(t testing.TB) int64 {
	t.Helper()
	var lsn int64
	if err := e.pool.QueryRow(context.Background(),
		`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}
