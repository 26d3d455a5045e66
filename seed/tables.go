package seed

import (
	"math/rand/v2"
)

// provinceSpec is what the generator knows about a province beyond the
// reference data: how many plans it sends and how its agencies and banks
// perform. The figures are deliberately uneven, so that reports comparing
// provinces have something to show.
type provinceSpec struct {
	code string
	// population is the approximate population of the 2016 (1395) national
	// census, in thousands, rounded; it weights how many plans a province
	// registers.
	population int
	// rural weights the rural and micro-job programmes: a mostly urban
	// province (Tehran, Alborz, Qom) sends fewer such plans per inhabitant.
	rural float64
	// jobs is the share of the jobs promised that the agencies register as
	// created (job registration vs commitment): Markazi 72% (1404: 6,745 of
	// 9,328) and Ardabil about 60% are published; the others are invented
	// around them.
	jobs float64
	// bank scales the banks' approval rate: below 1, more referred plans
	// are refused or left waiting (the backlog seed 003 complains about).
	bank float64
	// active scales the share of inspected businesses found operating.
	active float64
	// absorb is how well the province's quota matches its demand: above 1
	// it under-absorbs, below 1 it runs out (before the ministry's transfers).
	absorb float64
}

// provinceTable follows reference.Provinces (IR-00 Markazi … IR-30 Alborz).
// Populations: approximate 2016 census figures, in thousands.
var provinceTable = [31]provinceSpec{
	{"IR-00", 1429, 2.6, 0.719, 1.00, 1.02, 1.30}, // Markazi: the published rural funnel and 72% job registration
	{"IR-01", 2531, 1.1, 0.78, 0.97, 1.00, 1.05},  // Gilan
	{"IR-02", 3283, 1.1, 0.81, 0.98, 1.01, 0.90},  // Mazandaran
	{"IR-03", 3909, 1.0, 0.84, 0.99, 1.03, 1.20},  // East Azerbaijan
	{"IR-04", 3265, 1.1, 0.70, 0.95, 0.98, 0.85},  // West Azerbaijan
	{"IR-05", 1952, 1.1, 0.66, 0.93, 0.97, 0.95},  // Kermanshah
	{"IR-06", 4710, 0.9, 0.63, 0.92, 0.95, 0.80},  // Khuzestan
	{"IR-07", 4851, 1.0, 0.79, 0.97, 1.01, 1.10},  // Fars
	{"IR-08", 3164, 1.1, 0.74, 0.95, 0.99, 0.90},  // Kerman
	{"IR-09", 6434, 1.0, 0.80, 0.98, 1.01, 1.00},  // Razavi Khorasan
	{"IR-10", 5120, 0.8, 0.88, 0.99, 1.04, 1.25},  // Isfahan
	{"IR-11", 2775, 1.3, 0.55, 0.90, 0.92, 0.75},  // Sistan and Baluchestan
	{"IR-12", 1603, 1.2, 0.68, 0.94, 0.98, 0.95},  // Kurdistan
	{"IR-13", 1738, 1.2, 0.76, 0.97, 1.00, 1.05},  // Hamadan
	{"IR-14", 947, 1.2, 0.75, 0.96, 1.00, 1.15},   // Chaharmahal and Bakhtiari
	{"IR-15", 1760, 1.2, 0.67, 0.94, 0.97, 0.85},  // Lorestan
	{"IR-16", 580, 1.2, 0.73, 0.96, 0.99, 1.35},   // Ilam
	{"IR-17", 713, 1.3, 0.64, 0.93, 0.96, 1.10},   // Kohgiluyeh and Boyer-Ahmad
	{"IR-18", 1163, 0.9, 0.77, 0.97, 1.00, 1.20},  // Bushehr
	{"IR-19", 1057, 1.2, 0.82, 0.98, 1.02, 1.00},  // Zanjan
	{"IR-20", 702, 0.9, 0.90, 1.00, 1.05, 1.40},   // Semnan
	{"IR-21", 1138, 0.8, 0.91, 1.00, 1.05, 1.30},  // Yazd
	{"IR-22", 1776, 1.0, 0.62, 0.93, 0.96, 0.80},  // Hormozgan
	{"IR-23", 13267, 0.3, 0.83, 0.98, 1.02, 0.90}, // Tehran
	{"IR-24", 1270, 1.3, 0.595, 0.94, 0.96, 0.85}, // Ardabil: about 60% job registration
	{"IR-25", 1292, 0.4, 0.79, 0.97, 1.00, 1.00},  // Qom
	{"IR-26", 1273, 1.0, 0.80, 0.98, 1.01, 1.10},  // Qazvin
	{"IR-27", 1868, 1.3, 0.71, 0.95, 0.99, 0.95},  // Golestan
	{"IR-28", 863, 1.3, 0.69, 0.95, 0.98, 1.15},   // North Khorasan
	{"IR-29", 768, 1.3, 0.77, 0.97, 1.00, 1.35},   // South Khorasan
	{"IR-30", 2712, 0.5, 0.82, 0.98, 1.01, 0.90},  // Alborz
}

