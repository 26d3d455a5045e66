package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnect backoff for the LISTEN connection.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// connectListener opens the dedicated LISTEN connection. It is not taken from
// the pool: it lives as long as the store and must not count against
// MaxConns.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.n.channel}.Sanitize()); err != nil {
		closeQuietly(conn)
		return nil, fmt.Errorf("postgres: listen: %w", err)
	}
	s.listenerPID.Store(conn.PgConn().PID())
	return conn, nil
}

// listen relays notifications to the store's Signal until ctx ends. When the
// connection drops it reconnects with exponential backoff (reset once a
// notification arrives), and broadcasts once reconnected, since commits made
// while it was deaf were not announced.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listenDone)
	backoff := listenBackoffMin
	for {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, listenBackoffMax)
			c, err := s.connectListener(ctx)
			if err != nil {
				continue
			}
			conn = c
			s.wake.Broadcast()
		}
		if _, err := conn.WaitForNotification(ctx); err != nil {
			closeQuietly(conn)
			conn = nil
			if ctx.Err() != nil {
				return
			}
			continue
		}
		backoff = listenBackoffMin
		// One wake-up covers every commit so far: waiters re-read the
		// log, they do not count notifications.
		s.wake.Broadcast()
	}
}

func closeQuietly(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
