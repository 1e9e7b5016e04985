package batchscore

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestQuartz(t *testing.T) {
	for _, ok := range []string{
		"0 0 2 * * ?", "0 0/5 * * * ?", "0 15 10 ? * MON-FRI", "0 15 10 L * ?", "0 15 10 L-2 * ?",
		"0 15 10 15W * ?", "0 15 10 LW * ?", "0 15 10 ? * 6L", "0 15 10 ? * 6#3", "0 0 12 1/5 * ?",
		"0 11 11 11 11 ?", "0 0 2 ? jan,jul sun 2026-2030", "*/30 * * ? * *", "0 0 2 ? * L",
	} {
		assert.NoError(t, checkQuartz(ok), ok)
	}
	for expr, problem := range map[string]string{
		"":                      "has 0 fields",
		"0 2 * * *":             "5 fields like a Unix cron",
		"0 0 2 * * ? 2026 x":    "has 8 fields",
		"60 0 2 * * ?":          "seconds field",
		"0 0 2 32 * ?":          "day-of-month field",
		"0 0 2 ? 13 *":          "month field",
		"0 0 2 ? * 8":           "day-of-week field",
		"0 0 2 ? * MON#6":       "day-of-week field",
		"0 0 2 * * *":           "put ? in day-of-month or in day-of-week",
		"0 0 2 ? * ?":           "not both",
		"0 ? 2 * * *":           "? is only allowed",
		"0 0/0 2 * * ?":         "step",
		"0 0 2 * * ? 1969":      "year field",
		"0 0 2 1,,2 * ?":        "empty list item",
		"0 0 2 * * ?; rm -rf /": "has 9 fields",
	} {
		err := checkQuartz(expr)
		if assert.Error(t, err, expr) {
			assert.Contains(t, err.Error(), problem, expr)
		}
	}
}

func TestKnownZones(t *testing.T) {
	for _, z := range []string{"UTC", "Europe/Madrid", "America/Argentina/Buenos_Aires", "Etc/GMT+3", "Asia/Kolkata", "GMT"} {
		assert.True(t, knownZone(z), z)
	}
	for _, z := range []string{"", "utc", "CEST", "Europe/Madird", "Local", "europe/madrid"} {
		assert.False(t, knownZone(z), z)
	}
}