// Province codes the calibration table reports on.
const (
	provMarkazi = "IR-00"
	provArdabil = "IR-24"
)

// weighted is one choice of a weighted draw.
type weighted[T any] struct {
	v T
	w float64
}

// pick draws from a weighted list (weights need not sum to 1).
func pick[T any](r *rand.Rand, choices []weighted[T]) T { return pickU(r.Float64(), choices) }

// pickU chooses from a weighted list with the uniform draw u in [0, 1).
func pickU[T any](u float64, choices []weighted[T]) T {
	total := 0.0
	for _, c := range choices {
		total += c.w
	}
	x := u * total
	for _, c := range choices {
		if x < c.w {
			return c.v
		}
		x -= c.w
	}
	return choices[len(choices)-1].v
}

// programSpec is how plans of one programme behave. Probabilities are per
// plan; the province factors above scale some of them.
type programSpec struct {
	id     string
	weight float64 // share of all plans
	rural  bool    // weighted by provinceSpec.rural
	// legalBasis is the budget-law text of the programme's allocations,
	// with %d for the fiscal year.
	legalBasis string
	agencies   []weighted[string]
	banks      []weighted[string]
	// referral is the probability that the agency's experts approve the plan
	// and refer it to a bank, given the jobs it promises.
	referral func(jobs int) float64
	// bankApprove is the probability that the bank approves a referred plan
	// (times the province's bank factor); pending is the share of the
	// others that the bank leaves waiting instead of refusing.
	bankApprove float64
	pending     float64
	// unpaid is the probability that an approved loan is never paid.
	unpaid float64
	// tranches is how many payments the loan is paid in; withdraw is the
	// probability that a loan of several tranches stops after the first.
	tranches []weighted[int]
	withdraw float64
	// request draws the amount asked for, in rials; approveShare the part
	// of it the bank approves.
	request      func(r *rand.Rand) int64
	approveShare func(r *rand.Rand) float64
	// jobs draws the jobs promised.
	// jobs draws the jobs promised from a uniform draw u.
	jobs func(u float64) int
	// realised scales the province's job-registration share for this
	// programme.
	realised float64
	// inspect is the probability that a paid plan is visited in a regular
	// monitoring round; census programmes visit every paid plan.
	inspect float64
	census  bool
	// status is the distribution of inspection findings for a census visit
	// or the base one for a regular visit: active, inactive, not found,
	// misused. confirm is the probability that an active business is
	// confirmed (it matches the approved plan).
	status  [4]float64
	confirm float64
	// verified is the share of the promised jobs an inspector counts at a
	// confirmed and at an unconfirmed active business.
	verifiedConfirmed, verifiedUnconfirmed float64
	// titles are plan titles (Persian), chosen at random.
	titles []string
}

// Program ids of the reference catalogue.
const (
	progHome      = "home-business"
	progInclusive = "inclusive-employment"
	progRural     = "rural-nomadic"
	progQuick     = "quick-yield"
	progNote16    = "note-16"
	progNote18    = "note-18"
	progMicro     = "micro-jobs"
)

