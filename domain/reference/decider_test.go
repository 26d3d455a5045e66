package reference_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/reference"
)

var (
	day1 = time.Date(2024, 3, 19, 20, 30, 0, 0, time.UTC)
	day2 = day1.AddDate(0, 6, 0)
)

func TestDecide(t *testing.T) {
	tehran := time.FixedZone("IRST", 12600)
	tests := []struct {
		name   string
		cmd    reference.Command
		want   []domain.Event
		target error  // error category expected, nil for success
		field  string // for validation errors
		code   string
	}{
		{
			name: "add agency, trims names and stores UTC",
			cmd:  reference.AddAgency{ID: "new-agency", NameEn: " New Agency ", NameFa: "دستگاه نو", ValidFrom: day1.In(tehran)},
			want: []domain.Event{reference.AgencyAdded{ID: "new-agency", NameEn: "New Agency", NameFa: "دستگاه نو", ValidFrom: day1}},
		},
		{
			name:   "add existing agency",
			cmd:    reference.AddAgency{ID: "welfare", NameEn: "Welfare", NameFa: "بهزیستی", ValidFrom: day1},
			target: domain.ErrConflict,
		},
		{
			name:   "agency slug with capitals",
			cmd:    reference.AddAgency{ID: "Welfare2", NameEn: "W", NameFa: "ب", ValidFrom: day1},
			target: domain.ErrInvalid, field: "id", code: "format",
		},
		{
			name:   "slug starting with a hyphen",
			cmd:    reference.AddBank{ID: "-bank", NameEn: "B", NameFa: "ب", ValidFrom: day1},
			target: domain.ErrInvalid, field: "id", code: "format",
		},
		{
			name:   "one-character slug",
			cmd:    reference.AddBank{ID: "b", NameEn: "B", NameFa: "ب", ValidFrom: day1},
			target: domain.ErrInvalid, field: "id", code: "format",
		},
		{
			name:   "slug of 64 characters",
			cmd:    reference.AddBank{ID: strings.Repeat("b", 64), NameEn: "B", NameFa: "ب", ValidFrom: day1},
			target: domain.ErrInvalid, field: "id", code: "format",
		},
		{
			name: "add bank",
			cmd:  reference.AddBank{ID: "ayandeh", NameEn: "Ayandeh Bank", NameFa: "بانک آینده", ValidFrom: day1},
			want: []domain.Event{reference.BankAdded{ID: "ayandeh", NameEn: "Ayandeh Bank", NameFa: "بانک آینده", ValidFrom: day1}},
		},
		{
			name:   "missing english name",
			cmd:    reference.AddBank{ID: "ayandeh", NameEn: "  ", NameFa: "بانک آینده", ValidFrom: day1},
			target: domain.ErrInvalid, field: "name_en", code: "required",
		},
		{
			name:   "missing persian name",
			cmd:    reference.AddBank{ID: "ayandeh", NameEn: "Ayandeh", ValidFrom: day1},
			target: domain.ErrInvalid, field: "name_fa", code: "required",
		},
		{
			name:   "swapped names",
			cmd:    reference.AddBank{ID: "ayandeh", NameEn: "بانک آینده", NameFa: "Ayandeh Bank", ValidFrom: day1},
			target: domain.ErrInvalid, field: "name_fa", code: "not_persian",
		},
		{
			name:   "name too long",
			cmd:    reference.AddBank{ID: "ayandeh", NameEn: strings.Repeat("a", 201), NameFa: "بانک", ValidFrom: day1},
			target: domain.ErrInvalid, field: "name_en", code: "too_long",
		},
		{
			name:   "control character",
			cmd:    reference.AddBank{ID: "ayandeh", NameEn: "Aya\x00ndeh", NameFa: "بانک", ValidFrom: day1},
			target: domain.ErrInvalid, field: "name_en", code: "control_character",
		},
		{
			name:   "missing valid-from",
			cmd:    reference.AddBank{ID: "ayandeh", NameEn: "Ayandeh", NameFa: "آینده"},
			target: domain.ErrInvalid, field: "valid_from", code: "required",
		},
		{
			name: "add programme with cap",
			cmd:  reference.AddProgram{ID: "crafts", NameEn: "Handicrafts", NameFa: "صنایع دستی", Note: "note 18", MaxLoanRials: 5_000_000_000, ValidFrom: day1},
			want: []domain.Event{reference.ProgramAdded{ID: "crafts", NameEn: "Handicrafts", NameFa: "صنایع دستی", Note: "note 18", MaxLoanRials: 5_000_000_000, ValidFrom: day1}},
		},
		{
			name:   "negative cap",
			cmd:    reference.AddProgram{ID: "crafts", NameEn: "Handicrafts", NameFa: "صنایع دستی", MaxLoanRials: -1, ValidFrom: day1},
			target: domain.ErrInvalid, field: "max_loan_rials", code: "negative",
		},
		{
			name:   "note too long",
			cmd:    reference.AddProgram{ID: "crafts", NameEn: "Handicrafts", NameFa: "صنایع دستی", Note: strings.Repeat("n", 1001), ValidFrom: day1},
			target: domain.ErrInvalid, field: "note", code: "too_long",
		},
		{
			name:   "existing programme",
			cmd:    reference.AddProgram{ID: "home-business", NameEn: "Home", NameFa: "خانگی", ValidFrom: day1},
			target: domain.ErrConflict,
		},
		{
			name: "add county after a split",
			cmd:  reference.AddCounty{ID: "IR-00-khomein", Province: "IR-00", NameEn: "Khomein", NameFa: "خمین", ValidFrom: day2},
			want: []domain.Event{reference.CountyAdded{ID: "IR-00-khomein", Province: "IR-00", NameEn: "Khomein", NameFa: "خمین", ValidFrom: day2}},
		},
		{
			name:   "county ID of another province",
			cmd:    reference.AddCounty{ID: "IR-01-khomein", Province: "IR-00", NameEn: "Khomein", NameFa: "خمین", ValidFrom: day2},
			target: domain.ErrInvalid, field: "id", code: "province_mismatch",
		},
		{
			name:   "county ID without province",
			cmd:    reference.AddCounty{ID: "khomein", Province: "IR-00", NameEn: "Khomein", NameFa: "خمین", ValidFrom: day2},
			target: domain.ErrInvalid, field: "id", code: "format",
		},
		{
			name:   "malformed province code",
			cmd:    reference.AddCounty{ID: "IR-0-khomein", Province: "IR-0", NameEn: "Khomein", NameFa: "خمین", ValidFrom: day2},
			target: domain.ErrInvalid, field: "province", code: "format",
		},
		{
			name:   "unknown province",
			cmd:    reference.AddCounty{ID: "IR-31-nowhere", Province: "IR-31", NameEn: "Nowhere", NameFa: "ناکجا", ValidFrom: day2},
			target: domain.ErrNotFound,
		},
		{
			name:   "existing county",
			cmd:    reference.AddCounty{ID: "IR-23-pardis", Province: "IR-23", NameEn: "Pardis", NameFa: "پردیس", ValidFrom: day2},
			target: domain.ErrConflict,
		},
		{
			name: "add firm",
			cmd:  reference.AddFirm{ID: "arak-consult", NameEn: "Arak Consult", NameFa: "مشاور اراک", SeatProvince: "IR-00", ValidFrom: day1},
			want: []domain.Event{reference.FirmAdded{ID: "arak-consult", NameEn: "Arak Consult", NameFa: "مشاور اراک", SeatProvince: "IR-00", ValidFrom: day1}},
		},
		{
			name:   "firm in unknown province",
			cmd:    reference.AddFirm{ID: "far-consult", NameEn: "Far", NameFa: "دور", SeatProvince: "IR-45", ValidFrom: day1},
			target: domain.ErrNotFound,
		},
		{
			name:   "firm seat malformed",
			cmd:    reference.AddFirm{ID: "far-consult", NameEn: "Far", NameFa: "دور", SeatProvince: "Tehran", ValidFrom: day1},
			target: domain.ErrInvalid, field: "seat_province", code: "format",
		},
		{
			name: "rename agency",
			cmd:  reference.Rename{Kind: reference.KindAgency, ID: "welfare", NameEn: "Welfare Organization", NameFa: "سازمان بهزیستی", ValidFrom: day2},
			want: []domain.Event{reference.EntityRenamed{Kind: reference.KindAgency, ID: "welfare", NameEn: "Welfare Organization", NameFa: "سازمان بهزیستی", ValidFrom: day2}},
		},
		{
			name: "rename to the same names is a no-op",
			cmd:  reference.Rename{Kind: reference.KindBank, ID: "melli", NameEn: "Bank Melli Iran", NameFa: "بانک ملی ایران", ValidFrom: day2},
			want: nil,
		},
		{
			name:   "rename missing entity",
			cmd:    reference.Rename{Kind: reference.KindFirm, ID: "ghost", NameEn: "Ghost", NameFa: "شبح", ValidFrom: day2},
			target: domain.ErrNotFound,
		},
		{
			name:   "rename with wrong kind",
			cmd:    reference.Rename{Kind: reference.KindBank, ID: "welfare", NameEn: "Welfare", NameFa: "بهزیستی", ValidFrom: day2},
			target: domain.ErrNotFound,
		},
		{
			name:   "rename a province",
			cmd:    reference.Rename{Kind: "province", ID: "IR-00", NameEn: "Central", NameFa: "مرکزی", ValidFrom: day2},
			target: domain.ErrInvalid, field: "kind", code: "unknown",
		},
		{
			name:   "rename before the current names",
			cmd:    reference.Rename{Kind: reference.KindCounty, ID: "IR-00-arak", NameEn: "Arak City", NameFa: "شهر اراک", ValidFrom: reference.DefaultValidFrom().Add(-time.Hour)},
			target: domain.ErrInvalid, field: "valid_from", code: "before_current",
		},
	}
	d := reference.Decider()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reference.DefaultCatalog()
			got, err := d.Decide(before, tt.cmd)
			if tt.target != nil {
				require.Nil(t, got)
				requireErr(t, err, tt.target, tt.field, tt.code)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, reference.DefaultCatalog(), before, "Decide must not change the state")
		})
	}
}

