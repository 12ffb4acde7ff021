package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/delivery"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/webhook"
)

// The deployment files (deploy/, the Dockerfile) are written by hand; these
// tests hold them to what the binary reads and does: variable names it
// knows, values it accepts, the port it listens on, the probes it answers
// and the time it takes to stop.

// hookdStop is the longest a graceful stop of `hookd serve` takes while
// the database answers, if only on the connections not gone silent
// (docs/engine.md, "A graceful stop, in order"). Three waits run side by
// side, then the last spans are sent:
//   - the requests in flight, the API's and the dispatcher's
//     (StopGrace): shutdownTimeout;
//   - a claim under way, which the stop lets finish: ClaimTimeout, and on
//     PostgreSQL GiveBackTimeout more if it fails and gives its leases
//     back;
//   - intake's last commits, which run to their requests' deadline:
//     IntakeTimeout from a handler's start, which comes readHeaderTimeout
//     after the stop at the latest (the listener is closed then).
//
// A database that answers on no connection is not covered: the waits
// after the claim (a release, 10 s; outcomes, 30 s a try, three tries,
// batch after batch) add up past any grace period. The kill that ends
// such a stop breaks no promise: what is not recorded is sent again once
// its lease ends.
const hookdStop = max(shutdownTimeout,
	delivery.ClaimTimeout+postgres.GiveBackTimeout,
	readHeaderTimeout+api.IntakeTimeout) + traceFlushTimeout

// k8sObject is the part of a Kubernetes object the tests look at.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas       *int `yaml:"replicas"`
		MaxUnavailable any  `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Ports []struct {
			Name       string `yaml:"name"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

// probeWindow is how long a probe may fail before the kubelet acts, with
// Kubernetes' defaults (every 10s, three failures).
func (p *k8sProbe) probeWindow() time.Duration {
	period, failures := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if failures == 0 {
		failures = 3
	}
	return time.Duration(period*failures) * time.Second
}

// startupAllowance is the least time the manifests must give hookd to
// start: serve binds its port only once the database is migrated (newApp),
// and one migration on a large database (an index over every attempt)
// takes minutes.
const startupAllowance = 5 * time.Minute

// readManifests parses every YAML document in a folder, by kind.
func readManifests(t *testing.T, dir string) map[string]k8sObject {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(paths) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	objects := map[string]k8sObject{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			objects[o.Kind] = o
		}
		f.Close()
	}
	return objects
}

