package facilities

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
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

func (f Filter) where() (string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(col string, v any) {
		conds = append(conds, col+" = ?")
		args = append(args, v)
	}
	if f.FiscalYear != 0 {
		add("fiscal_year", f.FiscalYear)
	}
	for _, c := range []struct{ col, v string }{
		{"province", f.Province}, {"county", f.County}, {"agency", f.Agency},
		{"program", f.Program}, {"bank", f.Bank}, {"stage", string(f.Stage)},
	} {
		if c.v != "" {
			add(c.col, c.v)
		}
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
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

// Reader queries the facilities and job_counts read models. It is safe for
// concurrent use.
type Reader struct {
	db *projections.DB
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{db: db} }

// read runs f in one read snapshot.
func (r *Reader) read(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := r.db.Read.BeginTx(ctx, r.db.Dialect.ReadTx())
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return f(tx)
}

// Facility returns one facility, or an error matching domain.ErrNotFound.
func (r *Reader) Facility(ctx context.Context, id string) (Facility, uint64, error) {
	var (
		f   Facility
		pos uint64
	)
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		if pos, err = projections.ReadPosition(ctx, tx, r.db.Dialect, Name); err != nil {
			return err
		}
		var row row
		err = row.scan(tx.QueryRowContext(ctx, r.db.Dialect.Rebind(
			`SELECT `+strings.Join(facilityColumns, ", ")+` FROM `+FacilitiesTable+` WHERE facility_id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return &domain.NotFoundError{Kind: "facility", ID: id}
		}
		f = row.public()
		return err
	})
	return f, pos, err
}

// Facilities returns a page of the facilities matching f.
func (r *Reader) Facilities(ctx context.Context, f Filter, p Page) (FacilityPage, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	if p.Limit > MaxLimit {
		p.Limit = MaxLimit
	}
	if p.Sort == "" {
		p.Sort = SortID
	}
	where, args := f.where()
	var order string
	switch p.Sort {
	case SortID:
		order = "facility_id"
	case SortRecent:
		order = "updated_position DESC"
	case SortApproved:
		order = "approved_rials DESC, facility_id DESC"
	default:
		return FacilityPage{}, fmt.Errorf("facilities: unknown sort %q (id, recent or approved)", p.Sort)
	}
	if p.After != "" {
		cond, cargs, err := decodeCursor(p.Sort, p.After)
		if err != nil {
			return FacilityPage{}, err
		}
		where += " AND " + cond
		args = append(args, cargs...)
	}
	q := `SELECT ` + strings.Join(facilityColumns, ", ") + ` FROM ` + FacilitiesTable +
		` WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ` + strconv.Itoa(p.Limit+1)
	var page FacilityPage
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		if page.Position, err = projections.ReadPosition(ctx, tx, r.db.Dialect, Name); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, r.db.Dialect.Rebind(q), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var row row
			if err := row.scan(rows); err != nil {
				return err
			}
			page.Facilities = append(page.Facilities, row.public())
		}
		return rows.Err()
	})
	if err != nil {
		return FacilityPage{}, fmt.Errorf("facilities: query: %w", err)
	}
	if len(page.Facilities) > p.Limit {
		page.Facilities = page.Facilities[:p.Limit]
		page.Next = encodeCursor(p.Sort, page.Facilities[p.Limit-1])
	}
	return page, nil
}

// Cursors are opaque to clients: base64 of "sort:value".
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
	return base64.RawURLEncoding.EncodeToString([]byte(string(s) + ":" + v))
}

func decodeCursor(s Sort, cursor string) (string, []any, error) {
	bad := fmt.Errorf("facilities: %w: the cursor is not one this query returned", domain.ErrInvalid)
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", nil, bad
	}
	sort, v, ok := strings.Cut(string(raw), ":")
	if !ok || Sort(sort) != s {
		return "", nil, bad
	}
	switch s {
	case SortRecent:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", nil, bad
		}
		return "updated_position < ?", []any{n}, nil
	case SortApproved:
		a, id, ok := strings.Cut(v, ":")
		n, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil {
			return "", nil, bad
		}
		return "(approved_rials < ? OR (approved_rials = ? AND facility_id < ?))", []any{n, n, id}, nil
	}
	return "facility_id > ?", []any{v}, nil
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
		sums = append(sums, "CAST(COALESCE(SUM("+c+"), 0) AS "+r.db.Dialect.Int()+")")
	}
	where, args := f.where()
	q := `SELECT ` + strings.Join(append(append([]string{}, cols...), sums...), ", ") + ` FROM ` + JobCountsTable + ` WHERE ` + where
	if len(cols) > 0 {
		q += ` GROUP BY ` + strings.Join(cols, ", ") + ` ORDER BY ` + strings.Join(cols, ", ")
	}
	var out JobCounts
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		if out.Position, err = projections.ReadPosition(ctx, tx, r.db.Dialect, Name); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, r.db.Dialect.Rebind(q), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				g    JobCount
				fy   int64
				dest []any
			)
			for _, d := range groupBy {
				switch d {
				case DimFiscalYear:
					dest = append(dest, &fy)
				case DimProvince:
					dest = append(dest, &g.Province)
				case DimCounty:
					dest = append(dest, &g.County)
				case DimAgency:
					dest = append(dest, &g.Agency)
				case DimProgram:
					dest = append(dest, &g.Program)
				case DimBank:
					dest = append(dest, &g.Bank)
				}
			}
			dest = append(dest, &g.Registered, &g.Reviewed, &g.Referred, &g.Approved, &g.Disbursed, &g.Inspected, &g.Confirmed,
				&g.ApprovedRials, &g.DisbursedRials, &g.JobsPromised, &g.JobsReported, &g.JobsVerified)
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			g.FiscalYear = int(fy)
			out.Groups = append(out.Groups, g)
		}
		return rows.Err()
	})
	if err != nil {
		return JobCounts{}, fmt.Errorf("facilities: job counts: %w", err)
	}
	return out, nil
}
