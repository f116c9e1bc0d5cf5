package console

import (
	"net/http"
	"strconv"
	"time"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// The chart's drawing area, in SVG user units.
const (
	chartW, chartH = 720, 180
	chartLeft      = 56 // room for the axis labels
	chartTop       = 14
	chartBottom    = 24
)

// bar is one minute of the chart.
type bar struct {
	X, W            float64
	CallY, CallH    float64
	ErrorY, ErrorH  float64
	Start           string
	Calls, Errors   uint64
	Denied          uint64
	PerSecond       string
	ErrorsPerSecond string
}

// tick is a label on the chart's vertical axis.
type tick struct {
	Y     float64
	Label string
}

// chart is the last hour's requests as the health page draws them: one
// bar per minute, calls per second, with the errors over them.
type chart struct {
	W, H, Left, Bottom float64
	Bars               []bar
	Ticks              []tick
	Calls, Errors      uint64
	Denied             uint64
	Peak               string
}

func perSecond(n uint64) string { return strconv.FormatFloat(float64(n)/60, 'f', 2, 64) }

// newChart scales the minutes to the drawing: the vertical axis goes to
// the busiest minute's calls (at least one a minute), in calls per second.
func newChart(minutes []*samdv1.MinuteCount) chart {
	ch := chart{W: chartW, H: chartH, Left: chartLeft, Bottom: chartBottom}
	var peak uint64 = 1
	for _, m := range minutes {
		peak = max(peak, m.GetCalls())
		ch.Calls, ch.Errors, ch.Denied = ch.Calls+m.GetCalls(), ch.Errors+m.GetErrors(), ch.Denied+m.GetDenied()
	}
	plotW, plotH := float64(chartW-chartLeft), float64(chartH-chartTop-chartBottom)
	step := plotW / float64(max(len(minutes), 1))
	scale := func(n uint64) float64 { return plotH * float64(n) / float64(peak) }
	for i, m := range minutes {
		x := chartLeft + float64(i)*step
		b := bar{X: x + 1, W: max(step-2, 1), CallH: scale(m.GetCalls()), ErrorH: scale(m.GetErrors()), Calls: m.GetCalls(), Errors: m.GetErrors(),
			Denied: m.GetDenied(), PerSecond: perSecond(m.GetCalls()), ErrorsPerSecond: perSecond(m.GetErrors())}
		b.CallY, b.ErrorY = chartTop+plotH-b.CallH, chartTop+plotH-b.ErrorH
		if t, err := time.Parse(time.RFC3339, m.GetStart()); err == nil {
			b.Start = t.UTC().Format("15:04")
		}
		ch.Bars = append(ch.Bars, b)
	}
	for _, f := range []float64{0, 0.5, 1} {
		ch.Ticks = append(ch.Ticks, tick{Y: chartTop + plotH - f*plotH, Label: strconv.FormatFloat(f*float64(peak)/60, 'f', 2, 64) + "/s"})
	}
	ch.Peak = perSecond(peak)
	return ch
}

type healthData struct {
	Uptime string
	Chart  chart
}

// health shows samd's state at a glance: readiness and the token's
// sessions, the policy in force, and the last hour's calls and errors
// per minute (the status every page reads first).
func (c *Console) health(_ *http.Request, v *view) error {
	d := &healthData{Chart: newChart(v.Status.GetMinutes())}
	if t, err := time.Parse(time.RFC3339, v.Status.GetStarted()); err == nil {
		d.Uptime = v.Now.Sub(t).Round(time.Second).String()
	}
	v.Data = d
	return nil
}
