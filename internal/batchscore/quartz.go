package batchscore

import (
	"fmt"
	"strconv"
	"strings"
)

// checkQuartz validates a Quartz cron expression, the syntax of the Jobs
// API's schedule.quartz_cron_expression: six or seven fields, seconds first,
// and '?' in exactly one of day-of-month and day-of-week
// (http://www.quartz-scheduler.org/documentation/quartz-2.3.0/tutorials/crontrigger.html,
// org.quartz.CronExpression). Databricks would refuse a bad expression only
// after the job was written, so the task checks it first.
func checkQuartz(expr string) error {
	fields := strings.Fields(expr)
	switch {
	case len(fields) == 5:
		return fmt.Errorf("has 5 fields like a Unix cron expression; Quartz syntax starts with seconds and puts ? in day-of-month or day-of-week, e.g. \"0 0 2 * * ?\" for 02:00 every day")
	case len(fields) != 6 && len(fields) != 7:
		return fmt.Errorf("has %d fields; Quartz syntax has 6 or 7: seconds minutes hours day-of-month month day-of-week [year]", len(fields))
	}
	for i, f := range fields {
		if err := quartzFields[i].check(f); err != nil {
			return fmt.Errorf("%s field %q: %w", quartzFields[i].name, f, err)
		}
	}
	dom, dow := fields[3] == "?", fields[5] == "?"
	switch {
	case dom && dow:
		return fmt.Errorf("? may be used in day-of-month or in day-of-week, not both")
	case !dom && !dow:
		return fmt.Errorf("put ? in day-of-month or in day-of-week (Quartz does not combine the two), e.g. \"0 0 2 * * ?\" or \"0 0 2 ? * MON-FRI\"")
	}
	return nil
}

type quartzField struct {
	name    string
	lo, hi  int
	names   []string // JAN.. or SUN.., value lo+index
	special string   // allowed extras: "?LW" for day-of-month, "?L#" for day-of-week
}

var quartzFields = []quartzField{
	{name: "seconds", lo: 0, hi: 59},
	{name: "minutes", lo: 0, hi: 59},
	{name: "hours", lo: 0, hi: 23},
	{name: "day-of-month", lo: 1, hi: 31, special: "?LW"},
	{name: "month", lo: 1, hi: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", lo: 1, hi: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, special: "?L#"},
	{name: "year", lo: 1970, hi: 2099},
}

func (f quartzField) check(s string) error {
	if s == "?" {
		if !strings.Contains(f.special, "?") {
			return fmt.Errorf("? is only allowed in day-of-month and day-of-week")
		}
		return nil
	}
	for _, item := range strings.Split(s, ",") {
		if err := f.item(item); err != nil {
			return err
		}
	}
	return nil
}

func (f quartzField) item(item string) error {
	if item == "" {
		return fmt.Errorf("empty list item")
	}
	switch {
	case strings.Contains(f.special, "L") && f.name == "day-of-month":
		// L, L-3, LW, 15W
		if item == "L" || item == "LW" {
			return nil
		}
		if rest, ok := strings.CutPrefix(item, "L-"); ok {
			return f.number(rest, 1, 30)
		}
		if rest, ok := strings.CutSuffix(item, "W"); ok {
			return f.number(rest, f.lo, f.hi)
		}
	case strings.Contains(f.special, "#"):
		// L, 6L (last Friday), 6#3 (third Friday)
		if item == "L" {
			return nil
		}
		if rest, ok := strings.CutSuffix(item, "L"); ok {
			_, err := f.value(rest)
			return err
		}
		if day, nth, ok := strings.Cut(item, "#"); ok {
			if _, err := f.value(day); err != nil {
				return err
			}
			return f.number(nth, 1, 5)
		}
	}
	base, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		if err := f.number(step, 1, f.hi-f.lo+1); err != nil {
			return fmt.Errorf("step: %w", err)
		}
	}
	if base == "*" {
		return nil
	}
	from, to, isRange := strings.Cut(base, "-")
	if _, err := f.value(from); err != nil {
		return err
	}
	if isRange {
		if _, err := f.value(to); err != nil {
			return err
		}
	}
	return nil
}

// value is a number in range or a name (JAN, MON).
func (f quartzField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.lo + i, nil
		}
	}
	if err := f.number(s, f.lo, f.hi); err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(s)
	return n, nil
}

func (f quartzField) number(s string, lo, hi int) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi || strings.HasPrefix(s, "+") {
		if len(f.names) > 0 {
			return fmt.Errorf("%q is not a number from %d to %d or one of %s-%s", s, lo, hi, f.names[0], f.names[len(f.names)-1])
		}
		return fmt.Errorf("%q is not a number from %d to %d", s, lo, hi)
	}
	return nil
}
