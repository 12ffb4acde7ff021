package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name  string
		files fstest.MapFS
		want  []int  // versions, in order
		err   string // a substring of the error
	}{
		{"in version order, gaps allowed", fstest.MapFS{
			"m/0010_c.sql": file("c"), "m/0001_a.sql": file("a"), "m/0004_b.sql": file("b")}, []int{1, 4, 10}, ""},
		{"two files with one number", fstest.MapFS{
			"m/0001_a.sql": file("a"), "m/0001_b.sql": file("b")}, nil, `"0001_a.sql" and "0001_b.sql" share a number`},
		{"no number", fstest.MapFS{"m/init.sql": file("a")}, nil, "not named NNNN_name.sql"},
		{"short number", fstest.MapFS{"m/001_a.sql": file("a")}, nil, "not named NNNN_name.sql"},
		{"not SQL", fstest.MapFS{"m/0001_a.txt": file("a")}, nil, "not named NNNN_name.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load(tt.files, "m")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
				if m.SQL != strings.TrimSuffix(strings.SplitN(m.Name, "_", 2)[1], ".sql") {
					t.Fatalf("%s has SQL %q", m.Name, m.SQL)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("versions %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("versions %v, want %v", got, tt.want)
				}
			}
		})
	}
}
