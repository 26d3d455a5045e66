// Package kurrenttest is an in-memory server of KurrentDB's gRPC Streams
// protocol, for tests: no KurrentDB server can be installed where the
// project's tests run, and the kurrentdb adapter must not go untested, so
// the tests drive the real client (github.com/EventStore/EventStore-Client-Go/v4)
// against this server, built on the protocol's generated server
// interfaces.
//
// It implements the subset of the protocol a client of one node uses for
// appends and reads, with KurrentDB's documented semantics:
//
//   - Append: expected revision (a revision, no stream, any, stream
//     exists); WrongExpectedVersion with the current revision otherwise;
//     idempotency by event id — events whose ids are already in the
//     stream, in order, at the place the expected revision names (or
//     anywhere for any) are not written again and the append succeeds
//     with the revision of the last of them.
//   - Read of a stream, forwards or backwards, from a revision, the start
//     or the end, up to a count; StreamNotFound for a stream never written.
//   - Read of $all, forwards or backwards, from a position, the start or
//     the end, with server-side filters on stream name or event type
//     (prefixes or a regular expression); positions are commit/prepare
//     positions that grow with each event's size, not event counts, as
//     KurrentDB's (byte offsets in its transaction log) do.
//   - Subscriptions to a stream or to $all from a revision or position:
//     confirmation, the events already there, CaughtUp, then new events
//     as they are appended, and for filtered $all subscriptions a
//     Checkpoint every filter window of events looked at.
//
// Not implemented (Unimplemented): Delete, Tombstone, BatchAppend,
// persistent subscriptions, projections, gossip (the client asks for
// gossip only in cluster mode), server features (the client treats
// Unimplemented as an old server and falls back to Append).
package kurrenttest

import (
	"encoding/binary"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// record is one stored event.
type record struct {
	id       uuid.UUID
	stream   string
	revision uint64
	position uint64 // commit = prepare position
	metadata map[string]string
	custom   []byte
	data     []byte
}

// Server is the in-memory server. Start it with Start; its zero value is
// not usable.
type Server struct {
	api.UnimplementedStreamsServer

	mu       sync.Mutex
	log      []*record            // in commit order
	streams  map[string][]*record // by stream
	next     uint64               // the next event's position
	appended chan struct{}        // closed and replaced on every append

	grpc *grpc.Server
	lis  net.Listener
}

// Start serves on a loopback port until Close. Address is host:port, for
// a connection string such as "esdb://"+s.Address()+"?tls=false".
func Start() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{streams: map[string][]*record{}, appended: make(chan struct{}), next: 1 << 10, lis: lis}
	s.grpc = grpc.NewServer()
	api.RegisterStreamsServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(lis) }()
	return s, nil
}

// Address is where the server listens.
func (s *Server) Address() string { return s.lis.Addr().String() }

// Close stops the server, ending every subscription.
func (s *Server) Close() { s.grpc.Stop() }

// Append implements the Streams service.
func (s *Server) Append(stream api.Streams_AppendServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first message of an append must be its options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "stream name required")
	}
	var proposed []*api.AppendReq_ProposedMessage
	for {
		msg, err := stream.Recv()
		if err != nil {
			break // io.EOF: the client closed its side
		}
		if p := msg.GetProposedMessage(); p != nil {
			proposed = append(proposed, p)
		}
	}
	ids := make([]uuid.UUID, len(proposed))
	for i, p := range proposed {
		id, err := fromProtoUUID(p.GetId())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		ids[i] = id
	}
	resp := s.append(name, opts, proposed, ids)
	return stream.SendAndClose(resp)
}

