package reference

import (
	"maps"
	"slices"
)

// Catalog is the current reference data: the state of the catalogue
// aggregate. The zero value is an empty catalogue. A Catalog is a value:
// Evolve never modifies the maps of the Catalog it was given but copies the
// one it changes, so a Catalog can be shared between goroutines and kept as
// a snapshot while newer events are folded into a copy.
type Catalog struct {
	agencies map[string]Agency
	banks    map[string]Bank
	programs map[string]Program
	counties map[string]County
	firms    map[string]Firm
}

// Province looks a province up by code. Provinces are fixed, so every
// catalogue, even an empty one, knows all 31.
func (Catalog) Province(code string) (Province, bool) { return ProvinceByCode(code) }

// Provinces returns the 31 provinces in Statistical Centre order.
func (Catalog) Provinces() []Province { return Provinces() }

// Agency looks an agency up by ID.
func (c Catalog) Agency(id string) (Agency, bool) { v, ok := c.agencies[id]; return v, ok }

// Bank looks a bank up by ID.
func (c Catalog) Bank(id string) (Bank, bool) { v, ok := c.banks[id]; return v, ok }

// Program looks a programme up by ID.
func (c Catalog) Program(id string) (Program, bool) { v, ok := c.programs[id]; return v, ok }

// County looks a county up by ID, such as "IR-00-arak".
func (c Catalog) County(id string) (County, bool) { v, ok := c.counties[id]; return v, ok }

// Firm looks an inspection firm up by ID.
func (c Catalog) Firm(id string) (Firm, bool) { v, ok := c.firms[id]; return v, ok }

// Agencies returns every agency sorted by ID.
func (c Catalog) Agencies() []Agency { return sortedValues(c.agencies) }

// Banks returns every bank sorted by ID.
func (c Catalog) Banks() []Bank { return sortedValues(c.banks) }

// Programs returns every programme sorted by ID.
func (c Catalog) Programs() []Program { return sortedValues(c.programs) }

// Counties returns every county sorted by ID, which groups them by province.
func (c Catalog) Counties() []County { return sortedValues(c.counties) }

// Firms returns every inspection firm sorted by ID.
func (c Catalog) Firms() []Firm { return sortedValues(c.firms) }

// CountiesOf returns the counties of one province sorted by ID; it is empty
// for an unknown province code.
func (c Catalog) CountiesOf(province string) []County {
	return slices.DeleteFunc(c.Counties(), func(x County) bool { return x.Province != province })
}

// FirmsSeatedIn returns the inspection firms registered in one province,
// sorted by ID.
func (c Catalog) FirmsSeatedIn(province string) []Firm {
	return slices.DeleteFunc(c.Firms(), func(x Firm) bool { return x.SeatProvince != province })
}

// Has reports whether an entity of the given kind and ID exists. Callers in
// other aggregates use it to check the references in their commands.
func (c Catalog) Has(kind Kind, id string) bool {
	switch kind {
	case KindAgency:
		_, ok := c.agencies[id]
		return ok
	case KindBank:
		_, ok := c.banks[id]
		return ok
	case KindProgram:
		_, ok := c.programs[id]
		return ok
	case KindCounty:
		_, ok := c.counties[id]
		return ok
	case KindFirm:
		_, ok := c.firms[id]
		return ok
	default:
		return false
	}
}

// names returns the current names of an entity, or false if it does not
// exist.
func (c Catalog) names(kind Kind, id string) (en, fa string, ok bool) {
	switch kind {
	case KindAgency:
		v, ok := c.agencies[id]
		return v.NameEn, v.NameFa, ok
	case KindBank:
		v, ok := c.banks[id]
		return v.NameEn, v.NameFa, ok
	case KindProgram:
		v, ok := c.programs[id]
		return v.NameEn, v.NameFa, ok
	case KindCounty:
		v, ok := c.counties[id]
		return v.NameEn, v.NameFa, ok
	case KindFirm:
		v, ok := c.firms[id]
		return v.NameEn, v.NameFa, ok
	default:
		return "", "", false
	}
}

// sortedValues returns the map's values sorted by key, which is the ID.
func sortedValues[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// with returns a copy of m with v stored under id; m itself is not changed.
func with[T any](m map[string]T, id string, v T) map[string]T {
	out := make(map[string]T, len(m)+1)
	maps.Copy(out, m)
	out[id] = v
	return out
}
