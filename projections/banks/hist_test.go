package banks

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramRoundTrip(t *testing.T) {
	entries := []entry{{-3, cell{1, 5}}, {0, cell{2, 0}}, {20000, cell{7, math.MaxInt64}}}
	for _, k := range []histKind{backlogHist, durationsHist} {
		var want []entry
		for _, e := range entries {
			if !k.rials {
				e.c.rials = 0
			}
			want = append(want, e)
		}
		s := encode(want, k)
		var got []entry
		require.NoError(t, parse(s, k, func(e entry) { got = append(got, e) }))
		require.Equal(t, want, got, s)
	}
	require.Equal(t, "-3:1:5,0:2:0,20000:7:9223372036854775807", encode(entries, backlogHist))
	require.Equal(t, "-3:1,0:2,20000:7", encode(entries, durationsHist))
	require.Empty(t, encode(nil, backlogHist))
	require.NoError(t, parse("", backlogHist, func(entry) { t.Fatal("an empty histogram has no entry") }))
}

func TestHistogramParseRefusesMalformedText(t *testing.T) {
	for _, s := range []string{
		"1", "1:", "1:2:", ":1", "1:2:3,", ",1:2:3", "1:2:3;3:4:5", "a:1:2", "1:2:3x", "1:2:9223372036854775808", "1:2:-",
		"1:2:3,4:5", // rials missing in the second entry
	} {
		require.ErrorIs(t, parse(s, backlogHist, func(entry) {}), errHistogram, "%q", s)
	}
	require.ErrorIs(t, parse("1:2:3", durationsHist, func(entry) {}), errHistogram)
}

func TestMerge(t *testing.T) {
	got, total, err := merge("1:2:10,5:1:7", backlogHist, map[int64]cell{5: {-1, -7}, 3: {1, 4}, 9: {2, 1}, 1: {1, 1}})
	require.NoError(t, err)
	require.Equal(t, []entry{{1, cell{3, 11}}, {3, cell{1, 4}}, {9, cell{2, 1}}}, got)
	require.Equal(t, cell{6, 16}, total)

	got, total, err = merge("1:2,5:1", durationsHist, map[int64]cell{3: {n: 1}, 5: {n: 1}})
	require.NoError(t, err)
	require.Equal(t, []entry{{1, cell{n: 2}}, {3, cell{n: 1}}, {5, cell{n: 2}}}, got)
	require.Equal(t, cell{n: 5}, total)

	got, total, err = merge("4:1", durationsHist, map[int64]cell{4: {n: -1}})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Zero(t, total)

	_, _, err = merge("4:1:3", backlogHist, map[int64]cell{4: {-2, -6}})
	require.ErrorContains(t, err, "-1 facilities")
	_, _, err = merge("4:1:3", backlogHist, map[int64]cell{4: {-1, -2}})
	require.ErrorContains(t, err, "0 facilities and 1 rials")
	_, _, err = merge("4:", backlogHist, nil)
	require.ErrorIs(t, err, errHistogram)
}

func TestAddBacklog(t *testing.T) {
	const asOf = 1000
	h := encode([]entry{{100, cell{5, 1e8}}, {819, cell{3, 1e7}}, {820, cell{1, 1e6}}, {909, cell{1, 1e5}}, {910, cell{1, 1e4}},
		{969, cell{1, 1000}}, {970, cell{1, 100}}, {1000, cell{2, 10}}, {1002, cell{1, 1}}}, backlogHist)
	total := cell{16, 111_111_111}
	var b Backlog
	require.NoError(t, addBacklog(&b, h, asOf, total, false))
	want := Backlog{
		Facilities: 16, Rials: 111_111_111,
		AfterAsOf:   Bucket{1, 1},
		Days0To30:   Bucket{3, 110},
		Days31To90:  Bucket{2, 11_000},
		Days91To180: Bucket{2, 1_100_000},
		Over180:     Bucket{8, 110_000_000},
	}
	require.Equal(t, want, b)

	// A block wholly in the last bucket counts by its totals alone.
	require.NoError(t, addBacklog(&b, "", asOf, cell{2, 7}, true))
	want.Over180 = Bucket{10, 110_000_007}
	want.Facilities, want.Rials = 18, 111_111_118
	require.Equal(t, want, b)

	// A histogram must sum to the row's totals.
	require.ErrorIs(t, addBacklog(&Backlog{}, "990:1:5", asOf, cell{2, 5}, false), errHistogram)
	require.ErrorIs(t, addBacklog(&Backlog{}, "990:1", asOf, cell{1, 5}, false), errHistogram)
}

func TestBlocks(t *testing.T) {
	for day, block := range map[int64]int64{0: 0, 127: 0, 128: 1, 20000: 156, -1: -1, -128: -1, -129: -2} {
		require.Equal(t, block, blockOf(day), "day %d", day)
	}
	// Every day of a block before blockOf(asOf-180) is more than 180 days
	// before asOf.
	for asOf := int64(-300); asOf < 600; asOf++ {
		last := blockOf(asOf-180)*blockDays - 1
		require.Greater(t, asOf-last, int64(180), "as of %d", asOf)
	}
}

func TestDayIsTheTehranDate(t *testing.T) {
	// Tehran is UTC+03:30: 20:29 UTC is still the same day there, 20:30 the next.
	d := dayOf(time.Date(2025, 3, 20, 20, 29, 0, 0, time.UTC))
	require.Equal(t, d+1, dayOf(time.Date(2025, 3, 20, 20, 30, 0, 0, time.UTC)))
	require.Equal(t, "2025-03-20", dayDate(d))
	require.Equal(t, int64(0), dayOf(time.Date(1969, 12, 31, 20, 30, 0, 0, time.UTC)))
	require.Equal(t, int64(-1), dayOf(time.Date(1969, 12, 31, 20, 29, 0, 0, time.UTC)))
}

func TestMedian(t *testing.T) {
	require.Nil(t, daysHist(nil).median().MedianDays)
	require.Nil(t, daysHist{0, 0}.median().MedianDays)
	for _, c := range []struct {
		hist daysHist
		want float64
	}{
		{daysHist{4: 1}, 4},
		{daysHist{1: 1, 4: 1}, 2.5},
		{daysHist{1: 2, 4: 1}, 1},
		{daysHist{0: 2, 3: 1, 10: 1}, 1.5},
		{daysHist{2: 3, 8: 3}, 5},
		{daysHist{2: 3, 8: 4}, 8},
	} {
		m := c.hist.median()
		require.NotNil(t, m.MedianDays)
		require.Equal(t, c.want, *m.MedianDays, "%v", c.hist)
	}
	var h daysHist
	require.NoError(t, h.addDurations("0:2,3:1"))
	require.NoError(t, h.addDurations("3:1,10:1"))
	require.Equal(t, daysHist{0: 2, 3: 2, 10: 1}, h)
	require.ErrorIs(t, h.addDurations("-1:1"), errHistogram)
}
