package reference

// Reference tables compiled from /work/shared/data/*.csv. They are returned
// by functions that build fresh slices, so no caller can change them.

// provinceTable lists the 31 provinces in the Statistical Centre of Iran's
// order. Codes are the ISO 3166-2:IR codes of the current scheme, IR-00
// (Markazi) to IR-30 (Alborz), exactly as in provinces.csv. Some libraries and
// older data sets still use the earlier ISO numbering, in which the same
// codes name different provinces (for instance IR-01 was East Azerbaijan and
// IR-07 Tehran); data from such sources must be mapped by name, never by code.
func provinceTable() []Province {
	return []Province{
		{Code: "IR-00", SciOrder: 0, NameEn: "Markazi", NameFa: "مرکزی", CapitalEn: "Arak", CapitalFa: "اراک", CapitalCounty: "IR-00-arak"},
		{Code: "IR-01", SciOrder: 1, NameEn: "Gilan", NameFa: "گیلان", CapitalEn: "Rasht", CapitalFa: "رشت", CapitalCounty: "IR-01-rasht"},
		{Code: "IR-02", SciOrder: 2, NameEn: "Mazandaran", NameFa: "مازندران", CapitalEn: "Sari", CapitalFa: "ساری", CapitalCounty: "IR-02-sari"},
		{Code: "IR-03", SciOrder: 3, NameEn: "East Azerbaijan", NameFa: "آذربایجان شرقی", CapitalEn: "Tabriz", CapitalFa: "تبریز", CapitalCounty: "IR-03-tabriz"},
		{Code: "IR-04", SciOrder: 4, NameEn: "West Azerbaijan", NameFa: "آذربایجان غربی", CapitalEn: "Urmia", CapitalFa: "ارومیه", CapitalCounty: "IR-04-urmia"},
		{Code: "IR-05", SciOrder: 5, NameEn: "Kermanshah", NameFa: "کرمانشاه", CapitalEn: "Kermanshah", CapitalFa: "کرمانشاه", CapitalCounty: "IR-05-kermanshah"},
		{Code: "IR-06", SciOrder: 6, NameEn: "Khuzestan", NameFa: "خوزستان", CapitalEn: "Ahvaz", CapitalFa: "اهواز", CapitalCounty: "IR-06-ahvaz"},
		{Code: "IR-07", SciOrder: 7, NameEn: "Fars", NameFa: "فارس", CapitalEn: "Shiraz", CapitalFa: "شیراز", CapitalCounty: "IR-07-shiraz"},
		{Code: "IR-08", SciOrder: 8, NameEn: "Kerman", NameFa: "کرمان", CapitalEn: "Kerman", CapitalFa: "کرمان", CapitalCounty: "IR-08-kerman"},
		{Code: "IR-09", SciOrder: 9, NameEn: "Razavi Khorasan", NameFa: "خراسان رضوی", CapitalEn: "Mashhad", CapitalFa: "مشهد", CapitalCounty: "IR-09-mashhad"},
		{Code: "IR-10", SciOrder: 10, NameEn: "Isfahan", NameFa: "اصفهان", CapitalEn: "Isfahan", CapitalFa: "اصفهان", CapitalCounty: "IR-10-isfahan"},
		{Code: "IR-11", SciOrder: 11, NameEn: "Sistan and Baluchestan", NameFa: "سیستان و بلوچستان", CapitalEn: "Zahedan", CapitalFa: "زاهدان", CapitalCounty: "IR-11-zahedan"},
		{Code: "IR-12", SciOrder: 12, NameEn: "Kurdistan", NameFa: "کردستان", CapitalEn: "Sanandaj", CapitalFa: "سنندج", CapitalCounty: "IR-12-sanandaj"},
		{Code: "IR-13", SciOrder: 13, NameEn: "Hamadan", NameFa: "همدان", CapitalEn: "Hamadan", CapitalFa: "همدان", CapitalCounty: "IR-13-hamadan"},
		{Code: "IR-14", SciOrder: 14, NameEn: "Chaharmahal and Bakhtiari", NameFa: "چهارمحال و بختیاری", CapitalEn: "Shahrekord", CapitalFa: "شهرکرد", CapitalCounty: "IR-14-shahrekord"},
		{Code: "IR-15", SciOrder: 15, NameEn: "Lorestan", NameFa: "لرستان", CapitalEn: "Khorramabad", CapitalFa: "خرم‌آباد", CapitalCounty: "IR-15-khorramabad"},
		{Code: "IR-16", SciOrder: 16, NameEn: "Ilam", NameFa: "ایلام", CapitalEn: "Ilam", CapitalFa: "ایلام", CapitalCounty: "IR-16-ilam"},
		{Code: "IR-17", SciOrder: 17, NameEn: "Kohgiluyeh and Boyer-Ahmad", NameFa: "کهگیلویه و بویراحمد", CapitalEn: "Yasuj", CapitalFa: "یاسوج", CapitalCounty: "IR-17-yasuj"},
		{Code: "IR-18", SciOrder: 18, NameEn: "Bushehr", NameFa: "بوشهر", CapitalEn: "Bushehr", CapitalFa: "بوشهر", CapitalCounty: "IR-18-bushehr"},
		{Code: "IR-19", SciOrder: 19, NameEn: "Zanjan", NameFa: "زنجان", CapitalEn: "Zanjan", CapitalFa: "زنجان", CapitalCounty: "IR-19-zanjan"},
		{Code: "IR-20", SciOrder: 20, NameEn: "Semnan", NameFa: "سمنان", CapitalEn: "Semnan", CapitalFa: "سمنان", CapitalCounty: "IR-20-semnan"},
		{Code: "IR-21", SciOrder: 21, NameEn: "Yazd", NameFa: "یزد", CapitalEn: "Yazd", CapitalFa: "یزد", CapitalCounty: "IR-21-yazd"},
		{Code: "IR-22", SciOrder: 22, NameEn: "Hormozgan", NameFa: "هرمزگان", CapitalEn: "Bandar Abbas", CapitalFa: "بندرعباس", CapitalCounty: "IR-22-bandar-abbas"},
		{Code: "IR-23", SciOrder: 23, NameEn: "Tehran", NameFa: "تهران", CapitalEn: "Tehran", CapitalFa: "تهران", CapitalCounty: "IR-23-tehran"},
		{Code: "IR-24", SciOrder: 24, NameEn: "Ardabil", NameFa: "اردبیل", CapitalEn: "Ardabil", CapitalFa: "اردبیل", CapitalCounty: "IR-24-ardabil"},
		{Code: "IR-25", SciOrder: 25, NameEn: "Qom", NameFa: "قم", CapitalEn: "Qom", CapitalFa: "قم", CapitalCounty: "IR-25-qom"},
		{Code: "IR-26", SciOrder: 26, NameEn: "Qazvin", NameFa: "قزوین", CapitalEn: "Qazvin", CapitalFa: "قزوین", CapitalCounty: "IR-26-qazvin"},
		{Code: "IR-27", SciOrder: 27, NameEn: "Golestan", NameFa: "گلستان", CapitalEn: "Gorgan", CapitalFa: "گرگان", CapitalCounty: "IR-27-gorgan"},
		{Code: "IR-28", SciOrder: 28, NameEn: "North Khorasan", NameFa: "خراسان شمالی", CapitalEn: "Bojnurd", CapitalFa: "بجنورد", CapitalCounty: "IR-28-bojnurd"},
		{Code: "IR-29", SciOrder: 29, NameEn: "South Khorasan", NameFa: "خراسان جنوبی", CapitalEn: "Birjand", CapitalFa: "بیرجند", CapitalCounty: "IR-29-birjand"},
		{Code: "IR-30", SciOrder: 30, NameEn: "Alborz", NameFa: "البرز", CapitalEn: "Karaj", CapitalFa: "کرج", CapitalCounty: "IR-30-karaj"},
	}
}

