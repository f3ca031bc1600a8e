package storage

import (
	"bytes"
	"strconv"

	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
)

func checkTypeSupported(t rrdb.CasCheckType) bool {
	return t >= rrdb.CasCheckType_CT_NO_CHECK && t <= rrdb.CasCheckType_CT_VALUE_INT_GREATER
}

// evalCheck evaluates a check-and-set/mutate condition against the current value of the
// check key (exists is false for absent or expired records). invalid reports an
// argument error: an integer comparison whose value or operand is not a decimal int64.
// Every comparison except the existence checks requires the value to exist; an absent
// value fails the check before its operand is looked at.
func evalCheck(t rrdb.CasCheckType, exists bool, value, operand []byte) (pass, invalid bool) {
	switch t {
	case rrdb.CasCheckType_CT_NO_CHECK:
		return true, false
	case rrdb.CasCheckType_CT_VALUE_NOT_EXIST:
		return !exists, false
	case rrdb.CasCheckType_CT_VALUE_NOT_EXIST_OR_EMPTY:
		return !exists || len(value) == 0, false
	case rrdb.CasCheckType_CT_VALUE_EXIST:
		return exists, false
	case rrdb.CasCheckType_CT_VALUE_NOT_EMPTY:
		return exists && len(value) > 0, false
	}
	if !exists {
		return false, false
	}
	switch t {
	case rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE:
		return bytes.Contains(value, operand), false
	case rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX:
		return bytes.HasPrefix(value, operand), false
	case rrdb.CasCheckType_CT_VALUE_MATCH_POSTFIX:
		return bytes.HasSuffix(value, operand), false
	case rrdb.CasCheckType_CT_VALUE_BYTES_LESS,
		rrdb.CasCheckType_CT_VALUE_BYTES_LESS_OR_EQUAL,
		rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL,
		rrdb.CasCheckType_CT_VALUE_BYTES_GREATER_OR_EQUAL,
		rrdb.CasCheckType_CT_VALUE_BYTES_GREATER:
		return compareMatches(t-rrdb.CasCheckType_CT_VALUE_BYTES_LESS, bytes.Compare(value, operand)), false
	case rrdb.CasCheckType_CT_VALUE_INT_LESS,
		rrdb.CasCheckType_CT_VALUE_INT_LESS_OR_EQUAL,
		rrdb.CasCheckType_CT_VALUE_INT_EQUAL,
		rrdb.CasCheckType_CT_VALUE_INT_GREATER_OR_EQUAL,
		rrdb.CasCheckType_CT_VALUE_INT_GREATER:
		v, err1 := strconv.ParseInt(string(value), 10, 64)
		o, err2 := strconv.ParseInt(string(operand), 10, 64)
		if err1 != nil || err2 != nil {
			return false, true
		}
		c := 0
		if v < o {
			c = -1
		} else if v > o {
			c = 1
		}
		return compareMatches(t-rrdb.CasCheckType_CT_VALUE_INT_LESS, c), false
	}
	return false, true
}

// compareMatches maps the offset of a comparison check inside its group (less, less or
// equal, equal, greater or equal, greater) and a three-way comparison to the outcome.
func compareMatches(offset rrdb.CasCheckType, c int) bool {
	switch offset {
	case 0:
		return c < 0
	case 1:
		return c <= 0
	case 2:
		return c == 0
	case 3:
		return c >= 0
	default:
		return c > 0
	}
}

func filterTypeSupported(t rrdb.FilterType) bool {
	return t >= rrdb.FilterType_FT_NO_FILTER && t <= rrdb.FilterType_FT_MATCH_POSTFIX
}

// matchFilter applies a hash-key or sort-key filter. An empty pattern matches
// everything; a subject shorter than the pattern never matches otherwise.
func matchFilter(t rrdb.FilterType, pattern, subject []byte) bool {
	if len(pattern) == 0 {
		return true
	}
	switch t {
	case rrdb.FilterType_FT_MATCH_ANYWHERE:
		return bytes.Contains(subject, pattern)
	case rrdb.FilterType_FT_MATCH_PREFIX:
		return bytes.HasPrefix(subject, pattern)
	case rrdb.FilterType_FT_MATCH_POSTFIX:
		return bytes.HasSuffix(subject, pattern)
	default:
		return true
	}
}
