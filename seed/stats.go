package seed

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payesh/payesh/domain/facility"
)

// Funnel counts plans through the steps of the programme and what they
// promised, received and reported.
type Funnel struct {
	Registered int // plans registered
	Referred   int // approved in expert review and sent to a bank
	Approved   int // loans approved by the bank
	Paid       int // loans with at least one tranche paid
	Closed     int // files closed
	// QuotaRefused counts bank refusals for lack of free quota.
	QuotaRefused int

	JobsPromised         int64 // by the registered plans
	JobsPromisedApproved int64 // by the approved plans
	// Reporting counts the paid plans whose agency has registered a jobs
	// figure; JobsReported is the latest such figure (as corrected) and
	// JobsPromisedReporting what those plans promised.
	Reporting             int
	JobsReported          int64
	JobsPromisedReporting int64

	ApprovedRials  int64
	DisbursedRials int64 // as corrected
}

func (f *Funnel) add(x facility.Facility) {
	f.Registered++
	f.JobsPromised += int64(x.JobsPromised())
	if x.Bank() != "" {
		f.Referred++
	}
	if x.Stage() == facility.StageLoanRejected && strings.HasPrefix(x.RejectionReason(), QuotaExhausted) {
		f.QuotaRefused++
	}
	if x.Stage() == facility.StageClosed {
		f.Closed++
	}
	if x.ApprovedRials() > 0 {
		f.Approved++
		f.ApprovedRials += x.ApprovedRials()
		f.JobsPromisedApproved += int64(x.JobsPromised())
	}
	if x.TrancheCount() == 0 {
		return
	}
	f.Paid++
	f.DisbursedRials += x.DisbursedRials()
	reports := x.JobsReports()
	for i := len(reports) - 1; i >= 0; i-- {
		if reports[i].ReportedBy == facility.ReportedByAgency {
			f.Reporting++
			f.JobsReported += int64(reports[i].Jobs)
			f.JobsPromisedReporting += int64(x.JobsPromised())
			break
		}
	}
}

// Survey is the census of quick-yield firms: every paid plan whose first
// payment lies at least a year before the end of the history is in the
// population, and its first visit's findings are counted.
type Survey struct {
	Population   int
	Active       int
	Inactive     int
	NotFound     int
	Misused      int
	JobsPromised int64 // by the population
	JobsVerified int64 // found at the first visit (as corrected)
}

// Stats describes a generated history. Everything in it is computed from
// the facilities' final states (folded from their events, so corrections
// are applied) and from the quota events, so the same Stats can be
// recomputed from a store.
type Stats struct {
	End        time.Time // end of the history
	Facilities int       // plans registered
	Events     int       // events generated (outside the reference stream)

	Programs  map[string]Funnel // per programme
	Provinces map[string]Funnel // per province code
	// MarkaziRural is the rural-nomadic funnel of Markazi (IR-00).
	MarkaziRural Funnel

	Inspections int // field visits recorded
	Confirmed   int // of which confirmed the plan (as corrected)
	QuickYield  Survey

	Deviations     int            // audit cases opened
	DeviationsOpen int            // still open at the end
	Resolutions    map[string]int // resolved cases by resolution
	RecoveredRials int64
	Corrections    int // facility.corrected events
	Transfers      int // quota transfers
}

func newStats(end time.Time) *Stats {
	return &Stats{
		End: end, Programs: map[string]Funnel{}, Provinces: map[string]Funnel{}, Resolutions: map[string]int{},
	}
}

func (s *Stats) clone() Stats {
	c := *s
	c.Programs = maps.Clone(s.Programs)
	c.Provinces = maps.Clone(s.Provinces)
	c.Resolutions = maps.Clone(s.Resolutions)
	return c
}

// AddFacility counts one facility's final state; corrections is the number
// of facility.corrected events in its stream. It is how Stats are
// recomputed from a store.
func (s *Stats) AddFacility(f facility.Facility, corrections int) { s.addFacility(f, corrections) }

func (s *Stats) addFacility(f facility.Facility, corrections int) {
	s.Facilities++
	s.Corrections += corrections
	p := s.Programs[f.Program()]
	p.add(f)
	s.Programs[f.Program()] = p
	v := s.Provinces[f.Province()]
	v.add(f)
	s.Provinces[f.Province()] = v
	if f.Province() == provMarkazi && f.Program() == progRural {
		s.MarkaziRural.add(f)
	}
	inspections := f.Inspections()
	for _, in := range inspections {
		s.Inspections++
		if in.Confirmed {
			s.Confirmed++
		}
	}
	if f.Program() == progQuick && f.TrancheCount() > 0 && !f.FirstPaidAt().After(s.End.Add(-365*day)) {
		q := &s.QuickYield
		q.Population++
		q.JobsPromised += int64(f.JobsPromised())
		if len(inspections) > 0 {
			in := inspections[0]
			q.JobsVerified += int64(in.VerifiedJobs)
			switch in.Status {
			case facility.InspectionActive:
				q.Active++
			case facility.InspectionInactive:
				q.Inactive++
			case facility.InspectionNotFound:
				q.NotFound++
			case facility.InspectionMisused:
				q.Misused++
			}
		}
	}
	for _, d := range f.Deviations() {
		s.Deviations++
		if d.Open() {
			s.DeviationsOpen++
		} else {
			s.Resolutions[string(d.Resolution)]++
		}
	}
	s.RecoveredRials += f.RecoveredRials()
}

// Metric is one calibrated figure: what the history shows against what was
// published.
type Metric struct {
	Name      string
	Generated float64
	Published float64
	// Share is true for a proportion, compared in percentage points;
	// otherwise the comparison is relative.
	Share  bool
	Source string
}

