package pgtest

import "testing"

func TestWithParam(t *testing.T) {
	tests := []struct{ dsn, key, value, want string }{
		{"postgres://u@h:5432/postgres?sslmode=disable", "dbname", "x", "postgres://u@h:5432/x?sslmode=disable"},
		{"postgres://u@h/db", "search_path", "s", "postgres://u@h/db?search_path=s"},
		{"host=h user=u", "dbname", "x", "host=h user=u dbname=x"},
	}
	for _, tt := range tests {
		if got := WithParam(tt.dsn, tt.key, tt.value); got != tt.want {
			t.Errorf("WithParam(%q, %q, %q) = %q, want %q", tt.dsn, tt.key, tt.value, got, tt.want)
		}
	}
}
