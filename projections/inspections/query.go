package inspections

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/projections"
)

// Dim is a dimension inspection figures can be grouped and filtered by.
type Dim string

// The dimensions: the facility's six and the inspection's two.
const (
	DimFiscalYear Dim = "fiscal_year"
	DimProvince   Dim = "province"
	DimCounty     Dim = "county"
	DimAgency     Dim = "agency"
	DimProgram    Dim = "program"
	DimBank       Dim = "bank"
	DimFirm       Dim = "firm"
	DimGuideline  Dim = "guideline"
)

// Filter selects inspections by the dimensions. Zero fields match
// everything.
type Filter struct {
	FiscalYear int
	Province   string
	County     string
	Agency     string
	Program    string
	Bank       string
	Firm       string
	Guideline  string // guideline version
}

// Sort orders the groups of a Stats answer.
type Sort string

// The orders Stats offers. Every order ends with the group's dimensions
// ascending, so it is total and the same on every call.
const (
	// SortDims: by the grouped dimensions, in GroupBy order (the default).
	SortDims Sort = "dims"
	// SortInspections: by inspections.
	SortInspections Sort = "inspections"
	// SortFacilities: by facilities inspected.
	SortFacilities Sort = "facilities"
	// SortConfirmed: by confirmed facilities.
	SortConfirmed Sort = "confirmed"
	// SortConfirmationRate: by confirmed facilities / facilities inspected.
	SortConfirmationRate Sort = "confirmation_rate"
	// SortFindings: by findings of every kind.
	SortFindings Sort = "findings"
)

// Order is a sort's direction.
type Order string

// The directions. The default is ascending for SortDims and descending (the
// largest first) for the figures.
const (
	Asc  Order = "asc"
	Desc Order = "desc"
)

// Query says how to group and order the figures.
type Query struct {
	GroupBy []Dim // none: one group, the total
	Sort    Sort
	Order   Order
	Limit   int // the first Limit groups; 0 means all
}

// Statuses counts inspections by what they found.
type Statuses struct {
	Active   int64 `json:"active"`
	Inactive int64 `json:"inactive"`
	NotFound int64 `json:"not_found"`
	Misused  int64 `json:"misused"`
}

// Findings counts audit cases opened from inspections, by kind.
type Findings struct {
	Deviation   int64 `json:"deviation"`
	Violation   int64 `json:"violation"`
	Discrepancy int64 `json:"discrepancy"`
}

// Total is the number of findings of every kind.
func (f Findings) Total() int64 { return f.Deviation + f.Violation + f.Discrepancy }

// Group is one group of a Stats answer: the dimensions grouped by (the
// others are zero) and the group's figures, as the package documentation
// defines them.
type Group struct {
	FiscalYear int    `json:"fiscal_year,omitempty"`
	Province   string `json:"province,omitempty"`
	County     string `json:"county,omitempty"`
	Agency     string `json:"agency,omitempty"`
	Program    string `json:"program,omitempty"`
	Bank       string `json:"bank,omitempty"`
	Firm       string `json:"firm,omitempty"`
	Guideline  string `json:"guideline,omitempty"`

	Inspections          int64 `json:"inspections"`
	Facilities           int64 `json:"facilities"`           // distinct facilities inspected
	ConfirmedFacilities  int64 `json:"confirmed_facilities"` // distinct facilities with a confirming inspection
	ConfirmedInspections int64 `json:"confirmed_inspections"`
	JobsVerified         int64 `json:"jobs_verified"`
	// ConfirmationRate is ConfirmedFacilities / Facilities, 0 when no
	// facility was inspected.
	ConfirmationRate float64  `json:"confirmation_rate"`
	Statuses         Statuses `json:"statuses"`
	Findings         Findings `json:"findings"`
}

// Stats is the answer to a Stats query.
type Stats struct {
	Groups   []Group
	Position uint64 // the log position the figures reflect
}

// Reader queries the inspections read model. It is safe for concurrent use.
type Reader struct {
	q *projections.Queries
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{q: projections.NewQueries(db, Name)} }