// Diff is the difference from the published figure: percentage points for
// a share, percent of the published figure otherwise.
func (m Metric) Diff() float64 {
	if m.Share {
		return 100 * (m.Generated - m.Published)
	}
	return 100 * (m.Generated - m.Published) / m.Published
}

// Tolerance is how far the generated figure may be from the published one:
// 3 percentage points for a share, 6% for anything else.
func (m Metric) Tolerance() float64 {
	if m.Share {
		return 3
	}
	return 6
}

// Within reports whether the generated figure is within Tolerance.
func (m Metric) Within() bool {
	return !math.IsNaN(m.Generated) && math.Abs(m.Diff()) <= m.Tolerance()
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// Calibration compares the history with the published figures of
// /work/shared/data/README.md.
func (s Stats) Calibration() []Metric {
	mr := s.MarkaziRural
	home := s.Programs[progHome]
	inc := s.Programs[progInclusive]
	q := s.QuickYield
	i := func(n int) int64 { return int64(n) }
	const (
		rural  = "Markazi rural loans: 2,433 sent, 2,417 approved, 2,409 paid, 4,911 jobs"
		survey = "quick-yield survey of 4,000 firms"
		incl   = "inclusive employment: 162 plans (1,922 jobs) → 81 approved (357 jobs) → 75 paid, 278.7 bn rials, 312 jobs"
	)
	return []Metric{
		{"Markazi rural: approved / sent to bank", ratio(i(mr.Approved), i(mr.Referred)), 2417.0 / 2433, true, rural},
		{"Markazi rural: paid / sent to bank", ratio(i(mr.Paid), i(mr.Referred)), 2409.0 / 2433, true, rural},
		{"Markazi rural: jobs per paid loan", ratio(mr.JobsReported, i(mr.Reporting)), 4911.0 / 2409, false, rural},
		{"field inspections confirmed", ratio(i(s.Confirmed), i(s.Inspections)), 32668.0 / 48004, true, "1403 round: 48,004 inspected, 32,668 confirmed"},
		{"quick-yield: active", ratio(i(q.Active), i(q.Population)), 0.797, true, survey},
		{"quick-yield: inactive", ratio(i(q.Inactive), i(q.Population)), 0.095, true, survey},
		{"quick-yield: loan spent on housing", ratio(i(q.Misused), i(q.Population)), 0.025, true, survey},
		{"quick-yield: not found", ratio(i(q.NotFound), i(q.Population)), 0.058, true, survey},
		{"quick-yield: jobs found / promised", ratio(q.JobsVerified, q.JobsPromised), 0.482, true, survey},
		{"home-business: paid per loan (bn rials)", ratio(home.DisbursedRials, i(home.Paid)) / 1e9, 1169.0 / 1139, false, "Markazi 1403: 1,169 bn rials to 1,139 applicants"},
		{"inclusive: approved / registered", ratio(i(inc.Approved), i(inc.Registered)), 81.0 / 162, true, incl},
		{"inclusive: paid / approved", ratio(i(inc.Paid), i(inc.Approved)), 75.0 / 81, true, incl},
		{"inclusive: jobs forecast per plan", ratio(inc.JobsPromised, i(inc.Registered)), 1922.0 / 162, false, incl},
		{"inclusive: jobs promised per approved plan", ratio(inc.JobsPromisedApproved, i(inc.Approved)), 357.0 / 81, false, incl},
		{"inclusive: jobs created per paid plan", ratio(inc.JobsReported, i(inc.Reporting)), 312.0 / 75, false, incl},
		{"inclusive: paid per plan (bn rials)", ratio(inc.DisbursedRials, i(inc.Paid)) / 1e9, 278.7 / 75, false, incl},
		{"Markazi: jobs registered / committed", jobShare(s.Provinces[provMarkazi]), 6745.0 / 9328, true, "Markazi 1404: 6,745 of 9,328"},
		{"Ardabil: jobs registered / committed", jobShare(s.Provinces[provArdabil]), 0.60, true, "Ardabil: about 60%"},
	}
}

func jobShare(f Funnel) float64 { return ratio(f.JobsReported, f.JobsPromisedReporting) }

// WriteReport prints the funnels and the calibration table.
func (s Stats) WriteReport(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "programme\tregistered\treferred\tapproved\tpaid\tquota refused\tjobs promised\tjobs reported\tpaid (bn rials)\t\n")
	for _, id := range slices.Sorted(maps.Keys(s.Programs)) {
		f := s.Programs[id]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", id, f.Registered, f.Referred, f.Approved, f.Paid,
			f.QuotaRefused, f.JobsPromised, f.JobsReported, float64(f.DisbursedRials)/1e9)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d facilities, %d events; %d quota transfers; %d inspections (%d confirmed); "+
		"%d audit cases (%d open, %v); %d corrections\n\n",
		s.Facilities, s.Events, s.Transfers, s.Inspections, s.Confirmed, s.Deviations, s.DeviationsOpen,
		formatCounts(s.Resolutions), s.Corrections)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tgenerated\tpublished\tdiff\t\n")
	for _, m := range s.Calibration() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", m.Name, m.format(m.Generated), m.format(m.Published), m.formatDiff())
	}
	return tw.Flush()
}

func (m Metric) format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case m.Share:
		return fmt.Sprintf("%.1f%%", 100*v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (m Metric) formatDiff() string {
	d := m.Diff()
	mark := ""
	if !m.Within() {
		mark = " !"
	}
	switch {
	case math.IsNaN(d):
		return "n/a" + mark
	case m.Share:
		return fmt.Sprintf("%+.1f pp%s", d, mark)
	default:
		return fmt.Sprintf("%+.1f%%%s", d, mark)
	}
}

func formatCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
