package deviations

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// Deviation is an audit case's current state.
type Deviation struct {
	FacilityID  string                 `json:"facility_id"`
	DeviationID string                 `json:"deviation_id"`
	FiscalYear  int                    `json:"fiscal_year"`
	Province    string                 `json:"province"`
	County      string                 `json:"county,omitempty"`
	Agency      string                 `json:"agency"`
	Program     string                 `json:"program"`
	Bank        string                 `json:"bank,omitempty"`
	Kind        facility.DeviationKind `json:"kind"`
	State       string                 `json:"state"` // StateOpen or StateResolved
	Description string                 `json:"description"`
	// InspectionID names the inspection that found the case, "" when an
	// auditor opened it on their own finding.
	InspectionID string `json:"inspection_id,omitempty"`
	// Inspection is that inspection's current (corrected) figures.
	Inspection     *Inspection         `json:"inspection,omitempty"`
	OpenedAt       time.Time           `json:"opened_at"`
	OpenedBy       string              `json:"opened_by"`
	Evidence       int                 `json:"evidence"` // pieces of evidence added
	Resolution     facility.Resolution `json:"resolution,omitempty"`
	RecoveredRials int64               `json:"recovered_rials"`
	ResolutionNote string              `json:"resolution_note,omitempty"`
	ResolvedAt     *time.Time          `json:"resolved_at,omitempty"`
	ResolvedBy     string              `json:"resolved_by,omitempty"`
	Steps          int                 `json:"steps"`
	LastStepAt     time.Time           `json:"last_step_at"`
	OpenedPosition uint64              `json:"opened_position"` // global position of the opening
	Position       uint64              `json:"position"`        // global position of the latest change
}

// Inspection is the inspection a case was opened from, as corrected.
type Inspection struct {
	Firm         string                    `json:"firm"`
	Guideline    string                    `json:"guideline"`
	Status       facility.InspectionStatus `json:"status"`
	Confirmed    bool                      `json:"confirmed"`
	VerifiedJobs int                       `json:"verified_jobs"`
}

