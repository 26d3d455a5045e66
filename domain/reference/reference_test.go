package reference_test

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/reference"
)

func TestProvinces(t *testing.T) {
	ps := reference.Provinces()
	require.Len(t, ps, 31)
	seen := map[string]bool{}
	for i, p := range ps {
		require.Equal(t, fmt.Sprintf("IR-%02d", i), p.Code)
		require.Equal(t, i, p.SciOrder)
		require.NotEmpty(t, p.NameEn)
		require.NotEmpty(t, p.NameFa)
		require.False(t, seen[p.NameEn], "duplicate %s", p.NameEn)
		seen[p.NameEn] = true
	}

	tests := []struct {
		code, en, capital string
	}{
		{"IR-00", "Markazi", "Arak"},
		{"IR-23", "Tehran", "Tehran"},
		{"IR-25", "Qom", "Qom"},
		{"IR-30", "Alborz", "Karaj"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p, ok := reference.ProvinceByCode(tt.code)
			require.True(t, ok)
			require.Equal(t, tt.en, p.NameEn)
			require.Equal(t, tt.capital, p.CapitalEn)
		})
	}
	_, ok := reference.ProvinceByCode("IR-31")
	require.False(t, ok)

	ps[0].NameEn = "changed"
	require.Equal(t, "Markazi", reference.Provinces()[0].NameEn, "callers must get copies")
}

// readSharedCSV reads one of the shared reference files, skipping the test
// when the checkout does not include them.
func readSharedCSV(t *testing.T, name string) []map[string]string {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "data", name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not available", path)
	}
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func TestTablesMatchSharedData(t *testing.T) {
	c := reference.DefaultCatalog()
	t.Run("provinces", func(t *testing.T) {
		rows := readSharedCSV(t, "provinces.csv")
		require.Len(t, rows, len(reference.Provinces()))
		for _, r := range rows {
			p, ok := reference.ProvinceByCode(r["code"])
			require.True(t, ok, r["code"])
			order, err := strconv.Atoi(r["sci_order"])
			require.NoError(t, err)
			require.Equal(t, reference.Province{Code: r["code"], SciOrder: order, NameEn: r["name_en"], NameFa: r["name_fa"],
				CapitalEn: r["capital_en"], CapitalFa: r["capital_fa"], CapitalCounty: p.CapitalCounty}, p)
		}
	})
	t.Run("agencies", func(t *testing.T) {
		rows := readSharedCSV(t, "agencies.csv")
		require.Len(t, c.Agencies(), len(rows))
		for _, r := range rows {
			a, ok := c.Agency(r["id"])
			require.True(t, ok, r["id"])
			require.Equal(t, r["name_en"], a.NameEn)
			require.Equal(t, r["name_fa"], a.NameFa)
		}
	})
	t.Run("banks", func(t *testing.T) {
		rows := readSharedCSV(t, "banks.csv")
		require.Len(t, c.Banks(), len(rows))
		for _, r := range rows {
			b, ok := c.Bank(r["id"])
			require.True(t, ok, r["id"])
			require.Equal(t, r["name_en"], b.NameEn)
			require.Equal(t, r["name_fa"], b.NameFa)
		}
	})
	t.Run("programs", func(t *testing.T) {
		rows := readSharedCSV(t, "programs.csv")
		require.Len(t, c.Programs(), len(rows))
		for _, r := range rows {
			p, ok := c.Program(r["id"])
			require.True(t, ok, r["id"])
			require.Equal(t, r["name_en"], p.NameEn)
			require.Equal(t, r["name_fa"], p.NameFa)
			require.Equal(t, r["note"], p.Note)
		}
	})
}

func TestDefaultEventsPassDecide(t *testing.T) {
	d := reference.Decider()
	c := d.Initial()
	for i, e := range reference.DefaultEvents() {
		got, err := d.Decide(c, commandFor(t, e))
		require.NoError(t, err, "default event %d (%#v)", i, e)
		require.Equal(t, []domain.Event{e}, got)
		c = d.Evolve(c, domain.Recorded{Stream: reference.Stream, Version: uint64(i + 1), Event: e})
	}
	require.Equal(t, reference.DefaultCatalog(), c)
}