func (s *Server) append(name string, opts *api.AppendReq_Options, proposed []*api.AppendReq_ProposedMessage, ids []uuid.UUID) *api.AppendResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	events := s.streams[name]
	exists := len(events) > 0
	current := uint64(len(events)) - 1 // the last revision, when exists

	// Idempotency: the ids already there, in order, where the expected
	// revision says the append goes (anywhere for any).
	if len(ids) > 0 {
		if at, ok := s.findRun(events, ids); ok {
			want, anyPlace := expectedStart(opts)
			if anyPlace || want == at {
				return success(at+uint64(len(ids))-1, events[at+uint64(len(ids))-1].position)
			}
		}
	}
	ok := false
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		ok = true
	case *api.AppendReq_Options_NoStream:
		ok = !exists
	case *api.AppendReq_Options_StreamExists:
		ok = exists
	case *api.AppendReq_Options_Revision:
		ok = exists && current == e.Revision
	}
	if !ok {
		return wrongExpected(opts, exists, current)
	}
	if len(proposed) == 0 {
		if !exists {
			return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
				CurrentRevisionOption: &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}},
				PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}}
		}
		return success(current, events[current].position)
	}
	now := time.Now()
	var last *record
	for i, p := range proposed {
		md := map[string]string{}
		for k, v := range p.GetMetadata() {
			md[k] = v
		}
		// .NET ticks (100 ns) since the Unix epoch, as KurrentDB stamps them.
		md["created"] = strconv.FormatInt(now.UnixNano()/100, 10)
		r := &record{id: ids[i], stream: name, revision: uint64(len(s.streams[name])), position: s.next,
			metadata: md, custom: slices.Clone(p.GetCustomMetadata()), data: slices.Clone(p.GetData())}
		// Positions grow with the event's size, as offsets in a log do.
		s.next += uint64(128 + len(r.data) + len(r.custom) + len(name))
		s.streams[name] = append(s.streams[name], r)
		s.log = append(s.log, r)
		last = r
	}
	close(s.appended)
	s.appended = make(chan struct{})
	return success(last.revision, last.position)
}

// findRun returns where ids stand in events, consecutively and in order.
func (s *Server) findRun(events []*record, ids []uuid.UUID) (uint64, bool) {
	for i, r := range events {
		if r.id != ids[0] {
			continue
		}
		if i+len(ids) > len(events) {
			return 0, false
		}
		for j := range ids {
			if events[i+j].id != ids[j] {
				return 0, false
			}
		}
		return uint64(i), true
	}
	return 0, false
}

// expectedStart is the revision an append's first event takes under its
// expected revision, and whether any place will do.
func expectedStart(opts *api.AppendReq_Options) (uint64, bool) {
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		return e.Revision + 1, false
	case *api.AppendReq_Options_NoStream:
		return 0, false
	}
	return 0, true
}

func success(revision, position uint64) *api.AppendResp {
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: revision},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: position, PreparePosition: position}},
	}}}
}

func wrongExpected(opts *api.AppendReq_Options, exists bool, current uint64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if exists {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: current}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
	}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
	case *api.AppendReq_Options_NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case *api.AppendReq_Options_StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// Read implements the Streams service: reads and subscriptions.
func (s *Server) Read(req *api.ReadReq, out api.Streams_ReadServer) error {
	o := req.GetOptions()
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	match, window, err := filterOf(o)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sub := o.GetSubscription() != nil
	count := o.GetCount()
	if sub {
		if err := out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
			SubscriptionId: uuid.NewString()}}}); err != nil {
			return err
		}
	}
	// next returns the records after the cursor (exclusive unless
	// inclusive), in the read's direction, and the wake channel of the
	// next append.
	var (
		cursor    uint64 // a revision (stream) or position ($all)
		inclusive = true
		stream    = string(o.GetStream().GetStreamIdentifier().GetStreamName())
	)
	switch {
	case o.GetStream() != nil:
		switch r := o.GetStream().GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			cursor = r.Revision
			inclusive = !sub // a subscription from a revision starts after it
		case *api.ReadReq_Options_StreamOptions_End:
			cursor, inclusive = ^uint64(0), backwards
		}
		s.mu.Lock()
		_, found := s.streams[stream]
		s.mu.Unlock()
		if !found && !sub {
			return out.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}}})
		}
	case o.GetAll() != nil:
		switch p := o.GetAll().GetAllOption().(type) {
		case *api.ReadReq_Options_AllOptions_Position:
			cursor = p.Position.GetCommitPosition()
			inclusive = !sub
		case *api.ReadReq_Options_AllOptions_End:
			cursor, inclusive = ^uint64(0), backwards
		}
	default:
		return status.Error(codes.InvalidArgument, "a read names a stream or $all")
	}
	key := func(r *record) uint64 {
		if stream != "" {
			return r.revision
		}
		return r.position
	}
	sent, looked := uint64(0), uint32(0)
	for {
		s.mu.Lock()
		var recs []*record
		if stream != "" {
			recs = s.streams[stream]
		} else {
			recs = s.log
		}
		recs = slices.Clone(recs)
		wake := s.appended
		s.mu.Unlock()
		if backwards {
			slices.Reverse(recs)
		}
		var last *record
		for _, r := range recs {
			k := key(r)
			if backwards {
				if k > cursor || (!inclusive && k == cursor) {
					continue
				}
			} else if k < cursor || (!inclusive && k == cursor) {
				continue
			}
			last = r
			looked++
			if match(r) {
				if err := out.Send(readEvent(r)); err != nil {
					return err
				}
				sent++
				if !sub && count > 0 && sent >= count {
					return nil
				}
			}
			if sub && window > 0 && looked%window == 0 && stream == "" {
				if err := out.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
					CommitPosition: r.position, PreparePosition: r.position}}}); err != nil {
					return err
				}
			}
		}
		if !sub {
			return nil
		}
		if last != nil {
			cursor, inclusive = key(last), false
		}
		if err := out.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
			return err
		}
		select {
		case <-out.Context().Done():
			return out.Context().Err()
		case <-wake:
		}
	}
}

