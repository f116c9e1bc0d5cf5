package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ListAcks is where a negative list stands with its receivers.
type ListAcks struct {
	Owner, Kind string
	// Version is the newest version published.
	Version uint64
	// Oldest is the oldest version some receiver has not acknowledged (0:
	// every receiver acknowledged the newest) and Since its issue time;
	// Behind counts the receivers that have not acknowledged the newest.
	Oldest uint64
	Since  time.Time
	Behind int
}

// WithLists adds, per negative list (labels owner and kind, operator ids
// and kind names), samd_list_version, samd_list_oldest_unacknowledged_version
// (0 when every receiver acknowledged the newest),
// samd_list_unacknowledged_seconds (since that version was issued; 0
// when none) and samd_list_unacknowledged_receivers, read from list at
// every scrape: alert when the seconds pass what the scheme allows a
// receiver to take.
func (m *Metrics) WithLists(list func() ([]ListAcks, error)) {
	m.reg.MustRegister(&listCollector{list: list})
}

type listCollector struct{ list func() ([]ListAcks, error) }

var (
	listLabels        = []string{"owner", "kind"}
	listVersionDesc   = prometheus.NewDesc("samd_list_version", "Newest published version of the negative list.", listLabels, nil)
	listOldestDesc    = prometheus.NewDesc("samd_list_oldest_unacknowledged_version", "Oldest version of the list some receiver has not acknowledged; 0 when all acknowledged the newest.", listLabels, nil)
	listSecondsDesc   = prometheus.NewDesc("samd_list_unacknowledged_seconds", "Time since the oldest version some receiver has not acknowledged was issued; 0 when none.", listLabels, nil)
	listReceiversDesc = prometheus.NewDesc("samd_list_unacknowledged_receivers", "Receivers that have not acknowledged the newest version.", listLabels, nil)
)

func (c *listCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- listVersionDesc
	ch <- listOldestDesc
	ch <- listSecondsDesc
	ch <- listReceiversDesc
}

func (c *listCollector) Collect(ch chan<- prometheus.Metric) {
	ls, err := c.list()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(listVersionDesc, err)
		return
	}
	now := time.Now()
	for _, l := range ls {
		var age float64
		if l.Oldest != 0 {
			age = now.Sub(l.Since).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(listVersionDesc, prometheus.GaugeValue, float64(l.Version), l.Owner, l.Kind)
		ch <- prometheus.MustNewConstMetric(listOldestDesc, prometheus.GaugeValue, float64(l.Oldest), l.Owner, l.Kind)
		ch <- prometheus.MustNewConstMetric(listSecondsDesc, prometheus.GaugeValue, age, l.Owner, l.Kind)
		ch <- prometheus.MustNewConstMetric(listReceiversDesc, prometheus.GaugeValue, float64(l.Behind), l.Owner, l.Kind)
	}
}