// Step is one step of a case's trail: what was done, by whom, when, why,
// and the event that records it.
type Step struct {
	Step          int              `json:"step"` // 1, 2, ... within the case
	Action        Action           `json:"action"`
	Actor         eventstore.Actor `json:"actor"`
	OccurredAt    time.Time        `json:"occurred_at"` // business time
	RecordedAt    time.Time        `json:"recorded_at"` // system time
	EventID       string           `json:"event_id"`
	EventType     string           `json:"event_type"`
	StreamVersion uint64           `json:"stream_version"`
	Position      uint64           `json:"position"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	CausationID   string           `json:"causation_id,omitempty"`

	// opened
	Kind         facility.DeviationKind `json:"kind,omitempty"`
	InspectionID string                 `json:"inspection_id,omitempty"`
	Description  string                 `json:"description,omitempty"`
	// evidence_added
	Evidence    string `json:"evidence,omitempty"`
	DocumentRef string `json:"document_ref,omitempty"`
	// resolved
	Resolution     facility.Resolution `json:"resolution,omitempty"`
	RecoveredRials int64               `json:"recovered_rials,omitempty"`
	Note           string              `json:"note,omitempty"`
	// corrected
	Correction *Correction `json:"correction,omitempty"`
}

// Correction is what a corrected step changed: a figure of an earlier
// event, from OldValue to NewValue, for Reason.
type Correction struct {
	CorrectsEventID   string         `json:"corrects_event_id"`
	CorrectsEventType string         `json:"corrects_event_type"`
	Field             facility.Field `json:"field"`
	OldValue          facility.Value `json:"old_value"`
	NewValue          facility.Value `json:"new_value"`
	Reason            string         `json:"reason"`
}

func (r *row) public() Deviation {
	d := Deviation{
		FacilityID: r.facilityID, DeviationID: r.deviationID, FiscalYear: int(r.dims.fiscalYear),
		Province: r.dims.province, County: r.dims.county, Agency: r.dims.agency, Program: r.dims.program,
		Bank: r.dims.bank, Kind: facility.DeviationKind(r.kind), State: r.state, Description: r.description,
		InspectionID: r.inspectionID, OpenedAt: micros(r.openedAt), OpenedBy: r.openedBy, Evidence: int(r.evidence),
		Resolution: facility.Resolution(r.resolution), RecoveredRials: r.recovered, ResolutionNote: r.resolutionNote,
		ResolvedBy: r.resolvedBy, Steps: int(r.steps), LastStepAt: micros(r.lastStepAt),
		OpenedPosition: uint64(r.openedPosition), Position: uint64(r.updatedPosition),
	}
	if r.inspConfirmed.Valid {
		d.Inspection = &Inspection{
			Firm: r.inspFirm, Guideline: r.inspGuideline, Status: facility.InspectionStatus(r.inspStatus),
			Confirmed: r.inspConfirmed.Int64 == 1, VerifiedJobs: int(r.inspVerified.Int64),
		}
	}
	if r.resolvedAt.Valid {
		t := micros(r.resolvedAt.Int64)
		d.ResolvedAt = &t
	}
	return d
}

func (s *step) public() Step {
	p := Step{
		Step: int(s.n), Action: s.action, Actor: eventstore.Actor{ID: s.actorID, Role: s.actorRole, Org: s.actorOrg},
		OccurredAt: micros(s.occurredAt), RecordedAt: micros(s.recordedAt), EventID: s.eventID, EventType: s.eventType,
		StreamVersion: uint64(s.version), Position: uint64(s.position), CorrelationID: s.correlationID, CausationID: s.causationID,
	}
	switch s.action {
	case ActionOpened:
		p.Kind, p.InspectionID, p.Description = facility.DeviationKind(s.kind), s.inspectionID, s.text
	case ActionEvidenceAdded:
		p.Evidence, p.DocumentRef = s.text, s.documentRef
	case ActionResolved:
		p.Resolution, p.RecoveredRials, p.Note = facility.Resolution(s.resolution), s.recovered, s.text
	case ActionCorrected:
		p.Correction = &Correction{
			CorrectsEventID: s.correctsID, CorrectsEventType: s.correctsTyp, Field: facility.Field(s.field),
			OldValue: parseValue(s.valueKind, s.oldValue), NewValue: parseValue(s.valueKind, s.newValue), Reason: s.reason,
		}
	}
	return p
}

func micros(n int64) time.Time { return time.UnixMicro(n).UTC() }

// Filter selects cases. Zero fields match everything.
type Filter struct {
	FiscalYear int
	Province   string
	County     string
	Agency     string
	Program    string
	Bank       string
	State      string                 // StateOpen or StateResolved
	Kind       facility.DeviationKind // deviation, violation or discrepancy
	FacilityID string                 // one facility's cases
}

func (f Filter) where() (projections.Where, error) {
	switch f.State {
	case "", StateOpen, StateResolved:
	default:
		return projections.Where{}, fmt.Errorf("deviations: %w: unknown state %q (open or resolved)", domain.ErrInvalid, f.State)
	}
	switch f.Kind {
	case "", facility.KindDeviation, facility.KindViolation, facility.KindDiscrepancy:
	default:
		return projections.Where{}, fmt.Errorf("deviations: %w: unknown kind %q (deviation, violation or discrepancy)", domain.ErrInvalid, f.Kind)
	}
	var w projections.Where
	w.EqInt("fiscal_year", f.FiscalYear)
	w.Eq("province", f.Province)
	w.Eq("county", f.County)
	w.Eq("agency", f.Agency)
	w.Eq("program", f.Program)
	w.Eq("bank", f.Bank)
	w.Eq("state", f.State)
	w.Eq("kind", string(f.Kind))
	w.Eq("facility_id", f.FacilityID)
	return w, nil
}

// Sort orders a page of cases.
type Sort string

// The orders Deviations offers; each is a total order, so cursors never
// skip or repeat a case.
const (
	// SortOpened: the most recently opened first (the default).
	SortOpened Sort = "opened"
	// SortUpdated: the most recently changed first, then the most
	// recently opened.
	SortUpdated Sort = "updated"
	// SortRecovered: the most rials recovered first, then the most
	// recently opened.
	SortRecovered Sort = "recovered"
	// SortID: by facility id, then deviation id, ascending.
	SortID Sort = "id"
)

// Page asks for one page of cases.
type Page struct {
	After string // the Next cursor of the previous page; "" for the first
	Limit int    // default 50, at most MaxLimit
	Sort  Sort
}

// MaxLimit bounds Page.Limit.
const MaxLimit = 1000

// DeviationPage is one page of cases.
type DeviationPage struct {
	Deviations []Deviation
	// Next is the cursor of the next page, "" when this is the last.
	Next string
	// Position is the log position the page reflects (read in the same
	// snapshot as the rows).
	Position uint64
}

// Trail is one case with its every step, oldest first.
type Trail struct {
	Deviation Deviation
	Steps     []Step
	Position  uint64 // the log position the trail reflects
}

// selectDeviations reads deviations rows, for row.scan.
var selectDeviations = `SELECT ` + strings.Join(deviationColumns, ", ") + ` FROM ` + DeviationsTable

// Reader queries the deviations read model. It is safe for concurrent use.
type Reader struct {
	q *projections.Queries
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{q: projections.NewQueries(db, Name)} }

// Deviations returns a page of the cases matching f. An unknown state,
// kind or sort, a negative limit or a cursor this query did not return
// give an error matching domain.ErrInvalid.
func (r *Reader) Deviations(ctx context.Context, f Filter, p Page) (DeviationPage, error) {
	limit, err := projections.PageLimit(p.Limit, MaxLimit)
	if err != nil {
		return DeviationPage{}, fmt.Errorf("deviations: %w", err)
	}
	if p.Sort == "" {
		p.Sort = SortOpened
	}
	where, err := f.where()
	if err != nil {
		return DeviationPage{}, err
	}
	var order string
	switch p.Sort {
	case SortOpened:
		order = "opened_position DESC"
	case SortUpdated:
		order = "updated_position DESC, opened_position DESC"
	case SortRecovered:
		order = "recovered_rials DESC, opened_position DESC"
	case SortID:
		order = "facility_id, deviation_id"
	default:
		return DeviationPage{}, fmt.Errorf("deviations: %w: unknown sort %q (opened, updated, recovered or id)", domain.ErrInvalid, p.Sort)
	}
	if p.After != "" {
		if err := afterCursor(&where, p.Sort, p.After); err != nil {
			return DeviationPage{}, err
		}
	}
	q := selectDeviations + ` WHERE ` + where.String() + ` ORDER BY ` + order + ` LIMIT ` + strconv.Itoa(limit+1)
	var page DeviationPage
	page.Deviations, page.Next, page.Position, err = projections.SelectPage(ctx, r.q, q, where.Args(), limit,
		func(s *projections.Row) (Deviation, error) {
			var row row
			err := row.scan(s)
			return row.public(), err
		},
		func(d Deviation) string { return encodeCursor(p.Sort, d) })
	if err != nil {
		return DeviationPage{}, fmt.Errorf("deviations: query: %w", err)
	}
	return page, nil
}

// trailQuery reads a case joined with each step of its trail, in order.
// A case always has a step: the one that opened it is written with it.
var trailQuery = func() string {
	cols := make([]string, 0, len(deviationColumns)+len(stepColumns))
	for _, c := range deviationColumns {
		cols = append(cols, "d."+c)
	}
	for _, c := range stepColumns {
		cols = append(cols, "s."+c)
	}
	return `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + DeviationsTable + ` d JOIN ` + StepsTable +
		` s ON s.facility_id = d.facility_id AND s.deviation_id = d.deviation_id
WHERE d.facility_id = ? AND d.deviation_id = ? ORDER BY s.step`
}()

