package audit

import "errors"

var errTime = errors.New("time is not UTC RFC 3339 (2006-01-02T15:04:05.999999999Z)")

// parseTime reads the times the log writes, YYYY-MM-DDTHH:MM:SS, an
// optional fraction of up to nine digits, and Z, into Unix nanoseconds.
// It avoids time.Parse because Verify calls it for every line. Years
// outside 1970-2261 are refused: their nanoseconds do not fit an int64.
func parseTime(b []byte) (int64, error) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' ||
		b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return 0, errTime
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1970 || year > 2261 ||
		month < 1 || month > 12 ||
		day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, errTime
	}
	frac, err := parseFrac(b[19 : len(b)-1])
	if err != nil {
		return 0, err
	}
	days := daysFromCivil(year, month, day)
	secs := days*86400 + int64(hour*3600+minute*60+sec)
	return secs*1e9 + frac, nil
}

// parseFrac reads ".ddd" as nanoseconds. Like RFC3339Nano output, it
// refuses a trailing zero, so each instant has one spelling.
func parseFrac(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if b[0] != '.' || len(b) < 2 || len(b) > 10 || b[len(b)-1] == '0' {
		return 0, errTime
	}
	v, ok := digits(b[1:])
	if !ok {
		return 0, errTime
	}
	for i := len(b) - 1; i < 9; i++ {
		v *= 10
	}
	return int64(v), nil
}

func digits(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil counts days from 1970-01-01 to the given proleptic
// Gregorian date (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
