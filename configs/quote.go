package configs

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// QuoteLimit is the most characters of a value a message quotes. A value pasted by
// mistake (a whole file in baseDomain, a key in a name) would otherwise be printed back in
// full, burying the one line that says what is wrong under megabytes of it.
const QuoteLimit = 80

// Quote quotes v for a message: whole when it is short, else its first characters, an
// ellipsis and its length, e.g. "aaaaaaaa…" (5000012 characters).
func Quote(v string) string {
	if len(v) <= QuoteLimit {
		return strconv.Quote(v)
	}
	keep := v
	for i := range v {
		if i > QuoteLimit-16 {
			keep = v[:i]
			break
		}
	}
	return fmt.Sprintf("%s (%d characters)", strconv.Quote(keep+"…"), utf8.RuneCountInString(v))
}

// bare is v as is when it is short, else quoted and cut like Quote.
func bare(v string) string {
	if len(v) <= QuoteLimit {
		return v
	}
	return Quote(v)
}

// printsValue are the error types whose message shows the value (field.Error.ErrorBody);
// the others (Required, Forbidden, …) never show it, and must not start to.
var printsValue = map[field.ErrorType]bool{
	field.ErrorTypeInvalid: true, field.ErrorTypeTypeInvalid: true, field.ErrorTypeNotSupported: true,
	field.ErrorTypeNotFound: true, field.ErrorTypeDuplicate: true, field.ErrorTypeTooMany: true, field.ErrorTypeTooFew: true,
}

// shorten returns errs with every long string value cut by Quote. field.Error prints its
// value whole; a cut one goes into the detail instead, so the message reads the same:
// `spec.baseDomain: Invalid value: "aaaa…" (5000012 characters): must be …`.
func shorten(errs field.ErrorList) field.ErrorList {
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		s, ok := e.BadValue.(string)
		if !ok || len(s) <= QuoteLimit || !printsValue[e.Type] {
			out = append(out, e)
			continue
		}
		c := *e
		c.BadValue = field.OmitValueType{}
		c.Detail = Quote(s)
		if e.Detail != "" {
			c.Detail += ": " + e.Detail
		}
		out = append(out, &c)
	}
	return out
}
