package option

import (
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ v, want time.Duration }{
		{0, time.Second},
		{-time.Millisecond, time.Second},
		{time.Nanosecond, time.Nanosecond},
		{time.Minute, time.Minute},
	} {
		if got := Default(c.v, time.Second); got != c.want {
			t.Errorf("Default(%v, 1s) = %v, want %v", c.v, got, c.want)
		}
	}
	if got := Default(0, 150); got != 150 {
		t.Errorf("Default(0, 150) = %d, want 150", got)
	}
	if got := Default(3, 150); got != 3 {
		t.Errorf("Default(3, 150) = %d, want 3", got)
	}
}
