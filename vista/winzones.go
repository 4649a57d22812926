package vista

// windowsZones maps a Windows time zone name (the registry key name that
// .NET's TimeZoneInfo.Id returns, and so what a Vista server on Windows
// sends as TimeZoneId) to the IANA zone that Unicode CLDR's windowsZones.xml
// gives for territory "001", the zone's main region.
//
// Where CLDR still spells a zone with an older IANA alias (Asia/Calcutta,
// Europe/Kiev, America/Godthab, ...) the current IANA name is used instead:
// the rules are the same, and the name is what readers see in the cinema's
// "timezone" field. Such entries carry CLDR's spelling in a comment.
//
// The fixed-offset names map to Etc/GMT±N, whose sign is inverted by POSIX
// convention: "UTC-08" is Etc/GMT+8.
var windowsZones = map[string]string{
	// Fixed offsets and UTC.
	"Dateline Standard Time": "Etc/GMT+12",
	"UTC-11":                 "Etc/GMT+11",
	"UTC-09":                 "Etc/GMT+9",
	"UTC-08":                 "Etc/GMT+8",
	"UTC-02":                 "Etc/GMT+2",
	"UTC":                    "Etc/UTC",
	"UTC+12":                 "Etc/GMT-12",
	"UTC+13":                 "Etc/GMT-13",

	// North America.
	"Aleutian Standard Time":          "America/Adak",
	"Hawaiian Standard Time":          "Pacific/Honolulu",
	"Alaskan Standard Time":           "America/Anchorage",
	"Pacific Standard Time (Mexico)":  "America/Tijuana",
	"Pacific Standard Time":           "America/Los_Angeles",
	"US Mountain Standard Time":       "America/Phoenix",
	"Mountain Standard Time (Mexico)": "America/Mazatlan",
	"Mountain Standard Time":          "America/Denver",
	"Yukon Standard Time":             "America/Whitehorse",
	"Central Standard Time":           "America/Chicago",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"Canada Central Standard Time":    "America/Regina",
	"Eastern Standard Time (Mexico)":  "America/Cancun",
	"Eastern Standard Time":           "America/New_York",
	"US Eastern Standard Time":        "America/Indiana/Indianapolis", // CLDR: America/Indianapolis
	"Atlantic Standard Time":          "America/Halifax",
	"Newfoundland Standard Time":      "America/St_Johns",
	"Greenland Standard Time":         "America/Nuuk", // CLDR: America/Godthab
	"Saint Pierre Standard Time":      "America/Miquelon",

	// Central America and the Caribbean.
	"Central America Standard Time":  "America/Guatemala",
	"Haiti Standard Time":            "America/Port-au-Prince",
	"Cuba Standard Time":             "America/Havana",
	"Turks And Caicos Standard Time": "America/Grand_Turk",

	// South America.
	"Easter Island Standard Time":     "Pacific/Easter",
	"SA Pacific Standard Time":        "America/Bogota",
	"Paraguay Standard Time":          "America/Asuncion",
	"Venezuela Standard Time":         "America/Caracas",
	"Central Brazilian Standard Time": "America/Cuiaba",
	"SA Western Standard Time":        "America/La_Paz",
	"Pacific SA Standard Time":        "America/Santiago",
	"Tocantins Standard Time":         "America/Araguaina",
	"E. South America Standard Time":  "America/Sao_Paulo",
	"SA Eastern Standard Time":        "America/Cayenne",
	"Argentina Standard Time":         "America/Argentina/Buenos_Aires", // CLDR: America/Buenos_Aires
	"Montevideo Standard Time":        "America/Montevideo",
	"Magallanes Standard Time":        "America/Punta_Arenas",
	"Bahia Standard Time":             "America/Bahia",

	// Atlantic islands.
	"Azores Standard Time":     "Atlantic/Azores",
	"Cape Verde Standard Time": "Atlantic/Cape_Verde",

	// Europe, with Turkey and European Russia.
	"GMT Standard Time":              "Europe/London",
	"Greenwich Standard Time":        "Atlantic/Reykjavik",
	"W. Europe Standard Time":        "Europe/Berlin",
	"Central Europe Standard Time":   "Europe/Budapest",
	"Romance Standard Time":          "Europe/Paris",
	"Central European Standard Time": "Europe/Warsaw",
	"GTB Standard Time":              "Europe/Bucharest",
	"E. Europe Standard Time":        "Europe/Chisinau",
	"FLE Standard Time":              "Europe/Kyiv", // CLDR: Europe/Kiev
	"Kaliningrad Standard Time":      "Europe/Kaliningrad",
	"Turkey Standard Time":           "Europe/Istanbul",
	"Belarus Standard Time":          "Europe/Minsk",
	"Russian Standard Time":          "Europe/Moscow",
	"Astrakhan Standard Time":        "Europe/Astrakhan",
	"Russia Time Zone 3":             "Europe/Samara",
	"Saratov Standard Time":          "Europe/Saratov",
	"Volgograd Standard Time":        "Europe/Volgograd",

	// Africa.
	"Sao Tome Standard Time":          "Africa/Sao_Tome",
	"Morocco Standard Time":           "Africa/Casablanca",
	"W. Central Africa Standard Time": "Africa/Lagos",
	"Egypt Standard Time":             "Africa/Cairo",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"South Sudan Standard Time":       "Africa/Juba",
	"Sudan Standard Time":             "Africa/Khartoum",
	"Libya Standard Time":             "Africa/Tripoli",
	"Namibia Standard Time":           "Africa/Windhoek",
	"E. Africa Standard Time":         "Africa/Nairobi",
	"Mauritius Standard Time":         "Indian/Mauritius",

	// Middle East and the Caucasus.
	"Jordan Standard Time":      "Asia/Amman",
	"Middle East Standard Time": "Asia/Beirut",
	"Syria Standard Time":       "Asia/Damascus",
	"West Bank Standard Time":   "Asia/Hebron",
	"Israel Standard Time":      "Asia/Jerusalem",
	"Arabic Standard Time":      "Asia/Baghdad",
	"Arab Standard Time":        "Asia/Riyadh",
	"Iran Standard Time":        "Asia/Tehran",
	"Arabian Standard Time":     "Asia/Dubai",
	"Azerbaijan Standard Time":  "Asia/Baku",
	"Georgian Standard Time":    "Asia/Tbilisi",
	"Caucasus Standard Time":    "Asia/Yerevan",

	// Central and South Asia.
	"Afghanistan Standard Time":  "Asia/Kabul",
	"West Asia Standard Time":    "Asia/Tashkent",
	"Ekaterinburg Standard Time": "Asia/Yekaterinburg",
	"Pakistan Standard Time":     "Asia/Karachi",
	"Qyzylorda Standard Time":    "Asia/Qyzylorda",
	"India Standard Time":        "Asia/Kolkata", // CLDR: Asia/Calcutta
	"Sri Lanka Standard Time":    "Asia/Colombo",
	"Nepal Standard Time":        "Asia/Kathmandu", // CLDR: Asia/Katmandu
	"Central Asia Standard Time": "Asia/Bishkek",
	"Bangladesh Standard Time":   "Asia/Dhaka",
	"Omsk Standard Time":         "Asia/Omsk",

	// South-East and East Asia, with Asian Russia.
	"Myanmar Standard Time":         "Asia/Yangon", // CLDR: Asia/Rangoon
	"SE Asia Standard Time":         "Asia/Bangkok",
	"Altai Standard Time":           "Asia/Barnaul",
	"W. Mongolia Standard Time":     "Asia/Hovd",
	"North Asia Standard Time":      "Asia/Krasnoyarsk",
	"N. Central Asia Standard Time": "Asia/Novosibirsk",
	"Tomsk Standard Time":           "Asia/Tomsk",
	"China Standard Time":           "Asia/Shanghai",
	"North Asia East Standard Time": "Asia/Irkutsk",
	"Singapore Standard Time":       "Asia/Singapore",
	"Taipei Standard Time":          "Asia/Taipei",
	"Ulaanbaatar Standard Time":     "Asia/Ulaanbaatar",
	"Transbaikal Standard Time":     "Asia/Chita",
	"Tokyo Standard Time":           "Asia/Tokyo",
	"North Korea Standard Time":     "Asia/Pyongyang",
	"Korea Standard Time":           "Asia/Seoul",
	"Yakutsk Standard Time":         "Asia/Yakutsk",
	"Vladivostok Standard Time":     "Asia/Vladivostok",
	"Russia Time Zone 10":           "Asia/Srednekolymsk",
	"Magadan Standard Time":         "Asia/Magadan",
	"Sakhalin Standard Time":        "Asia/Sakhalin",
	"Russia Time Zone 11":           "Asia/Kamchatka",

	// Australia.
	"W. Australia Standard Time":   "Australia/Perth",
	"Aus Central W. Standard Time": "Australia/Eucla",
	"Cen. Australia Standard Time": "Australia/Adelaide",
	"AUS Central Standard Time":    "Australia/Darwin",
	"E. Australia Standard Time":   "Australia/Brisbane",
	"AUS Eastern Standard Time":    "Australia/Sydney",
	"Tasmania Standard Time":       "Australia/Hobart",
	"Lord Howe Standard Time":      "Australia/Lord_Howe",

	// New Zealand and the Pacific.
	"New Zealand Standard Time":     "Pacific/Auckland",
	"Chatham Islands Standard Time": "Pacific/Chatham",
	"Marquesas Standard Time":       "Pacific/Marquesas",
	"West Pacific Standard Time":    "Pacific/Port_Moresby",
	"Bougainville Standard Time":    "Pacific/Bougainville",
	"Norfolk Standard Time":         "Pacific/Norfolk",
	"Central Pacific Standard Time": "Pacific/Guadalcanal",
	"Fiji Standard Time":            "Pacific/Fiji",
	"Tonga Standard Time":           "Pacific/Tongatapu",
	"Samoa Standard Time":           "Pacific/Apia",
	"Line Islands Standard Time":    "Pacific/Kiritimati",
}