// agencyTable lists the default agencies from agencies.csv.
func agencyTable() []Agency {
	return []Agency{
		{ID: "relief-committee", NameEn: "Imam Khomeini Relief Committee", NameFa: "کمیته امداد امام خمینی"},
		{ID: "welfare", NameEn: "State Welfare Organization", NameFa: "سازمان بهزیستی کشور"},
		{ID: "agriculture-jihad", NameEn: "Ministry of Agriculture Jihad", NameFa: "وزارت جهاد کشاورزی"},
		{ID: "cultural-heritage", NameEn: "Ministry of Cultural Heritage, Tourism and Handicrafts", NameFa: "وزارت میراث فرهنگی، گردشگری و صنایع دستی"},
		{ID: "industry-mine-trade", NameEn: "Ministry of Industry, Mine and Trade", NameFa: "وزارت صنعت، معدن و تجارت"},
		{ID: "culture-guidance", NameEn: "Ministry of Culture and Islamic Guidance", NameFa: "وزارت فرهنگ و ارشاد اسلامی"},
		{ID: "basij-sazandegi", NameEn: "Basij Sazandegi Organization", NameFa: "سازمان بسیج سازندگی"},
		{ID: "barakat", NameEn: "Barakat Foundation", NameFa: "بنیاد برکت"},
		{ID: "alavi", NameEn: "Alavi Foundation", NameFa: "بنیاد علوی"},
		{ID: "endowments", NameEn: "Endowment and Charity Affairs Organization", NameFa: "سازمان اوقاف و امور خیریه"},
		{ID: "acecr", NameEn: "Academic Center for Education, Culture and Research (Jihad Daneshgahi)", NameFa: "جهاد دانشگاهی"},
		{ID: "labour-ministry", NameEn: "Ministry of Cooperatives, Labour and Social Welfare", NameFa: "وزارت تعاون، کار و رفاه اجتماعی"},
	}
}

