package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a whole run: where it ran, how, and each scenario's figures.
type Report struct {
	Machine Machine   `json:"machine"`
	Config  RunConfig `json:"config"`
	Started time.Time `json:"started"`
	Results []Result  `json:"results"`
}

// Machine is what the figures depend on besides hookd.
type Machine struct {
	CPUs        int      `json:"cpus"`
	CPUModel    string   `json:"cpu_model,omitempty"`
	MemoryBytes int64    `json:"memory_bytes,omitempty"`
	GoVersion   string   `json:"go_version"`
	OS          string   `json:"os"`
	Kernel      string   `json:"kernel,omitempty"`
	Hookd       string   `json:"hookd"`
	Backend     string   `json:"backend"`
	Environment []string `json:"environment,omitempty"` // HOOKD_* settings passed through
}

// RunConfig is the Config a report was made with, for reproducing it.
type RunConfig struct {
	Scenarios   []string      `json:"scenarios"`
	Events      int           `json:"events"`
	Concurrency int           `json:"concurrency"`
	Rate        float64       `json:"rate"`
	Duration    time.Duration `json:"duration_ns"`
	Fanout      int           `json:"fanout"`
	Backlog     int           `json:"backlog"`
	// Nodes is how many hookd processes shared each scenario's database;
	// absent, one. Their peak RSS and CPU are added up in the results.
	Nodes    int    `json:"nodes,omitempty"`
	External string `json:"external_url,omitempty"`
	// Callgrind says hookd ran under valgrind's callgrind, which counted
	// its instructions.
	Callgrind bool `json:"callgrind,omitempty"`
}

func reportConfig(c Config) RunConfig {
	return RunConfig{Scenarios: c.Scenarios, Events: c.Events, Concurrency: c.Concurrency, Rate: c.Rate,
		Duration: c.Duration, Fanout: c.Fanout, Backlog: c.Backlog, Nodes: nodes(c.Nodes), External: c.URL, Callgrind: c.Callgrind != ""}
}

// nodes is n when it is several; one node is the default and not shown,
// so single-node reports read as they always have.
func nodes(n int) int {
	if n > 1 {
		return n
	}
	return 0
}

func describeMachine(c Config) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Hookd: c.Version, Backend: c.Backend}
	if c.external() {
		m.Backend = "external hookd at " + c.URL
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryBytes = kbField(b, "MemTotal:")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(value)
				break
			}
		}
	}
	for _, kv := range c.Environ {
		if strings.HasPrefix(kv, "HOOKD_") && !strings.HasPrefix(kv, "HOOKD_TEST_") {
			m.Environment = append(m.Environment, kv)
		}
	}
	return m
}

// ratios relates every rate to raw's, the machine's ceiling.
func (rep *Report) ratios() {
	var raw float64
	for _, r := range rep.Results {
		if r.Scenario == "raw" {
			raw = r.DeliveryRate
		}
	}
	if raw == 0 {
		return
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		r.RawRatio = r.DeliveryRate / raw
		r.IntakeRawRatio = r.IntakeRate / raw
	}
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the machine, one line per scenario, and the notes.
func (rep *Report) WriteTable(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs", m.CPUs)
	if m.CPUModel != "" {
		fmt.Fprintf(w, " (%s)", m.CPUModel)
	}
	if m.MemoryBytes > 0 {
		fmt.Fprintf(w, ", %s memory", bytesIEC(m.MemoryBytes))
	}
	fmt.Fprintf(w, ", %s", m.OS)
	if m.Kernel != "" {
		fmt.Fprintf(w, " %s", m.Kernel)
	}
	hookd := m.Hookd
	if !strings.Contains(hookd, m.GoVersion) {
		hookd += ", " + m.GoVersion
	}
	fmt.Fprintf(w, "\nhookd:   %s; backend %s", hookd, m.Backend)
	if n := rep.Config.Nodes; n > 1 {
		summed := "peakRSS and cpu-s/1k are their sums"
		if rep.Config.Callgrind {
			summed = "instructions are their sums"
		}
		fmt.Fprintf(w, ", %d nodes (intake requests take turns; %s)", n, summed)
	}
	fmt.Fprintln(w)
	if len(m.Environment) > 0 {
		fmt.Fprintf(w, "env:     %s\n", strings.Join(m.Environment, " "))
	}
	c := rep.Config
	fmt.Fprintf(w, "load:    events %d, concurrency %d, rate %g/s for %v, fanout %d, backlog %d\n\n", c.Events, c.Concurrency, c.Rate, c.Duration, c.Fanout, c.Backlog)

	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	head := "scenario\tevents\tdeliveries\tintake/s\tdeliv/s\t×raw\tp50\tp95\tp99\tmax\tlost\tdup\tpeakRSS\tcpu-s/1k\tbench-cpu/1k\t"
	if c.Callgrind {
		head += "instr/delivery\t"
	}
	fmt.Fprintln(tw, head)
	var notes []string
	for _, r := range rep.Results {
		switch {
		case r.Skipped != "":
			notes = append(notes, r.Scenario+": skipped: "+r.Skipped)
			fmt.Fprintf(tw, "%s\t%s\t\n", r.Scenario, "skipped")
			continue
		case r.Error != "":
			notes = append(notes, r.Scenario+": error: "+r.Error)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t",
			r.Scenario, r.Events, r.Deliveries, rate(r.IntakeRate), rate(r.DeliveryRate), ratio(r.RawRatio),
			dur(r.Latency.P50, r.Latency.N), dur(r.Latency.P95, r.Latency.N), dur(r.Latency.P99, r.Latency.N), dur(r.Latency.Max, r.Latency.N),
			r.Lost, r.Duplicates, bytesOrDash(r.PeakRSS), cpu(r.CPUPer1k), cpu(r.BenchCPUPer1k))
		if c.Callgrind {
			fmt.Fprintf(tw, "%s\t", count(r.InstructionsPerDelivery))
		}
		fmt.Fprintln(tw)
		if r.IdleRSS > 0 {
			notes = append(notes, fmt.Sprintf("%s: idle RSS of a fresh hookd after 1s: %s", r.Scenario, bytesIEC(r.IdleRSS)))
		}
		if r.IntakeLatency.N > 0 && r.Scenario != "raw" {
			notes = append(notes, fmt.Sprintf("%s: intake answered in p50 %s, p99 %s", r.Scenario, dur(r.IntakeLatency.P50, 1), dur(r.IntakeLatency.P99, 1)))
		}
		if r.HookdLogLines > 0 {
			notes = append(notes, fmt.Sprintf("%s: hookd logged %d lines at warn or above", r.Scenario, r.HookdLogLines))
		}
		notes = append(notes, r.Notes...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
	return nil
}

func rate(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// count prints a count of instructions to three significant digits or so.
func count(n int64) string {
	switch { // by what the figure rounds to
	case n == 0:
		return "-"
	case n >= 9_995_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 999_500:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	default:
		return strconv.FormatInt(n, 10)
	}
}

func cpu(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// dur prints a latency with three significant digits or so.
func dur(d time.Duration, n int) string {
	switch {
	case n == 0:
		return "-"
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

func bytesOrDash(n int64) string {
	if n == 0 {
		return "-"
	}
	return bytesIEC(n)
}

func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0fKiB", float64(n)/(1<<10))
	}
}