// TestKubernetesManifests checks both variants against the binary.
func TestKubernetesManifests(t *testing.T) {
	variants := []struct {
		dir      string
		workload string
		// secrets stand in for the values of secretKeyRef variables.
		secrets map[string]string
		check   func(t *testing.T, objects map[string]k8sObject, env map[string]string)
	}{
		{"sqlite", "StatefulSet", nil, func(t *testing.T, objects map[string]k8sObject, env map[string]string) {
			ss := objects["StatefulSet"]
			if n := replicas(ss); n != 1 {
				t.Errorf("SQLite has one writer: replicas must be 1, not %d", n)
			}
			path, ok := strings.CutPrefix(env["HOOKD_DATABASE_URL"], "sqlite:")
			if !ok {
				t.Fatalf("HOOKD_DATABASE_URL %q is not SQLite", env["HOOKD_DATABASE_URL"])
			}
			c := ss.Spec.Template.Spec.Containers[0]
			var onVolume bool
			for _, m := range c.VolumeMounts {
				for _, v := range ss.Spec.VolumeClaimTemplates {
					onVolume = onVolume || m.Name == v.Metadata.Name && strings.HasPrefix(path, m.MountPath+"/")
				}
			}
			if !onVolume {
				t.Errorf("the database %s is not on a persistent volume", path)
			}
			if objects["PodDisruptionBudget"].Kind != "" {
				t.Error("a PodDisruptionBudget on a single replica would block every node drain")
			}
		}},
		{"postgres", "Deployment", map[string]string{"database-url": "postgres://hookd@db:5432/hookd", "encryption-key": testEncryptionKey},
			func(t *testing.T, objects map[string]k8sObject, env map[string]string) {
				d := objects["Deployment"]
				if n := replicas(d); n < 2 {
					t.Errorf("replicas %d, want several", n)
				}
				for _, name := range []string{"HOOKD_DATABASE_URL", "HOOKD_ENCRYPTION_KEY"} {
					if !fromSecret(d, name) {
						t.Errorf("%s is not read from a Secret", name)
					}
				}
				pdb := objects["PodDisruptionBudget"]
				if pdb.Kind == "" || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) || pdb.Spec.MaxUnavailable != 1 {
					t.Errorf("PodDisruptionBudget %+v does not keep all but one pod", pdb.Spec)
				}
			}},
	}
	for _, v := range variants {
		t.Run(v.dir, func(t *testing.T) {
			objects := readManifests(t, filepath.Join("../../deploy/kubernetes", v.dir))
			w, ok := objects[v.workload]
			if !ok {
				t.Fatalf("no %s in %s", v.workload, v.dir)
			}
			pod := w.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			c := pod.Containers[0]
			if !pod.SecurityContext.RunAsNonRoot {
				t.Error("the pod may run as root")
			}
			if !selects(w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) {
				t.Errorf("the %s's selector does not select its own pods", v.workload)
			}

			// The environment: names hookd reads, values it accepts.
			env := map[string]string{}
			for _, e := range c.Env {
				if !knownVariable(e.Name) {
					t.Errorf("%s is not a variable hookd reads", e.Name)
				}
				env[e.Name] = e.Value
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					env[e.Name] = v.secrets[e.ValueFrom.SecretKeyRef.Key]
				}
			}
			cfg, err := loadConfig(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("hookd would refuse this environment: %v", err)
			}

			// The port hookd listens on is the container's, the probes' and
			// the Service's.
			_, port, err := net.SplitHostPort(cfg.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Ports) != 1 || strconv.Itoa(c.Ports[0].ContainerPort) != port {
				t.Fatalf("container ports %+v, hookd listens on %s", c.Ports, port)
			}
			portName := c.Ports[0].Name
			probes := map[string]*k8sProbe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe}
			for path, p := range probes {
				if p == nil || p.HTTPGet.Path != path || p.HTTPGet.Port != portName {
					t.Errorf("probe %+v, want GET %s on port %s", p, path, portName)
				}
			}
			// Without a startup probe the liveness probe starts at once, and a
			// pod still migrating (not listening yet) is killed after its
			// window, its migration rolled back, again and again.
			if p := c.StartupProbe; p == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != portName || p.probeWindow() < startupAllowance {
				t.Errorf("startup probe %+v: want GET /healthz on port %s, failing for %v at least before the liveness probe starts",
					p, portName, startupAllowance)
			}
			// The kubelet gives up on a probe after timeoutSeconds (1 when
			// unset): no longer than /readyz's own wait for the database, a
			// database answering within that wait fails the probe while
			// hookd would have answered 200.
			if p := c.ReadinessProbe; p != nil {
				if wait := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second; wait <= api.ReadyzTimeout {
					t.Errorf("the readiness probe's timeoutSeconds gives /readyz %v; it waits up to %v for the database", wait, api.ReadyzTimeout)
				}
			}
			svc := objects["Service"]
			if len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].TargetPort != portName ||
				!selects(serviceSelector(t, filepath.Join("../../deploy/kubernetes", v.dir)), w.Spec.Template.Metadata.Labels) {
				t.Errorf("the Service %+v does not reach the pods' %s port", svc.Spec, portName)
			}

			// Kubernetes sends SIGTERM after preStop, and SIGKILL at the end
			// of the grace: hookd needs its whole stop in between.
			stop := time.Duration(pod.TerminationGracePeriodSeconds-c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			if stop < hookdStop {
				t.Errorf("terminationGracePeriodSeconds %d minus preStop %ds leaves hookd %v to stop; it takes up to %v",
					pod.TerminationGracePeriodSeconds, c.Lifecycle.PreStop.Sleep.Seconds, stop, hookdStop)
			}
			v.check(t, objects, env)
		})
	}
}

// serviceSelector reads a Service's spec.selector, which (unlike a
// workload's) is a plain map.
func serviceSelector(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var svc struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &svc); err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector
}

// replicas is a workload's replica count; Kubernetes' default is 1.
func replicas(o k8sObject) int {
	if o.Spec.Replicas == nil {
		return 1
	}
	return *o.Spec.Replicas
}

func fromSecret(o k8sObject, name string) bool {
	for _, e := range o.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != ""
		}
	}
	return false
}

// selects reports whether a selector's labels are all among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// knownVariable reports whether hookd reads name (the configuration
// table, or OpenTelemetry's own variables, which its exporter reads).
func knownVariable(name string) bool {
	if strings.HasPrefix(name, "OTEL_") {
		return true
	}
	for _, v := range variables {
		if v.name == name || v.name+"_FILE" == name && slices.Contains(fileVariables, v.name) {
			return true
		}
	}
	return false
}

// TestSystemdUnit checks the .deb's unit and env file against the binary.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/debian/hookd.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)s$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("the unit sets no TimeoutStopSec=Ns")
	}
	if n, _ := strconv.Atoi(string(m[1])); time.Duration(n)*time.Second < hookdStop {
		t.Errorf("TimeoutStopSec=%ss: hookd takes up to %v to stop", m[1], hookdStop)
	}
	env := map[string]string{}
	for _, line := range regexp.MustCompile(`(?m)^Environment=(\S+)$`).FindAllSubmatch(unit, -1) {
		k, v, _ := strings.Cut(string(line[1]), "=")
		env[k] = v
	}
	envFile, err := os.ReadFile("../../deploy/debian/hookd.env")
	if err != nil {
		t.Fatal(err)
	}
	// Every line, commented out or not, must work once uncommented.
	sc := bufio.NewScanner(bytes.NewReader(envFile))
	assignment := regexp.MustCompile(`^#?([A-Z][A-Z0-9_]*)=(.*)$`)
	n := 0
	for sc.Scan() {
		m := assignment.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n++
		if !knownVariable(m[1]) {
			t.Errorf("hookd.env sets %s, which hookd does not read", m[1])
		}
		if m[2] != "" {
			env[m[1]] = m[2]
		}
	}
	if n == 0 {
		t.Fatal("hookd.env names no variable")
	}
	if _, err := loadConfig(func(k string) string { return env[k] }); err != nil {
		t.Errorf("hookd would refuse the unit's environment with hookd.env uncommented: %v", err)
	}
}

