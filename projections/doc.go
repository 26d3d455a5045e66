// Package projections folds the event log into read models: SQL tables
// beside the log (in the store's SQLite file or PostgreSQL schema) that the
// API queries, each with the position of the log it reflects.
//
// # Pieces
//
//   - Projector (projector.go) is what a read model implements: its tables'
//     DDL, for either Dialect and any generation of TableNames, and Apply,
//     which folds a batch of decoded events (Envelope) inside a transaction
//     the Engine owns. Subpackages hold the projectors (facilities: the
//     facilities and job_counts read models).
//   - Dialect (dialect.go) is the only difference between SQLite and
//     PostgreSQL: column types, ? placeholders rebound to $n, list
//     parameters (json_each or arrays), row locks, and how Upsert sends many
//     rows (multi-row VALUES or unnest arrays). Projector code is one path,
//     through database/sql (DB, OpenDB).
//   - Engine (engine.go, rebuild.go) runs projectors: catch-up in batches,
//     then live; retries; failure; blue/green rebuilds. Its Status feeds
//     /readyz and metrics.
//   - The live path (live.go) is a Watermill Router per projection over
//     projections/pubsub's $all topic, with recoverer, retry with backoff
//     and correlation-id middleware; an event that still fails after the
//     retries stops the projection where it is, visibly (Status,
//     projection_state), and is never skipped.
//   - Reader (reader.go) reads checkpoints: Position, and WaitFor for
//     read-your-writes.
//
// # Exactly once
//
// projection_state holds one row per projector: version, generation,
// position, status, last error, and a rebuild's progress. Every batch is
// applied in one transaction that first locks that row (SELECT ... FOR
// UPDATE on PostgreSQL; SQLite's write transactions are serial), skips the
// events at or before the stored position, applies the rest and moves the
// position past the batch. So a batch is applied entirely or not at all,
// and never twice: not after a crash mid-batch (the transaction rolls
// back; the restarted runner starts from the stored position), not when a
// subscription redelivers, not when two processes run the same projector,
// and not after a rebuild swapped tables in ahead of the live runner. The
// live path reads the log unfiltered so that the position reaches every
// appended event (WaitFor on any position returns), and decodes only what
// the projector's Filter selects.
//
// # Blue/green rebuilds
//
// Rebuild builds <table>__next beside each live table, replays the log
// into them in batches with its own checkpoint (next_position, so an
// interrupted rebuild resumes), computes derived tables (Finisher), builds
// the indexes, and then, in one transaction holding the checkpoint row's
// lock (which pauses the live runner, in any process), applies what was
// appended meanwhile, drops the live tables, renames the __next tables to
// the live names and stores the new version, generation and position.
// Queries read the old tables until that commit and the new ones after it.
// Index names carry the generation (TableNames.Index), since both engines
// keep an index's name when its table is renamed. A projector whose
// Version differs from the stored one is rebuilt this way by Engine.Run
// before it goes live.
package projections