// Stats sums the figures of the inspections matching f, grouped by
// q.GroupBy, ordered by q.Sort and q.Order, the first q.Limit groups. Bad
// arguments (an unknown or repeated dimension, sort or order, a negative
// limit) give an error matching domain.ErrInvalid.
func (r *Reader) Stats(ctx context.Context, f Filter, q Query) (Stats, error) {
	if err := q.check(); err != nil {
		return Stats{}, err
	}
	// The level keeps exactly the firm/guideline dimensions the query
	// groups or filters by: within it a facility is counted once per value
	// of those, so facility counts add up over everything else. County and
	// bank are kept only when asked for, so that most queries sum the far
	// fewer rows of the coarse levels.
	level := 0
	if f.County != "" || f.Bank != "" || slices.Contains(q.GroupBy, DimCounty) || slices.Contains(q.GroupBy, DimBank) {
		level |= levelDetail
	}
	if f.Firm != "" || slices.Contains(q.GroupBy, DimFirm) {
		level |= levelFirm
	}
	if f.Guideline != "" || slices.Contains(q.GroupBy, DimGuideline) {
		level |= levelGuideline
	}
	cols := make([]string, len(q.GroupBy))
	for i, d := range q.GroupBy {
		cols[i] = string(d)
	}
	sums := make([]string, 0, len(statsColumns)-9)
	for _, c := range statsColumns[9:] {
		sums = append(sums, r.q.Dialect().Sum(c))
	}
	var where projections.Where
	where.Add("level = ?", level)
	f.where(&where)
	query := `SELECT ` + strings.Join(append(slices.Clone(cols), sums...), ", ") + ` FROM ` + StatsTable +
		` WHERE ` + where.String()
	if len(cols) > 0 {
		query += ` GROUP BY ` + strings.Join(cols, ", ") + ` ORDER BY ` + strings.Join(cols, ", ")
	}
	var (
		out  Stats
		err  error
		dest []any
	)
	out.Position, err = r.q.Select(ctx, query, where.Args(), func(s *projections.Row) error {
		var (
			g  Group
			fy int64
		)
		dest = dest[:0]
		for _, d := range q.GroupBy {
			dest = append(dest, g.field(d, &fy))
		}
		dest = append(dest, &g.Inspections, &g.Facilities, &g.ConfirmedFacilities, &g.ConfirmedInspections, &g.JobsVerified,
			&g.Statuses.Active, &g.Statuses.Inactive, &g.Statuses.NotFound, &g.Statuses.Misused,
			&g.Findings.Deviation, &g.Findings.Violation, &g.Findings.Discrepancy)
		if err := s.Scan(dest...); err != nil {
			return err
		}
		g.FiscalYear = int(fy)
		if g.Facilities > 0 {
			g.ConfirmationRate = float64(g.ConfirmedFacilities) / float64(g.Facilities)
		}
		out.Groups = append(out.Groups, g)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("inspections: stats: %w", err)
	}
	q.sort(out.Groups)
	if q.Limit > 0 && len(out.Groups) > q.Limit {
		out.Groups = out.Groups[:q.Limit]
	}
	return out, nil
}

func (q Query) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("inspections: %w: "+format, append([]any{domain.ErrInvalid}, args...)...)
	}
	seen := map[Dim]bool{}
	for _, d := range q.GroupBy {
		switch d {
		case DimFiscalYear, DimProvince, DimCounty, DimAgency, DimProgram, DimBank, DimFirm, DimGuideline:
		default:
			return bad("cannot group by %q", d)
		}
		if seen[d] {
			return bad("%q is grouped by twice", d)
		}
		seen[d] = true
	}
	switch q.Sort {
	case "", SortDims, SortInspections, SortFacilities, SortConfirmed, SortConfirmationRate, SortFindings:
	default:
		return bad("unknown sort %q (dims, inspections, facilities, confirmed, confirmation_rate or findings)", q.Sort)
	}
	switch q.Order {
	case "", Asc, Desc:
	default:
		return bad("unknown order %q (asc or desc)", q.Order)
	}
	if q.Limit < 0 {
		return bad("negative limit %d", q.Limit)
	}
	return nil
}

// sort orders groups (which arrive ordered by their dimensions) by the
// query's sort; the stable sort keeps the dimensions' order among ties.
func (q Query) sort(groups []Group) {
	by := q.Sort
	if by == "" {
		by = SortDims
	}
	desc := by != SortDims
	if q.Order != "" {
		desc = q.Order == Desc
	}
	if by == SortDims {
		if desc {
			slices.Reverse(groups)
		}
		return
	}
	figure := func(a, b *Group) int {
		switch by {
		case SortInspections:
			return cmp.Compare(a.Inspections, b.Inspections)
		case SortFacilities:
			return cmp.Compare(a.Facilities, b.Facilities)
		case SortConfirmed:
			return cmp.Compare(a.ConfirmedFacilities, b.ConfirmedFacilities)
		case SortConfirmationRate:
			// Exact: compare the fractions by cross-multiplying (every
			// group has at least one facility).
			return cmp.Compare(a.ConfirmedFacilities*b.Facilities, b.ConfirmedFacilities*a.Facilities)
		}
		return cmp.Compare(a.Findings.Total(), b.Findings.Total())
	}
	slices.SortStableFunc(groups, func(a, b Group) int {
		c := figure(&a, &b)
		if desc {
			c = -c
		}
		return c
	})
}

// field returns where to scan dimension d of the group (fiscal year into
// fy, which the caller converts).
func (g *Group) field(d Dim, fy *int64) any {
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
	case DimBank:
		return &g.Bank
	case DimFirm:
		return &g.Firm
	}
	return &g.Guideline
}

// where adds the filter's conditions to w.
func (f Filter) where(w *projections.Where) {
	w.EqInt("fiscal_year", f.FiscalYear)
	w.Eq("province", f.Province)
	w.Eq("county", f.County)
	w.Eq("agency", f.Agency)
	w.Eq("program", f.Program)
	w.Eq("bank", f.Bank)
	w.Eq("firm", f.Firm)
	w.Eq("guideline", f.Guideline)
}