// bankTable lists the default banks from banks.csv.
func bankTable() []Bank {
	return []Bank{
		{ID: "keshavarzi", NameEn: "Bank Keshavarzi (Agriculture Bank)", NameFa: "بانک کشاورزی"},
		{ID: "post-bank", NameEn: "Post Bank of Iran", NameFa: "پست بانک ایران"},
		{ID: "tosee-taavon", NameEn: "Tose'e Ta'avon Bank (Cooperative Development Bank)", NameFa: "بانک توسعه تعاون"},
		{ID: "mehr-iran", NameEn: "Qard al-Hasan Mehr Iran Bank", NameFa: "بانک قرض‌الحسنه مهر ایران"},
		{ID: "resalat", NameEn: "Qard al-Hasan Resalat Bank", NameFa: "بانک قرض‌الحسنه رسالت"},
		{ID: "refah", NameEn: "Refah Kargaran Bank", NameFa: "بانک رفاه کارگران"},
		{ID: "melli", NameEn: "Bank Melli Iran", NameFa: "بانک ملی ایران"},
		{ID: "saderat", NameEn: "Bank Saderat Iran", NameFa: "بانک صادرات ایران"},
		{ID: "sepah", NameEn: "Bank Sepah", NameFa: "بانک سپه"},
		{ID: "sanat-madan", NameEn: "Bank of Industry and Mine", NameFa: "بانک صنعت و معدن"},
	}
}

// programTable lists the default programmes from programs.csv with their
// notes. MaxLoanRials is set only where a programme note states a cap.
func programTable() []Program {
	return []Program{
		{ID: "home-business", NameEn: "Home-based businesses", NameFa: "مشاغل خانگی", Note: "interest-free loans with a 4% fee under budget note 15 (1404); up to 2,000 million rials per person", MaxLoanRials: 2_000_000_000},
		{ID: "inclusive-employment", NameEn: "Inclusive employment", NameFa: "اشتغال فراگیر", Note: "registered through the Kara system"},
		{ID: "rural-nomadic", NameEn: "Rural and nomadic sustainable employment", NameFa: "اشتغال پایدار روستایی و عشایری", Note: "National Development Fund money matched by operating banks; repayment up to 6 years"},
		{ID: "quick-yield", NameEn: "Quick-yield enterprises", NameFa: "بنگاه‌های زودبازده و کارآفرین", Note: "the 2000s programme whose census seed 000 describes"},
		{ID: "note-16", NameEn: "Budget note 16 employment facilities", NameFa: "تسهیلات اشتغال تبصره ۱۶", Note: ""},
		{ID: "note-18", NameEn: "Budget note 18 production and employment facilities", NameFa: "تسهیلات تولید و اشتغال تبصره ۱۸", Note: "agency shares set by job commitments"},
		{ID: "micro-jobs", NameEn: "Micro jobs and processing-industry hubs", NameFa: "مشاغل خرد و قطب‌های صنایع تبدیلی", Note: "seed 002"},
	}
}