// commandFor returns the command whose decision is the given add event.
func commandFor(t *testing.T, e domain.Event) reference.Command {
	t.Helper()
	switch e := e.(type) {
	case reference.AgencyAdded:
		return reference.AddAgency(e)
	case reference.BankAdded:
		return reference.AddBank(e)
	case reference.ProgramAdded:
		return reference.AddProgram(e)
	case reference.CountyAdded:
		return reference.AddCounty(e)
	case reference.FirmAdded:
		return reference.AddFirm(e)
	}
	t.Fatalf("no command for %T", e)
	return nil
}

func TestDefaultCatalog(t *testing.T) {
	c := reference.DefaultCatalog()

	t.Run("programme caps", func(t *testing.T) {
		p, ok := c.Program("home-business")
		require.True(t, ok)
		require.Equal(t, int64(2_000_000_000), p.MaxLoanRials)
		for _, p := range c.Programs() {
			if p.ID != "home-business" {
				require.Zero(t, p.MaxLoanRials, p.ID)
			}
		}
	})
	t.Run("every province has its capital county and one firm", func(t *testing.T) {
		for _, p := range c.Provinces() {
			county, ok := c.County(p.CapitalCounty)
			require.True(t, ok, p.CapitalCounty)
			require.Equal(t, p.Code, county.Province)
			require.Equal(t, p.CapitalFa, county.NameFa)
			require.Len(t, c.FirmsSeatedIn(p.Code), 1, p.Code)
		}
		require.Len(t, c.Counties(), 32)
		require.Len(t, c.Firms(), 31)
	})
	t.Run("tehran has pardis", func(t *testing.T) {
		got := c.CountiesOf("IR-23")
		require.Len(t, got, 2)
		require.Equal(t, "IR-23-pardis", got[0].ID)
		require.Equal(t, "IR-23-tehran", got[1].ID)
		require.Empty(t, c.CountiesOf("IR-99"))
	})
	t.Run("qom", func(t *testing.T) {
		q, ok := c.County("IR-25-qom")
		require.True(t, ok)
		require.Equal(t, "قم", q.NameFa)
	})
	t.Run("placeholder firm", func(t *testing.T) {
		f, ok := c.Firm("markazi-field-monitoring")
		require.True(t, ok)
		require.Equal(t, "Markazi Field Monitoring Consultants", f.NameEn)
		require.Equal(t, "مشاوران نظارت میدانی مرکزی", f.NameFa)
		require.Equal(t, "IR-00", f.SeatProvince)
	})
	t.Run("sorted", func(t *testing.T) {
		agencies := c.Agencies()
		for i := 1; i < len(agencies); i++ {
			require.Less(t, agencies[i-1].ID, agencies[i].ID)
		}
		require.Equal(t, reference.DefaultValidFrom(), agencies[0].ValidFrom)
	})
	t.Run("lookups", func(t *testing.T) {
		_, ok := c.Bank("keshavarzi")
		require.True(t, ok)
		_, ok = c.Bank("nope")
		require.False(t, ok)
		p, ok := c.Province("IR-00")
		require.True(t, ok)
		require.Equal(t, "Markazi", p.NameEn)
		require.True(t, c.Has(reference.KindAgency, "relief-committee"))
		require.False(t, c.Has("province", "IR-00"))
	})
}

// requireErr checks the category of err and, for validation errors, the
// field and code of the first problem.
func requireErr(t *testing.T, err error, target error, field, code string) {
	t.Helper()
	require.ErrorIs(t, err, target)
	if target != domain.ErrInvalid || field == "" {
		return
	}
	var ve *domain.ValidationError
	require.True(t, errors.As(err, &ve))
	for _, f := range ve.Fields {
		require.NotEmpty(t, f.MessageFa)
		if f.Field == field && f.Code == code {
			return
		}
	}
	t.Fatalf("no %s/%s in %v", field, code, ve.Fields)
}
