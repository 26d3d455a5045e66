package facilities

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// Facility is one facilities row: a facility's current, corrected state.
type Facility struct {
	ID             string         `json:"id"`
	FiscalYear     int            `json:"fiscal_year"`
	Province       string         `json:"province"`
	County         string         `json:"county,omitempty"`
	Agency         string         `json:"agency"`
	Program        string         `json:"program"`
	Bank           string         `json:"bank,omitempty"`
	Stage          facility.Stage `json:"stage"`
	Title          string         `json:"title"`
	RequestedRials int64          `json:"requested_rials"`
	ApprovedRials  int64          `json:"approved_rials"`
	DisbursedRials int64          `json:"disbursed_rials"`
	Tranches       int            `json:"tranches"`
	JobsPromised   int            `json:"jobs_promised"`
	JobsReported   *int           `json:"jobs_reported"` // nil until a report
	JobsVerified   *int           `json:"jobs_verified"` // nil until an inspection confirms
	Inspections    int            `json:"inspections"`
	LastInspection *Inspection    `json:"last_inspection"`
	OpenDeviations int            `json:"open_deviations"`
	RecoveredRials int64          `json:"recovered_rials"`
	RegisteredAt   time.Time      `json:"registered_at"`
	ReviewedAt     *time.Time     `json:"reviewed_at"`
	ReferredAt     *time.Time     `json:"referred_at"`
	ApprovedAt     *time.Time     `json:"approved_at"`
	FirstPaidAt    *time.Time     `json:"first_paid_at"`
	ClosedAt       *time.Time     `json:"closed_at"`
	Version        uint64         `json:"version"`  // stream version of the latest event
	Position       uint64         `json:"position"` // global position of the latest event
}

// Inspection is a facility's latest inspection, as corrected.
type Inspection struct {
	ID        string                    `json:"id"`
	Firm      string                    `json:"firm"`
	Status    facility.InspectionStatus `json:"status"`
	Confirmed bool                      `json:"confirmed"`
	At        time.Time                 `json:"at"`
}

func (r *row) public() Facility {
	f := Facility{
		ID: r.id, FiscalYear: int(r.fiscalYear), Province: r.province, County: r.county, Agency: r.agency,
		Program: r.program, Bank: r.bank, Stage: facility.Stage(r.stage), Title: r.title,
		RequestedRials: r.requested, ApprovedRials: r.approved, DisbursedRials: r.disbursed,
		Tranches: int(r.tranches), JobsPromised: int(r.jobsPromised), JobsReported: intPtr(r.jobsReported),
		JobsVerified: intPtr(r.jobsVerified), Inspections: int(r.inspections), OpenDeviations: int(r.openDeviations),
		RecoveredRials: r.recovered, RegisteredAt: time.UnixMicro(r.registeredAt).UTC(),
		ReviewedAt: timePtr(r.reviewedAt), ReferredAt: timePtr(r.referredAt), ApprovedAt: timePtr(r.approvedAt),
		FirstPaidAt: timePtr(r.firstPaidAt), ClosedAt: timePtr(r.closedAt),
		Version: uint64(r.version), Position: uint64(r.position),
	}
	if r.inspections > 0 {
		f.LastInspection = &Inspection{
			ID: r.lastInspID, Firm: r.lastInspFirm, Status: facility.InspectionStatus(r.lastInspStat),
			Confirmed: r.lastInspConfirmed.Int64 == 1, At: time.UnixMicro(r.lastInspAt.Int64).UTC(),
		}
	}
	return f
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.UnixMicro(n.Int64).UTC()
	return &t
}

// Filter selects facilities, or job_counts rows, by the dimensions
// dashboards slice by. Zero fields match everything. Stage applies to
// facilities only.
type Filter struct {
	FiscalYear int
	Province   string
	County     string
	Agency     string
	Program    string
	Bank       string
	Stage      facility.Stage
}

func (f Filter) where() projections.Where {
	var w projections.Where
	w.EqInt("fiscal_year", f.FiscalYear)
	w.Eq("province", f.Province)
	w.Eq("county", f.County)
	w.Eq("agency", f.Agency)
	w.Eq("program", f.Program)
	w.Eq("bank", f.Bank)
	w.Eq("stage", string(f.Stage))
	return w
}

// Sort orders a page of facilities.
type Sort string

// The orders Facilities offers; each is a total order, so cursors never
// skip or repeat a row.
const (
	// SortID: by facility id, ascending (the default).
	SortID Sort = "id"
	// SortRecent: the most recently changed first.
	SortRecent Sort = "recent"
	// SortApproved: the largest approved loan first, then by id descending.
	SortApproved Sort = "approved"
)

