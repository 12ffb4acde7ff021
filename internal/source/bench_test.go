package source

import (
	"testing"

	"github.com/hookd/hookd/internal/webhook"
)

// BenchmarkIngest measures what a source adds to intake per request:
// verifying the signature and translating the tool's published example.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		kind    webhook.SourceKind
		fixture string
		headers map[string]string
	}{
		{webhook.SourceGitHub, "github_deployment_status.json", map[string]string{"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "d"}},
		{webhook.SourceGitLab, "gitlab_deployment.json", map[string]string{"X-Gitlab-Event": "Deployment Hook"}},
		{webhook.SourceFlux, "flux_helmrelease_upgraded.json", nil},
	} {
		b.Run(string(c.kind), func(b *testing.B) {
			body, err := testdataFS.ReadFile("testdata/" + c.fixture)
			if err != nil {
				b.Fatal(err)
			}
			src := newSource(c.kind)
			h := Signed(c.kind, testSecret, body, c.headers)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(src, h, body, testNow); err != nil {
					b.Fatal(err)
				}
				if res, err := Translate(src, h, body); err != nil || res.Event == nil {
					b.Fatal(res, err)
				}
			}
		})
	}
}