// filterOf returns a read's filter and its checkpoint window.
func filterOf(o *api.ReadReq_Options) (func(*record) bool, uint32, error) {
	f := o.GetFilter()
	if f == nil {
		return func(*record) bool { return true }, 0, nil
	}
	window := f.GetMax()
	if window == 0 {
		window = 32
	}
	window *= max(f.GetCheckpointIntervalMultiplier(), 1)
	expr, field := f.GetStreamIdentifier(), func(r *record) string { return r.stream }
	if expr == nil {
		expr, field = f.GetEventType(), func(r *record) string { return r.metadata["type"] }
	}
	var re *regexp.Regexp
	if expr.GetRegex() != "" {
		var err error
		if re, err = regexp.Compile(expr.GetRegex()); err != nil {
			return nil, 0, err
		}
	}
	prefixes := expr.GetPrefix()
	return func(r *record) bool {
		v := field(r)
		if re != nil && !re.MatchString(v) {
			return false
		}
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(v, p) {
				return true
			}
		}
		return false
	}, window, nil
}

func readEvent(r *record) *api.ReadResp {
	md := make(map[string]string, len(r.metadata))
	for k, v := range r.metadata {
		md[k] = v
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id: toProtoUUID(r.id), StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision: r.revision, PreparePosition: r.position, CommitPosition: r.position,
			Metadata: md, CustomMetadata: r.custom, Data: r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.position},
	}}}
}

// The protocol's UUIDs: two int64 halves (structured) or a string.
func toProtoUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func fromProtoUUID(u *shared.UUID) (uuid.UUID, error) {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(st.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(st.GetLeastSignificantBits()))
		return id, nil
	}
	return uuid.Parse(u.GetString_())
}

// The test hooks below alter stored records directly, bypassing the
// protocol, as someone with access to a server's files could. They let the
// adapter's tests show that eventstore.Verify catches what a KurrentDB
// server does not prevent. (Delete itself is the protocol's stream
// deletion, which this server does not implement.) A live subscription does not see the change:
// it has already sent the record.

// SetEventData overwrites the payload of the event at revision of stream.
func (s *Server) SetEventData(stream string, revision uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.recordAt(stream, revision)
	if err != nil {
		return err
	}
	r.data = slices.Clone(data)
	return nil
}

// DeleteEvent removes the event at revision of stream. The later events of the
// stream move down one revision each, so the stream stays numbered without
// a gap, as if the event had never been written; their $all positions stay
// as they were.
func (s *Server) DeleteEvent(stream string, revision uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.recordAt(stream, revision)
	if err != nil {
		return err
	}
	events := s.streams[stream]
	for _, later := range events[revision+1:] {
		later.revision--
	}
	s.streams[stream] = slices.Delete(events, int(revision), int(revision)+1)
	s.log = slices.DeleteFunc(s.log, func(x *record) bool { return x == r })
	return nil
}

// SwapEvents exchanges the events at revisions a and b of stream: each takes the
// other's place (revision and $all position) with everything else of its
// own.
func (s *Server) SwapEvents(stream string, a, b uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ra, err := s.recordAt(stream, a)
	if err != nil {
		return err
	}
	rb, err := s.recordAt(stream, b)
	if err != nil {
		return err
	}
	ra.id, rb.id = rb.id, ra.id
	ra.metadata, rb.metadata = rb.metadata, ra.metadata
	ra.custom, rb.custom = rb.custom, ra.custom
	ra.data, rb.data = rb.data, ra.data
	return nil
}

// recordAt returns the record at revision of stream; s.mu must be held.
func (s *Server) recordAt(stream string, revision uint64) (*record, error) {
	events := s.streams[stream]
	if revision >= uint64(len(events)) {
		return nil, status.Errorf(codes.NotFound, "stream %q has no revision %d", stream, revision)
	}
	return events[revision], nil
}