// TestDockerfileEnvironment checks the Dockerfile's ENV against the binary
// (cmd/release's test checks it promises the image cmd/release builds).
func TestDockerfileEnvironment(t *testing.T) {
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (\w+)=(\S+)$`).FindAllSubmatch(df, -1) {
		name := string(m[1])
		if name != "SSL_CERT_FILE" && !knownVariable(name) {
			t.Errorf("the Dockerfile sets %s, which hookd does not read", name)
		}
		env[name] = string(m[2])
	}
	if _, err := loadConfig(func(k string) string { return env[k] }); err != nil || env["HOOKD_DATABASE_URL"] == "" {
		t.Errorf("the image's environment %v: %v", env, err)
	}
}

// TestDockerRunStopTimeout checks the README's `docker run` gives hookd
// its stop: `docker stop` sends SIGKILL after 10 s unless the container
// was run with --stop-timeout, and an image cannot ask for more.
func TestDockerRunStopTimeout(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	runs := regexp.MustCompile(`(?m)^docker run .*$`).FindAll(readme, -1)
	if len(runs) == 0 {
		t.Fatal("the README has no `docker run` line")
	}
	for _, run := range runs {
		stop := 10 * time.Second // Docker's default
		if m := regexp.MustCompile(`--stop-timeout[ =](\d+)`).FindSubmatch(run); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			stop = time.Duration(n) * time.Second
		}
		if stop < hookdStop {
			t.Errorf("%q gives hookd %v to stop before SIGKILL; it takes up to %v", run, stop, hookdStop)
		}
	}
}

// alertingRule is one rule of deploy/prometheus/hookd-rules.yaml.
type alertingRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

// alertingRules reads the shipped Prometheus rules, every group's.
func alertingRules(t *testing.T) []alertingRule {
	t.Helper()
	data, err := os.ReadFile("../../deploy/prometheus/hookd-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []alertingRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	var rules []alertingRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestDeliveriesFailingAlertCanFire checks HookdDeliveriesFailing against
// what the dispatcher counts: a delivery that fails for good has made one
// "retry" attempt per delay of the schedule after the first and then one
// "failed", so with every target down the rule's ratio must pass its
// threshold, or the alert never fires when it matters most.
func TestDeliveriesFailingAlertCanFire(t *testing.T) {
	var expr string
	for _, r := range alertingRules(t) {
		if r.Alert == "HookdDeliveriesFailing" {
			expr = strings.Join(strings.Fields(r.Expr), " ")
		}
	}
	// sum(rate(hookd_delivery_attempts_total{NUM}[w])) / sum(rate(hookd_delivery_attempts_total{DEN}[w])) > T
	m := regexp.MustCompile(`^sum\(rate\(hookd_delivery_attempts_total(\{[^}]*\})?\[\w+\]\)\) / sum\(rate\(hookd_delivery_attempts_total(\{[^}]*\})?\[\w+\]\)\) > ([0-9.]+)$`).FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("HookdDeliveriesFailing's expression %q is not a ratio of attempt outcomes this test can evaluate", expr)
	}
	schedule, err := webhook.ParseSchedule(webhook.DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	// Every target down: per delivery, len-1 retries and one failure.
	perDelivery := map[string]float64{"succeeded": 0, "retry": float64(len(schedule) - 1), "failed": 1}
	sum := func(selector string) float64 {
		n := 0.0
		for outcome, c := range perDelivery {
			if selector == "" {
				n += c
				continue
			}
			sm := regexp.MustCompile(`^\{outcome(=~?)"([^"]*)"\}$`).FindStringSubmatch(selector)
			if sm == nil {
				t.Fatalf("selector %s: only one outcome matcher is understood here", selector)
			}
			if sm[1] == "=" && sm[2] == outcome || sm[1] == "=~" && regexp.MustCompile("^(?:"+sm[2]+")$").MatchString(outcome) {
				n += c
			}
		}
		return n
	}
	threshold, _ := strconv.ParseFloat(m[3], 64)
	if ratio := sum(m[1]) / sum(m[2]); ratio <= threshold {
		t.Errorf("with every target down the rule's ratio is %.3f, never above its threshold %v: HookdDeliveriesFailing cannot fire", ratio, threshold)
	}
}