// Page asks for one page of facilities.
type Page struct {
	After string // the Next cursor of the previous page; "" for the first
	Limit int    // default 50, at most 1000
	Sort  Sort
}

// MaxLimit bounds Page.Limit.
const MaxLimit = 1000

// FacilityPage is one page of facilities.
type FacilityPage struct {
	Facilities []Facility
	// Next is the cursor of the next page, "" when this is the last.
	Next string
	// Position is the log position the page reflects (read in the same
	// snapshot as the rows).
	Position uint64
}

// selectFacilities reads facilities rows, for scanFacility.
var selectFacilities = `SELECT ` + strings.Join(facilityColumns, ", ") + ` FROM ` + FacilitiesTable

func scanFacility(s *projections.Row) (Facility, error) {
	var r row
	err := r.scan(s)
	return r.public(), err
}

// Reader queries the facilities and job_counts read models. It is safe for
// concurrent use.
type Reader struct {
	q *projections.Queries
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{q: projections.NewQueries(db, Name)} }

// Facility returns one facility, or an error matching domain.ErrNotFound,
// with the position it reflects.
func (r *Reader) Facility(ctx context.Context, id string) (Facility, uint64, error) {
	var (
		f     Facility
		found bool
	)
	pos, err := r.q.Select(ctx, selectFacilities+` WHERE facility_id = ?`, []any{id}, func(s *projections.Row) error {
		var err error
		f, err = scanFacility(s)
		found = true
		return err
	})
	if err != nil {
		return Facility{}, 0, fmt.Errorf("facilities: facility: %w", err)
	}
	if !found {
		return Facility{}, pos, &domain.NotFoundError{Kind: "facility", ID: id}
	}
	return f, pos, nil
}

// Facilities returns a page of the facilities matching f. An unknown sort,
// a negative limit or a cursor this query did not return give an error
// matching domain.ErrInvalid.
func (r *Reader) Facilities(ctx context.Context, f Filter, p Page) (FacilityPage, error) {
	limit, err := projections.PageLimit(p.Limit, MaxLimit)
	if err != nil {
		return FacilityPage{}, fmt.Errorf("facilities: %w", err)
	}
	if p.Sort == "" {
		p.Sort = SortID
	}
	where := f.where()
	var order string
	switch p.Sort {
	case SortID:
		order = "facility_id"
	case SortRecent:
		order = "updated_position DESC"
	case SortApproved:
		order = "approved_rials DESC, facility_id DESC"
	default:
		return FacilityPage{}, fmt.Errorf("facilities: %w: unknown sort %q (id, recent or approved)", domain.ErrInvalid, p.Sort)
	}
	if p.After != "" {
		if err := afterCursor(&where, p.Sort, p.After); err != nil {
			return FacilityPage{}, err
		}
	}
	q := selectFacilities + ` WHERE ` + where.String() + ` ORDER BY ` + order + ` LIMIT ` + strconv.Itoa(limit+1)
	var page FacilityPage
	page.Facilities, page.Next, page.Position, err = projections.SelectPage(ctx, r.q, q, where.Args(), limit, scanFacility,
		func(f Facility) string { return encodeCursor(p.Sort, f) })
	if err != nil {
		return FacilityPage{}, fmt.Errorf("facilities: query: %w", err)
	}
	return page, nil
}

// encodeCursor returns the cursor of the page after f: the values of f the
// sort compares.
func encodeCursor(s Sort, f Facility) string {
	var v string
	switch s {
	case SortRecent:
		v = strconv.FormatUint(f.Position, 10)
	case SortApproved:
		v = strconv.FormatInt(f.ApprovedRials, 10) + ":" + f.ID
	default:
		v = f.ID
	}
	return projections.EncodeCursor(string(s), v)
}

// afterCursor adds to where the condition that keeps the rows after the
// cursor's.
func afterCursor(where *projections.Where, s Sort, cursor string) error {
	bad := fmt.Errorf("facilities: %w: the cursor is not one this query returned", domain.ErrInvalid)
	v, ok := projections.DecodeCursor(cursor, string(s))
	if !ok {
		return bad
	}
	switch s {
	case SortRecent:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad
		}
		where.Add("updated_position < ?", n)
	case SortApproved:
		a, id, ok := strings.Cut(v, ":")
		n, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil {
			return bad
		}
		// A row value, which both engines read as one bound of the
		// (…, approved_rials, facility_id) index's range.
		where.Add("(approved_rials, facility_id) < (?, ?)", n, id)
	default:
		where.Add("facility_id > ?", v)
	}
	return nil
}

