// Package metrics exposes samd's Prometheus metrics and its liveness and
// readiness endpoints on a listener of their own, apart from the mTLS
// listener.
//
// Metrics carry method names, outcome codes, rule names and operation
// names: never key material, inputs or identities beyond the role — but
// for the ids that name what a gauge measures, which are not secret: a
// device's allowance, a CA's CRL, a key's validity, a negative list's
// owner (lists.go).
package metrics

import (
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds samd's collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	denials  *prometheus.CounterVec
	hsm      *prometheus.HistogramVec
	hsmErr   *prometheus.CounterVec
}

// New registers samd's collectors, the Go runtime's and the process's.
// poolInUse and ready are sampled at scrape time.
func New(poolInUse func() float64, poolSize func() float64, ready func() error) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samd_requests_total", Help: "Requests by full method name and outcome code (ok or the stable error code).",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "samd_request_duration_seconds", Help: "Request latency by method, from the first byte to the audit record.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samd_policy_denials_total", Help: "Requests refused by the method table or the policy, by rule.",
		}, []string{"rule"}),
		hsm: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "samd_hsm_call_duration_seconds", Help: "PKCS#11 call latency by operation.",
			Buckets: []float64{.00002, .00005, .0001, .0002, .0005, .001, .002, .005, .01, .05, .25, 1, 2},
		}, []string{"op"}),
		hsmErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samd_hsm_call_errors_total", Help: "PKCS#11 calls that failed, by operation.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.requests, m.latency, m.denials, m.hsm, m.hsmErr,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samd_hsm_sessions_in_use", Help: "Pool sessions lent out now."}, poolInUse),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samd_hsm_sessions", Help: "Size of the HSM session pool."}, poolSize),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samd_ready", Help: "1 when the HSM is connected and samd serves."}, func() float64 {
			if ready() == nil {
				return 1
			}
			return 0
		}))
	return m
}

// Balance is one device's allowance, for the allowance gauge.
type Balance struct {
	Device, Currency string
	Minor            int64
}

// WithAllowances adds samd_allowance_balance{device,currency}, read from
// list at every scrape.
func (m *Metrics) WithAllowances(list func() ([]Balance, error)) {
	m.reg.MustRegister(&allowanceCollector{list: list})
}

type allowanceCollector struct {
	list func() ([]Balance, error)
}

var allowanceDesc = prometheus.NewDesc("samd_allowance_balance",
	"What each device may still authorise, in minor units of its currency.", []string{"device", "currency"}, nil)

func (c *allowanceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- allowanceDesc }

func (c *allowanceCollector) Collect(ch chan<- prometheus.Metric) {
	bs, err := c.list()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(allowanceDesc, err)
		return
	}
	for _, b := range bs {
		ch <- prometheus.MustNewConstMetric(allowanceDesc, prometheus.GaugeValue, float64(b.Minor), b.Device, b.Currency)
	}
}

// WithCRLs adds samd_crl_age_seconds (since the oldest thisUpdate of the
// client CRLs in force) and samd_crl_next_update_seconds (until the
// earliest nextUpdate; negative once a CRL has expired and its clients
// are refused), read from fresh at every scrape; without CRLs (ok false)
// neither is exported.
func (m *Metrics) WithCRLs(fresh func() (thisUpdate, nextUpdate time.Time, ok bool)) {
	m.reg.MustRegister(&crlCollector{fresh: fresh})
}

type crlCollector struct {
	fresh func() (time.Time, time.Time, bool)
}

var (
	crlAgeDesc  = prometheus.NewDesc("samd_crl_age_seconds", "Age of the oldest client CRL in force (now minus its thisUpdate).", nil, nil)
	crlNextDesc = prometheus.NewDesc("samd_crl_next_update_seconds", "Time until the earliest nextUpdate of the client CRLs in force; negative when expired.", nil, nil)
)

func (c *crlCollector) Describe(ch chan<- *prometheus.Desc) { ch <- crlAgeDesc; ch <- crlNextDesc }

func (c *crlCollector) Collect(ch chan<- prometheus.Metric) {
	this, next, ok := c.fresh()
	if !ok {
		return
	}
	now := time.Now()
	ch <- prometheus.MustNewConstMetric(crlAgeDesc, prometheus.GaugeValue, now.Sub(this).Seconds())
	ch <- prometheus.MustNewConstMetric(crlNextDesc, prometheus.GaugeValue, next.Sub(now).Seconds())
}

// PublishedCRL is the current CRL of a CA samd runs.
type PublishedCRL struct {
	CA         string
	Number     int64
	NextUpdate time.Time
}

// WithPublishedCRLs adds samd_pki_crl_number{ca} and
// samd_pki_crl_next_update_seconds{ca} for the CRLs samd issues: alert
// when the time to nextUpdate falls below the renewal margin (the
// publisher is failing) long before relying parties refuse.
func (m *Metrics) WithPublishedCRLs(list func() []PublishedCRL) {
	m.reg.MustRegister(&publishedCollector{list: list})
}

type publishedCollector struct{ list func() []PublishedCRL }

var (
	pubNumberDesc = prometheus.NewDesc("samd_pki_crl_number", "Number of the CA's current CRL (complete or delta).", []string{"ca"}, nil)
	pubNextDesc   = prometheus.NewDesc("samd_pki_crl_next_update_seconds", "Time until the nextUpdate of the CA's current complete CRL.", []string{"ca"}, nil)
)

func (c *publishedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pubNumberDesc
	ch <- pubNextDesc
}

func (c *publishedCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, p := range c.list() {
		ch <- prometheus.MustNewConstMetric(pubNumberDesc, prometheus.GaugeValue, float64(p.Number), p.CA)
		ch <- prometheus.MustNewConstMetric(pubNextDesc, prometheus.GaugeValue, p.NextUpdate.Sub(now).Seconds(), p.CA)
	}
}

// KeyValidity is when a key version's validity (its policy entry's
// valid_until) ends.
type KeyValidity struct {
	Key   string
	Until time.Time
}

// WithKeyValidity adds samd_key_valid_until_seconds{key}: the time left
// before each key version with a validity window is refused, so that the
// rollover is done before then (alert when it falls below a few weeks).
func (m *Metrics) WithKeyValidity(list func() []KeyValidity) {
	m.reg.MustRegister(&keyValidityCollector{list: list})
}

type keyValidityCollector struct{ list func() []KeyValidity }

var keyValidityDesc = prometheus.NewDesc("samd_key_valid_until_seconds", "Time until a key version's validity window (its policy key entry's valid_until) ends; negative once refused.", []string{"key"}, nil)

func (c *keyValidityCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keyValidityDesc }

func (c *keyValidityCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, k := range c.list() {
		ch <- prometheus.MustNewConstMetric(keyValidityDesc, prometheus.GaugeValue, k.Until.Sub(now).Seconds(), k.Key)
	}
}

// Request records a finished request.
func (m *Metrics) Request(method, code string, d time.Duration) {
	if code == "" {
		code = "ok"
	}
	m.requests.WithLabelValues(method, code).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}

// Denial records a refusal by rule.
func (m *Metrics) Denial(rule string) { m.denials.WithLabelValues(rule).Inc() }

// HSMCall records one PKCS#11 operation.
func (m *Metrics) HSMCall(op string, d time.Duration, err error) {
	m.hsm.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.hsmErr.WithLabelValues(op).Inc()
	}
}

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (the HSM is connected).
func (m *Metrics) Handler(ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: HSM unavailable\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Serve serves the handler on ln until it fails or is closed.
func Serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return srv
}
