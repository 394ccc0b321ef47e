// Package option fills in the defaults of the roles' Options.
//
// The roles take an option's zero value to mean "the default", so that a
// caller sets only what it cares about. A size or a duration that is
// negative makes no sense either, and means the default too; an option
// where a negative value does mean something of its own (no cap, the
// system's buffer) takes its default with cmp.Or, which replaces only zero.
package option

// Number is what Default fills in: counts, sizes and durations
// (time.Duration is an int64).
type Number interface {
	~int | ~int64 | ~float64
}

// Default returns v when it is positive, else def.
func Default[T Number](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