func TestConflictMessages(t *testing.T) {
	_, err := reference.Decider().Decide(reference.DefaultCatalog(),
		reference.AddAgency{ID: "welfare", NameEn: "Welfare", NameFa: "بهزیستی", ValidFrom: day1})
	var ce *domain.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Reason, `agency "welfare" already exists`)
	require.Contains(t, ce.ReasonFa, "دستگاه اجرایی")
}

func TestEvolve(t *testing.T) {
	d := reference.Decider()
	base := reference.DefaultCatalog()

	t.Run("rename every kind", func(t *testing.T) {
		ids := map[reference.Kind]string{
			reference.KindAgency: "welfare", reference.KindBank: "melli", reference.KindProgram: "note-16",
			reference.KindCounty: "IR-00-arak", reference.KindFirm: "markazi-field-monitoring",
		}
		for _, kind := range reference.Kinds() {
			t.Run(string(kind), func(t *testing.T) {
				e := reference.EntityRenamed{Kind: kind, ID: ids[kind], NameEn: "New", NameFa: "نو", ValidFrom: day2}
				c := d.Evolve(base, domain.Recorded{Event: e})
				var en, fa string
				var from time.Time
				switch kind {
				case reference.KindAgency:
					x, _ := c.Agency(e.ID)
					en, fa, from = x.NameEn, x.NameFa, x.ValidFrom
				case reference.KindBank:
					x, _ := c.Bank(e.ID)
					en, fa, from = x.NameEn, x.NameFa, x.ValidFrom
				case reference.KindProgram:
					x, _ := c.Program(e.ID)
					en, fa, from = x.NameEn, x.NameFa, x.ValidFrom
					require.Equal(t, "", x.Note, "rename keeps the other fields")
				case reference.KindCounty:
					x, _ := c.County(e.ID)
					en, fa, from = x.NameEn, x.NameFa, x.ValidFrom
					require.Equal(t, "IR-00", x.Province, "rename keeps the other fields")
				case reference.KindFirm:
					x, _ := c.Firm(e.ID)
					en, fa, from = x.NameEn, x.NameFa, x.ValidFrom
					require.Equal(t, "IR-00", x.SeatProvince, "rename keeps the other fields")
				}
				require.Equal(t, []any{"New", "نو", day2}, []any{en, fa, from})
			})
		}
	})

	t.Run("earlier snapshots are not changed", func(t *testing.T) {
		snapshot := d.Evolve(base, domain.Recorded{Event: reference.AgencyAdded{ID: "a1", NameEn: "A", NameFa: "ا", ValidFrom: day1}})
		later := d.Evolve(snapshot, domain.Recorded{Event: reference.AgencyAdded{ID: "a2", NameEn: "B", NameFa: "ب", ValidFrom: day1}})
		renamed := d.Evolve(later, domain.Recorded{Event: reference.EntityRenamed{Kind: reference.KindAgency, ID: "a1", NameEn: "C", NameFa: "ج", ValidFrom: day2}})

		require.True(t, snapshot.Has(reference.KindAgency, "a1"))
		require.False(t, snapshot.Has(reference.KindAgency, "a2"))
		require.False(t, base.Has(reference.KindAgency, "a1"))
		a1, _ := later.Agency("a1")
		require.Equal(t, "A", a1.NameEn)
		a1, _ = renamed.Agency("a1")
		require.Equal(t, "C", a1.NameEn)
	})

	t.Run("decoded pointer events", func(t *testing.T) {
		reg, err := domain.NewRegistry(reference.EventTypes())
		require.NoError(t, err)
		e, err := reg.Decode("reference.county_added.v1",
			[]byte(`{"id":"IR-00-khomein","province":"IR-00","name_en":"Khomein","name_fa":"خمین","valid_from":"2024-09-21T20:30:00Z"}`))
		require.NoError(t, err)
		c := d.Evolve(base, domain.Recorded{Event: e})
		county, ok := c.County("IR-00-khomein")
		require.True(t, ok)
		require.Equal(t, "IR-00", county.Province)
		require.Len(t, c.CountiesOf("IR-00"), 2)
	})

	t.Run("rename of a missing entity is ignored", func(t *testing.T) {
		c := d.Evolve(base, domain.Recorded{Event: reference.EntityRenamed{Kind: reference.KindBank, ID: "ghost", NameEn: "G", NameFa: "گ", ValidFrom: day2}})
		require.Equal(t, base, c)
	})

	t.Run("empty catalogue", func(t *testing.T) {
		c := d.Initial()
		require.Empty(t, c.Agencies())
		require.Len(t, c.Provinces(), 31)
		_, ok := c.Agency("welfare")
		require.False(t, ok)
	})
}