func constant(p float64) func(int) float64 { return func(int) float64 { return p } }

// rials rounds an amount to whole million rials.
func rials(x float64) int64 { return int64(x/1e6+0.5) * 1_000_000 }

// between draws uniformly from [lo, hi].
func between(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }

// programTable lists the seven programmes of the reference catalogue.
//
// Calibration (see calibration in stats.go for the published figures):
//   - rural-nomadic reproduces the Markazi funnel: 99.3% of the plans sent
//     to banks approved, 99.0% paid, about two jobs per paid loan (Markazi
//     registers 72% of 2.83 promised);
//   - inclusive-employment: half the plans approved, small plans far more
//     often than large ones, so about 11.9 jobs are forecast per plan but
//     only about 4.4 per approved plan; 92.6% of approved plans paid, about
//     3.7 billion rials each;
//   - quick-yield is census-inspected like the 4,000-firm survey: 79.7%
//     active, 9.5% inactive, 2.5% spent on housing, 5.8% not found, 2.5%
//     not visited; 48.2% of the promised jobs found;
//   - home-business loans average about 1 billion rials (Markazi 1403:
//     1,169 billion rials to 1,139 applicants).
func programTable() []programSpec {
	return []programSpec{
		{
			id: progHome, weight: 0.34,
			legalBasis: "note 15 of the %d budget law (home-based businesses)",
			agencies: []weighted[string]{
				{"relief-committee", 0.42}, {"welfare", 0.28}, {"cultural-heritage", 0.14},
				{"culture-guidance", 0.06}, {"endowments", 0.05}, {"alavi", 0.05},
			},
			banks: []weighted[string]{
				{"mehr-iran", 0.35}, {"resalat", 0.2}, {"post-bank", 0.2}, {"refah", 0.15}, {"tosee-taavon", 0.1},
			},
			referral: constant(0.86), bankApprove: 0.93, pending: 0.5, unpaid: 0.01,
			tranches: []weighted[int]{{1, 0.85}, {2, 0.15}}, withdraw: 0.03,
			request: func(r *rand.Rand) int64 {
				return pick(r, []weighted[int64]{
					{1_000_000_000, 0.70}, {500_000_000, 0.08}, {800_000_000, 0.07},
					{1_200_000_000, 0.05}, {1_500_000_000, 0.06}, {2_000_000_000, 0.04},
				})
			},
			approveShare: func(*rand.Rand) float64 { return 1 },
			jobs:         func(u float64) int { return pickU(u, []weighted[int]{{1, 0.62}, {2, 0.38}}) },
			realised:     1.0, inspect: 0.30,
			status: [4]float64{0.84, 0.09, 0.035, 0.035}, confirm: 0.815,
			verifiedConfirmed: 0.95, verifiedUnconfirmed: 0.4,
			titles: []string{
				"خیاطی و تولید پوشاک خانگی", "قالی‌بافی دستی", "شیرینی‌پزی خانگی", "تولید ترشی و مربا",
				"سوزن‌دوزی و رودوزی سنتی", "بسته‌بندی حبوبات", "تولید عروسک و اسباب‌بازی پارچه‌ای",
				"گلیم‌بافی", "تولید صابون دست‌ساز", "نان محلی",
			},
		},
		{
			id: progRural, weight: 0.24, rural: true,
			legalBasis: "note 18 of the %d budget law (rural and nomadic sustainable employment, National Development Fund share)",
			agencies: []weighted[string]{
				{"agriculture-jihad", 0.38}, {"relief-committee", 0.2}, {"basij-sazandegi", 0.14},
				{"barakat", 0.1}, {"cultural-heritage", 0.08}, {"welfare", 0.1},
			},
			banks: []weighted[string]{
				{"keshavarzi", 0.55}, {"post-bank", 0.3}, {"tosee-taavon", 0.15},
			},
			referral: constant(0.9), bankApprove: 0.9934, pending: 0.4, unpaid: 0.0033,
			tranches: []weighted[int]{{1, 0.6}, {2, 0.4}}, withdraw: 0.02,
			request: func(r *rand.Rand) int64 {
				return rials(pick(r, []weighted[float64]{{1.5e9, 0.25}, {2e9, 0.35}, {3e9, 0.25}, {5e9, 0.15}}))
			},
			approveShare: func(r *rand.Rand) float64 { return pick(r, []weighted[float64]{{1, 0.8}, {0.9, 0.2}}) },
			jobs:         func(u float64) int { return pickU(u, []weighted[int]{{2, 0.35}, {3, 0.47}, {4, 0.18}}) },
			realised:     1.0, inspect: 0.32,
			status: [4]float64{0.86, 0.08, 0.03, 0.03}, confirm: 0.815,
			verifiedConfirmed: 0.95, verifiedUnconfirmed: 0.45,
			titles: []string{
				"پرورش دام سبک", "زنبورداری", "پرورش قارچ خوراکی", "گلخانه سبزی و صیفی",
				"پرورش مرغ بومی", "باغ پسته", "پرورش ماهی قزل‌آلا", "صنایع دستی عشایری",
				"پرورش گاو شیری", "کارگاه لبنیات روستایی",
			},
		},
		{
			id: progInclusive, weight: 0.07,
			legalBasis: "note 18 of the %d budget law (inclusive employment, Kara system)",
			agencies: []weighted[string]{
				{"labour-ministry", 0.6}, {"welfare", 0.2}, {"relief-committee", 0.2},
			},
			banks: []weighted[string]{
				{"tosee-taavon", 0.4}, {"refah", 0.3}, {"melli", 0.3},
			},
			// Small plans are referred far more often than large ones: about
			// 11.9 jobs are forecast per plan, 4.4 per approved plan.
			referral: func(jobs int) float64 {
				if jobs <= 6 {
					return 0.835
				}
				return 0.057
			},
			bankApprove: 0.99, pending: 0.5, unpaid: 0.073,
			tranches: []weighted[int]{{2, 0.6}, {3, 0.4}}, withdraw: 0.02,
			request: func(r *rand.Rand) int64 {
				return rials(pick(r, []weighted[float64]{{3e9, 0.3}, {4e9, 0.45}, {5e9, 0.25}}))
			},
			approveShare: func(r *rand.Rand) float64 { return pick(r, []weighted[float64]{{1, 0.7}, {0.9, 0.3}}) },
			jobs: func(u float64) int {
				if u < 0.6 {
					return pickU(u/0.6, []weighted[int]{{2, 0.2}, {3, 0.3}, {4, 0.3}, {5, 0.2}})
				}
				return 14 + int((u-0.6)/0.4*22) // 14–35
			},
			realised: 1.24, inspect: 0.3,
			status: [4]float64{0.84, 0.09, 0.035, 0.035}, confirm: 0.8,
			verifiedConfirmed: 0.95, verifiedUnconfirmed: 0.4,
			titles: []string{
				"کارگاه خیاطی", "تعمیرگاه خودرو", "کارگاه مبل‌سازی", "آموزشگاه فنی و حرفه‌ای",
				"کارگاه بسته‌بندی خشکبار", "نانوایی صنعتی", "کارگاه تولید کفش",
			},
		},
		{
			id: progQuick, weight: 0.10,
			legalBasis: "note 18 of the %d budget law (quick-yield and entrepreneurial enterprises)",
			agencies: []weighted[string]{
				{"industry-mine-trade", 0.5}, {"labour-ministry", 0.3}, {"agriculture-jihad", 0.2},
			},
			banks: []weighted[string]{
				{"sanat-madan", 0.3}, {"tosee-taavon", 0.25}, {"melli", 0.15}, {"saderat", 0.15}, {"sepah", 0.15},
			},
			referral: constant(0.72), bankApprove: 0.86, pending: 0.5, unpaid: 0.02,
			tranches: []weighted[int]{{2, 0.55}, {3, 0.45}}, withdraw: 0.03,
			request: func(r *rand.Rand) int64 {
				return rials(pick(r, []weighted[float64]{{3e9, 0.3}, {6e9, 0.35}, {10e9, 0.25}, {20e9, 0.1}}))
			},
			approveShare: func(r *rand.Rand) float64 { return pick(r, []weighted[float64]{{1, 0.6}, {0.85, 0.4}}) },
			jobs:         func(u float64) int { return 3 + int(u*10) },
			realised:     1.0, census: true,
			// The survey: 79.7 / 9.5 / 5.8 / 2.5 of all firms; 2.5% were not
			// visited (see censusVisited), so the visited ones are scaled up.
			status:  [4]float64{0.797 / 0.975, 0.095 / 0.975, 0.058 / 0.975, 0.025 / 0.975},
			confirm: 0.8,
			// 48.2% of the promised jobs found among all surveyed firms:
			// 0.797 × (0.8 × 0.68 + 0.2 × 0.3) ≈ 0.482.
			verifiedConfirmed: 0.68, verifiedUnconfirmed: 0.3,
			titles: []string{
				"کارگاه تولید قطعات خودرو", "تولید مصالح ساختمانی", "کارخانه بسته‌بندی مواد غذایی",
				"کارگاه ریخته‌گری", "تولید ظروف یک‌بارمصرف", "کارگاه چاپ و بسته‌بندی", "تولید پوشاک صنعتی",
			},
		},
		{
			id: progNote18, weight: 0.08,
			legalBasis: "note 18 of the %d budget law (production and employment)",
			agencies: []weighted[string]{
				{"industry-mine-trade", 0.35}, {"agriculture-jihad", 0.3}, {"labour-ministry", 0.2}, {"acecr", 0.15},
			},
			banks: []weighted[string]{
				{"melli", 0.3}, {"saderat", 0.25}, {"sepah", 0.25}, {"sanat-madan", 0.2},
			},
			referral: constant(0.66), bankApprove: 0.8, pending: 0.6, unpaid: 0.03,
			tranches: []weighted[int]{{2, 0.4}, {3, 0.4}, {4, 0.2}}, withdraw: 0.04,
			request: func(r *rand.Rand) int64 {
				return rials(pick(r, []weighted[float64]{{5e9, 0.3}, {10e9, 0.3}, {25e9, 0.25}, {60e9, 0.15}}))
			},
			approveShare: func(r *rand.Rand) float64 { return pick(r, []weighted[float64]{{1, 0.5}, {0.8, 0.5}}) },
			jobs:         func(u float64) int { return 5 + int(u*26) },
			realised:     1.0, inspect: 0.35,
			status: [4]float64{0.85, 0.09, 0.03, 0.03}, confirm: 0.8,
			verifiedConfirmed: 0.9, verifiedUnconfirmed: 0.4,
			titles: []string{
				"واحد صنایع تبدیلی کشاورزی", "کارخانه خوراک دام", "واحد تولید لوازم بهداشتی",
				"شرکت دانش‌بنیان تجهیزات پزشکی", "سردخانه محصولات کشاورزی", "کارگاه قطعات پلاستیکی",
			},
		},
		{
			id: progNote16, weight: 0.09,
			legalBasis: "note 16 of the %d budget law (employment facilities)",
			agencies: []weighted[string]{
				{"relief-committee", 0.4}, {"welfare", 0.3}, {"alavi", 0.15}, {"barakat", 0.15},
			},
			banks: []weighted[string]{
				{"refah", 0.35}, {"mehr-iran", 0.35}, {"post-bank", 0.3},
			},
			referral: constant(0.82), bankApprove: 0.9, pending: 0.5, unpaid: 0.015,
			tranches: []weighted[int]{{1, 0.7}, {2, 0.3}}, withdraw: 0.03,
			request: func(r *rand.Rand) int64 {
				return rials(pick(r, []weighted[float64]{{0.8e9, 0.3}, {1.5e9, 0.4}, {3e9, 0.3}}))
			},
			approveShare: func(*rand.Rand) float64 { return 1 },
			jobs:         func(u float64) int { return 1 + int(u*3) },
			realised:     1.0, inspect: 0.3,
			status: [4]float64{0.84, 0.09, 0.035, 0.035}, confirm: 0.82,
			verifiedConfirmed: 0.95, verifiedUnconfirmed: 0.4,
			titles: []string{
				"کارگاه خیاطی کوچک", "مغازه تعمیرات لوازم خانگی", "آرایشگاه", "کارگاه نجاری",
				"فروشگاه محلی", "کارگاه جوشکاری",
			},
		},
		{
			id: progMicro, weight: 0.08, rural: true,
			legalBasis: "note 18 of the %d budget law (micro jobs and processing-industry hubs)",
			agencies: []weighted[string]{
				{"agriculture-jihad", 0.4}, {"basij-sazandegi", 0.25}, {"barakat", 0.2}, {"alavi", 0.15},
			},
			banks: []weighted[string]{
				{"keshavarzi", 0.5}, {"tosee-taavon", 0.3}, {"post-bank", 0.2},
			},
			referral: constant(0.84), bankApprove: 0.92, pending: 0.5, unpaid: 0.015,
			tranches: []weighted[int]{{1, 1}}, withdraw: 0,
			request: func(r *rand.Rand) int64 {
				return rials(pick(r, []weighted[float64]{{0.5e9, 0.3}, {1e9, 0.45}, {2e9, 0.25}}))
			},
			approveShare: func(*rand.Rand) float64 { return 1 },
			jobs:         func(u float64) int { return 1 + int(u*3) },
			realised:     1.0, inspect: 0.3,
			status: [4]float64{0.85, 0.08, 0.035, 0.035}, confirm: 0.815,
			verifiedConfirmed: 0.95, verifiedUnconfirmed: 0.4,
			titles: []string{
				"خشک‌کردن میوه", "تولید رب گوجه‌فرنگی", "فرآوری گیاهان دارویی", "بسته‌بندی عسل",
				"تولید سرکه سنتی", "کارگاه فرآوری شیر",
			},
		},
	}
}

