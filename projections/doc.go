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
//   - Engine (engine.go, pump.go, rebuild.go) runs projectors: catch-up in
//     batches, then live; retries; failure; blue/green rebuilds, of one
//     projector or of many reading the log once. Its Status feeds /readyz
//     and metrics.
//   - The pump (pump.go) is how batches reach projectors outside the live
//     path: one read of the log in unfiltered position ranges (ReadAhead
//     batches in flight), each event decoded once if some projector's
//     Filter selects it, each batch handed to every projector's goroutine,
//     which applies it in its own transaction with its own checkpoint.
//     Each projector queues at most ReadAhead batches, so the slowest paces
//     the read and memory is a few batches whatever the log's length. A
//     live projection's catch-up is the pump with one projector.
//   - The live path (live.go) is a Watermill Router per projection over
//     projections/pubsub's $all topic, with recoverer, retry with backoff
//     and correlation-id middleware; an event that still fails after the
//     retries stops the projection where it is, visibly (Status,
//     projection_state), and is never skipped.
//   - Reader (reader.go) reads checkpoints: Position, and WaitFor for
//     read-your-writes.
//   - Queries (query.go) runs the read models' queries for the
//     subpackages' Readers: one statement per answer, without a
//     transaction, that returns the rows with the position they reflect;
//     and what every Reader's filters and pages share (Where, PageLimit,
//     cursors).
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
// Engine.RebuildAll rebuilds any set of projectors (Rebuild is the set of
// one) and reads the log once for all of them. Each gets <table>__next
// beside each live table and its own checkpoint (next_position, so an
// interrupted rebuild resumes, each projector from where it got); the pump
// replays the log into them from the least of their checkpoints, skipping
// for each what it already has. Then, for each, the derived tables are
// computed (Finisher) and the indexes built, side by side, and, one
// projector at a time, a transaction holding its checkpoint row's lock
// (which pauses its live runner, in any process) applies what was appended
// meanwhile, drops the live tables, renames the __next tables to the live
// names and stores the new version, generation and position. Queries read
// the old tables until that commit and the new ones after it. A projector
// whose rebuild fails drops out, keeping its live tables, and the others go
// on to their swap. On SQLite the projectors' transactions take turns on
// the one writer, so there the gain is reading and decoding the log once;
// on PostgreSQL they also run side by side. Index names carry the
// generation (TableNames.Index), since both engines keep an index's name
// when its table is renamed. A projector whose Version differs from the
// stored one is rebuilt this way, on its own, by its runner in Engine.Run
// before it goes live (several such projectors each read the log; payesh
// projections rebuild, before starting payeshd, reads it once for all).
package projections