// Trail returns one case, named by its facility and deviation ids, with
// every step of its trail; an error matching domain.ErrNotFound when there
// is no such case.
func (r *Reader) Trail(ctx context.Context, facilityID, deviationID string) (Trail, error) {
	var (
		out   Trail
		err   error
		found bool
	)
	// The case's columns come again with every step: one statement, so
	// that the case and its steps are of one snapshot.
	out.Position, err = r.q.Select(ctx, trailQuery, []any{facilityID, deviationID}, func(s *projections.Row) error {
		var (
			row  row
			st   step
			both columns
		)
		// columns.Scan only collects the destinations: it cannot fail.
		_ = row.scan(&both)
		_ = st.scan(&both)
		if err := s.Scan(both...); err != nil {
			return err
		}
		if !found {
			out.Deviation, found = row.public(), true
		}
		out.Steps = append(out.Steps, st.public())
		return nil
	})
	if err != nil {
		return Trail{}, fmt.Errorf("deviations: trail: %w", err)
	}
	if !found {
		return Trail{}, &domain.NotFoundError{Kind: "deviation", ID: facilityID + "/" + deviationID}
	}
	return out, nil
}

// columns collects the destinations of several scans, to scan them from
// one row.
type columns []any

func (c *columns) Scan(dest ...any) error {
	*c = append(*c, dest...)
	return nil
}

// encodeCursor returns the cursor of the page after d: the values of d
// the sort compares. The deviation id comes last, as it may itself
// contain ':'.
func encodeCursor(s Sort, d Deviation) string {
	var v string
	switch s {
	case SortOpened:
		v = strconv.FormatUint(d.OpenedPosition, 10)
	case SortUpdated:
		v = strconv.FormatUint(d.Position, 10) + ":" + strconv.FormatUint(d.OpenedPosition, 10)
	case SortRecovered:
		v = strconv.FormatInt(d.RecoveredRials, 10) + ":" + strconv.FormatUint(d.OpenedPosition, 10)
	default:
		v = d.FacilityID + ":" + d.DeviationID
	}
	return projections.EncodeCursor(string(s), v)
}

// afterCursor adds to where the condition that keeps the rows after the
// cursor's.
func afterCursor(where *projections.Where, s Sort, cursor string) error {
	bad := fmt.Errorf("deviations: %w: the cursor is not one this query returned", domain.ErrInvalid)
	v, ok := projections.DecodeCursor(cursor, string(s))
	if !ok {
		return bad
	}
	if s == SortID {
		fid, did, ok := strings.Cut(v, ":")
		if !ok {
			return bad
		}
		where.Add("(facility_id > ? OR (facility_id = ? AND deviation_id > ?))", fid, fid, did)
		return nil
	}
	var nums []int64
	for part := range strings.SplitSeq(v, ":") {
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return bad
		}
		nums = append(nums, n)
	}
	switch {
	case s == SortOpened && len(nums) == 1:
		where.Add("opened_position < ?", nums[0])
	case s == SortUpdated && len(nums) == 2:
		where.Add("(updated_position < ? OR (updated_position = ? AND opened_position < ?))", nums[0], nums[0], nums[1])
	case s == SortRecovered && len(nums) == 2:
		where.Add("(recovered_rials < ? OR (recovered_rials = ? AND opened_position < ?))", nums[0], nums[0], nums[1])
	default:
		return bad
	}
	return nil
}