// Invented but typical Persian given names and family names, for the
// applicants' (encrypted) personal data.
var (
	firstNames = []string{
		"محمد", "علی", "حسین", "رضا", "مهدی", "امیر", "حسن", "مصطفی", "جواد", "سعید",
		"ابوالفضل", "مجید", "احمد", "یوسف", "کریم", "فاطمه", "زهرا", "مریم", "معصومه", "زینب",
		"سمیه", "لیلا", "نرگس", "طاهره", "سکینه", "اعظم", "الهام", "فریبا", "راضیه", "شهلا",
	}
	lastNames = []string{
		"محمدی", "حسینی", "احمدی", "رضایی", "موسوی", "کریمی", "جعفری", "صادقی", "رحیمی", "قاسمی",
		"نوری", "عباسی", "کاظمی", "اکبری", "یوسفی", "حیدری", "ملکی", "سلیمانی", "مرادی", "امینی",
		"طاهری", "شریفی", "بهرامی", "نظری", "فرهادی", "زارعی", "قربانی", "خسروی", "باقری", "اسدی",
		"سبحانی", "اراکی", "تبریزی", "اردبیلی", "کرمانی", "شیرازی", "بلوچ", "لرستانی", "گیلانی", "یزدی",
	}
)

// Reasons recorded on refusals and other steps.
var (
	reviewRejections = []string{
		"incomplete documents: no valid business licence",
		"plan not economically justified in the expert review",
		"applicant not eligible under the programme's criteria",
		"location outside the programme's target area",
		"duplicate application found in the national monitoring system",
	}
	bankRejections = []string{
		"collateral insufficient",
		"applicant's credit record (returned cheques)",
		"guarantor not accepted by the bank",
		"negative appraisal by the bank's own expert",
	}
	unpaidCloseReasons = []string{
		"applicant did not sign the loan contract",
		"applicant withdrew before the first payment",
	}
	withdrawCloseReasons = []string{
		"applicant withdrew after the first tranche",
		"remaining tranches cancelled: plan scaled down",
	}
)
