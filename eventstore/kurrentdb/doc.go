// Package kurrentdb is an eventstore.Store on KurrentDB (formerly
// EventStoreDB), through its gRPC client
// (github.com/EventStore/EventStore-Client-Go/v4). It keeps the
// eventstore.Store contract for any number of goroutines and of processes
// sharing one log stream.
//
// # Mapping: the whole log is one KurrentDB stream
//
// Payesh needs gap-free global positions and one SHA-256 chain over all its
// streams. KurrentDB's $all positions are byte offsets in its transaction
// log, not counts, and client v4.2.0 cannot append to several streams
// atomically, so Payesh streams are not KurrentDB streams. The whole log
// is one KurrentDB stream, Config.Stream (default "payesh-log"), and the
// KurrentDB event at revision r is the Payesh event at position r+1: stream
// revisions are gap-free, so positions are. The position is not stored;
// it is the revision.
//
// Each KurrentDB event carries:
//
//   - EventID: the Payesh event ID when it is a UUID in canonical form (as
//     uuid.String writes it), else a name-based UUID derived from it
//     (version 5, SHA-1 over a fixed namespace and the ID). The ID itself
//     is always in the metadata.
//   - EventType: the Payesh type, so KurrentDB's event-type filters work.
//   - ContentType: binary (application/octet-stream), so KurrentDB stores
//     the payload byte for byte: it is hashed as it is.
//   - Data: the payload.
//   - Metadata (custom): a JSON envelope with stream, version, id,
//     occurred_at and recorded_at (RFC 3339, UTC, microseconds),
//     backdate_reason, actor, idempotency_key, correlation_id,
//     causation_id, prev_hash and hash (hex).
//
// # Appends
//
// An append decides against the index (below), caught up first: its
// event IDs (eventstore.CheckDuplicate on the stored events, read back by
// position) and its expected version (a *eventstore.VersionError). It then
// builds the events chained from the head's hash and appends them to the
// log stream with the expected revision of the head: KurrentDB writes them
// only if no one has appended since, in this process or another. If
// someone has (WrongExpectedVersion), the append catches up and decides
// again, until it succeeds or its ctx ends. That one check serialises all
// appends, which both the positions and the chain need: each event's
// hash includes its predecessor's. Within a process appends take turns on
// a mutex, so they do not conflict with each other.
//
// The price: appends go one KurrentDB round trip (plus the catch-up read
// before it) at a time, across all processes, and conflicting processes
// retry. AppendMany sends many streams' appends as one KurrentDB append
// (each still checked on its own), up to about 512 KiB at a time, so bulk
// writers share round trips. KurrentDB refuses appends larger than its
// MaxAppendSize (1 MiB by default): an append of events near
// eventstore.MaxEventSize needs it raised.
//
// The index is not told of the events an append wrote: the next catch-up
// reads them back from KurrentDB, so the index only ever holds what
// KurrentDB does. That matters when two processes append the same event
// IDs at the same moment: KurrentDB's own idempotency may then answer the
// second as written when it stored the first one's envelopes.
//
// # The index
//
// KurrentDB cannot say which positions hold a Payesh stream's events or
// where an event ID is, so each Store keeps an index in memory: per Payesh
// stream the list of its positions (its version is the length), and per
// event ID its position (UUID IDs as 16-byte keys, other IDs as strings).
// Open builds it by reading the log stream from the start; Append,
// StreamVersion and ReadStream catch it up first (one read from the last
// indexed revision to the end), so they see every append that completed
// before the call, in any process. Concurrent calls share catch-ups.
//
// It costs 40 to 70 bytes per event (8 in the stream's position list, a
// 24-byte map entry for a UUID ID, and the spare capacity of both), plus
// each stream's name once and, for IDs that are not UUIDs, the ID string:
// about 0.5 GB for ten million events, in every process, and Open reads
// the whole log. A much longer log needs a persistent index (a read model
// in KurrentDB or elsewhere) instead.
//
// # Reads and subscriptions
//
// ReadStream reads the positions the index names, one KurrentDB read per
// run of consecutive positions, and checks each event is the one the
// index says. ReadPage reads the log stream from revision after, a window
// of max(limit, Config.ScanWindow) events, and filters here; ReadAll is
// pages; Head reads the last event. These do not use the index: they show
// the log stream as KurrentDB holds it, which is what eventstore.Verify
// must check.
//
// Subscribe is a catch-up subscription to $all from the $all position of
// the event at position after, filtered by KurrentDB to the log stream
// (a stream-name prefix) or, when the Payesh filter names types, to those
// event types (a regular expression; the stream is then checked here).
// Stream prefixes are matched here, since Payesh streams are in the
// metadata. What has arrived is handed to the handler in batches of up to
// 1000; an unfiltered subscription checks that positions follow each
// other without a gap.
//
// # Operating requirements
//
//   - The log stream must never lose an event: no $maxAge, $maxCount or
//     $tb (truncate-before) in its stream metadata, no deletion, no
//     scavenging of its events. Open and every catch-up refuse a log
//     stream whose revisions have a gap.
//   - Only Payesh may write to the log stream: give it an ACL ($w) for
//     Payesh's user alone. Anything else appended there is refused by
//     catch-ups if its metadata is not an envelope, and is reported by
//     eventstore.Verify if its chain is wrong.
//   - KurrentDB has no guard against someone with access to its files
//     editing events (Features.NoGuards in the contract suite);
//     eventstore.Verify detects it.
//   - Not implemented: eventstore.Importer. KurrentDB cannot append a whole
//     export atomically (one append is bounded by MaxAppendSize), so an
//     import would need its own all-or-nothing protocol.
//
// # Checked against the test server only
//
// The tests run the contract suite through the real client against
// kurrenttest, an in-memory server of the gRPC Streams protocol, and
// against a real KurrentDB only when PAYESH_TEST_KURRENTDB_URL names one.
// What this package relies on and has only been seen to work on kurrenttest:
//
//   - Revisions and WrongExpectedVersion: an append with an expected
//     revision (or no stream) is refused, writing nothing, exactly when the
//     stream's last revision differs; revisions are gap-free.
//   - Idempotency by event ID: the server-side rule for a retried append
//     (which this package's own checks normally pre-empt).
//   - $all positions: that a stream read reports each event's commit and
//     prepare position, and that a subscription from a position starts
//     after it.
//   - Filtered $all subscriptions: prefix and regular-expression filters
//     on stream names and event types, server-side, as .NET regular
//     expressions (the type expression uses only ^, $, | and escaped
//     literals); checkpoints are ignored here.
//   - Binary content type: the payload and metadata bytes come back as sent.
//   - Reading a stream never written gives StreamNotFound (read here as an
//     empty log), and reading backwards from the end gives the last event.
//   - Errors: how a real server's failures (not leader, unavailable,
//     oversized append, access denied) reach translate.
package kurrentdb