// Dim is a dimension job counts can be grouped by.
type Dim string

// The dimensions.
const (
	DimFiscalYear Dim = "fiscal_year"
	DimProvince   Dim = "province"
	DimCounty     Dim = "county"
	DimAgency     Dim = "agency"
	DimProgram    Dim = "program"
	DimBank       Dim = "bank"
)

// JobCount is one group of job_counts: the dimensions grouped by (the others
// are zero) and the sums of the group's combinations. See the package
// documentation for what each figure counts.
type JobCount struct {
	FiscalYear int    `json:"fiscal_year,omitempty"`
	Province   string `json:"province,omitempty"`
	County     string `json:"county,omitempty"`
	Agency     string `json:"agency,omitempty"`
	Program    string `json:"program,omitempty"`
	Bank       string `json:"bank,omitempty"`

	Registered int64 `json:"registered"`
	Reviewed   int64 `json:"reviewed"`
	Referred   int64 `json:"referred"`
	Approved   int64 `json:"approved"`
	Disbursed  int64 `json:"disbursed"`
	Inspected  int64 `json:"inspected"`
	Confirmed  int64 `json:"confirmed"`

	ApprovedRials  int64 `json:"approved_rials"`
	DisbursedRials int64 `json:"disbursed_rials"`
	JobsPromised   int64 `json:"jobs_promised"`
	JobsReported   int64 `json:"jobs_reported"`
	JobsVerified   int64 `json:"jobs_verified"`
}

// JobCounts is the answer to a job counts query.
type JobCounts struct {
	Groups   []JobCount
	Position uint64 // the log position the figures reflect
}

// JobCounts sums the job_counts rows matching f, grouped by the given
// dimensions (none: one total), ordered by them.
func (r *Reader) JobCounts(ctx context.Context, f Filter, groupBy ...Dim) (JobCounts, error) {
	if f.Stage != "" {
		return JobCounts{}, fmt.Errorf("facilities: %w: job counts are not filtered by stage (they count every stage)", domain.ErrInvalid)
	}
	cols := make([]string, len(groupBy))
	for i, d := range groupBy {
		switch d {
		case DimFiscalYear, DimProvince, DimCounty, DimAgency, DimProgram, DimBank:
			cols[i] = string(d)
		default:
			return JobCounts{}, fmt.Errorf("facilities: %w: cannot group by %q", domain.ErrInvalid, d)
		}
	}
	sums := make([]string, 0, len(jobCountColumns)-6)
	for _, c := range jobCountColumns[6:] {
		sums = append(sums, r.q.Dialect().Sum(c))
	}
	where := f.where()
	q := `SELECT ` + strings.Join(append(slices.Clone(cols), sums...), ", ") + ` FROM ` + JobCountsTable + ` WHERE ` + where.String()
	if len(cols) > 0 {
		q += ` GROUP BY ` + strings.Join(cols, ", ") + ` ORDER BY ` + strings.Join(cols, ", ")
	}
	var (
		out  JobCounts
		err  error
		dest []any
	)
	out.Position, err = r.q.Select(ctx, q, where.Args(), func(s *projections.Row) error {
		var (
			g  JobCount
			fy int64
		)
		dest = dest[:0]
		for _, d := range groupBy {
			dest = append(dest, g.field(d, &fy))
		}
		dest = append(dest, &g.Registered, &g.Reviewed, &g.Referred, &g.Approved, &g.Disbursed, &g.Inspected, &g.Confirmed,
			&g.ApprovedRials, &g.DisbursedRials, &g.JobsPromised, &g.JobsReported, &g.JobsVerified)
		if err := s.Scan(dest...); err != nil {
			return err
		}
		g.FiscalYear = int(fy)
		out.Groups = append(out.Groups, g)
		return nil
	})
	if err != nil {
		return JobCounts{}, fmt.Errorf("facilities: job counts: %w", err)
	}
	return out, nil
}

// field returns where to scan dimension d of the group (a fiscal year into
// fy, which the caller converts).
func (g *JobCount) field(d Dim, fy *int64) any {
	switch d {
	case DimFiscalYear:
		return fy
	case DimProvince:
		return &g.Province
	case DimCounty:
		return &g.County
	case DimAgency:
		return &g.Agency
	case DimProgram:
		return &g.Program
	}
	return &g.Bank
}
