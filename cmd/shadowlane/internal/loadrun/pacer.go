package loadrun

import (
	"math"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// stagePacer is the scenario's open arrival-rate model as a vegeta.Pacer
// for vegeta's attacker: a hold is vegeta's own ConstantPacer, shifted to
// the stage's start; a ramp is paced here by solving for the time of the
// next hit on the ramp's integral (vegeta's LinearPacer waits one interval
// at the current rate, which at the start of a ramp from 0 is longer than
// the whole ramp). The hits of the earlier stages are what their rates
// integrate to. scale divides every rate (--part i/n).
type stagePacer struct {
	stages []pacedStage
	end    time.Duration
}

type pacedStage struct {
	start  time.Duration
	length time.Duration
	before float64 // hits expected before the stage
	r0, r1 float64 // rate at its start and end, per second
	hold   vegeta.Pacer
}

func newStagePacer(stages []Stage, scale float64) *stagePacer {
	p := &stagePacer{}
	prev := 0.0
	var at time.Duration
	hits := 0.0
	for _, st := range stages {
		ps := pacedStage{start: at, length: st.Duration, before: hits, r0: prev / scale, r1: st.Rate / scale}
		if ps.r0 == ps.r1 && ps.r0 > 0 {
			ps.hold = constantPacer(ps.r0)
		}
		p.stages = append(p.stages, ps)
		hits += (ps.r0 + ps.r1) / 2 * st.Duration.Seconds()
		at += st.Duration
		prev = st.Rate
	}
	p.end = at
	return p
}

// constantPacer is r hits per second as a vegeta ConstantPacer, which
// takes an integer frequency: a fractional rate is given per 1000s.
func constantPacer(r float64) vegeta.ConstantPacer {
	if r == math.Trunc(r) && r >= 1 {
		return vegeta.ConstantPacer{Freq: int(r), Per: time.Second}
	}
	return vegeta.ConstantPacer{Freq: max(1, int(math.Round(r*1000))), Per: 1000 * time.Second}
}

func (p *stagePacer) stage(elapsed time.Duration) int {
	i := len(p.stages) - 1
	for i > 0 && elapsed < p.stages[i].start {
		i--
	}
	return i
}

// Pace implements vegeta.Pacer: the wait until the next hit is due, or
// stop when no hit is due any more (the attacker sends one hit after every
// wait, so a wait must always lead to a due hit).
func (p *stagePacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if elapsed >= p.end {
		return 0, true
	}
	for i := p.stage(elapsed); i < len(p.stages); i++ {
		s := &p.stages[i]
		if float64(hits) < math.Floor(s.before) {
			return 0, false // behind from an earlier stage: catch up now
		}
		n := float64(hits) - s.before // hits of this stage so far
		rel := max(0, elapsed-s.start)
		var at time.Duration // when, from the stage's start, hit n+1 is due
		ok := true
		switch {
		case s.hold != nil:
			wait, stop := s.hold.Pace(rel, uint64(math.Round(n)))
			if stop {
				return 0, true
			}
			at = rel + wait
		case s.r0 == 0 && s.r1 == 0:
			ok = false // a pause
		default:
			at, ok = s.due(n + 1)
		}
		if ok && at < s.length {
			return max(0, s.start+at-elapsed), false
		}
	}
	return 0, true
}

// due is when (from the stage's start) the ramp's integral reaches n
// hits: r0*t + k*t^2/2 = n with k the slope; false when it never does
// within the stage.
func (s *pacedStage) due(n float64) (time.Duration, bool) {
	d := s.length.Seconds()
	k := (s.r1 - s.r0) / d
	var t float64
	if math.Abs(k) < 1e-12 {
		if s.r0 <= 0 {
			return 0, false
		}
		t = n / s.r0
	} else {
		disc := s.r0*s.r0 + 2*k*n
		if disc < 0 {
			return 0, false
		}
		t = (-s.r0 + math.Sqrt(disc)) / k
	}
	if t < 0 || t > d {
		return 0, false
	}
	return time.Duration(t * 1e9), true
}

// Rate implements vegeta.Pacer.
func (p *stagePacer) Rate(elapsed time.Duration) float64 {
	if elapsed >= p.end || len(p.stages) == 0 || elapsed < 0 {
		return 0
	}
	s := &p.stages[p.stage(elapsed)]
	return s.r0 + (s.r1-s.r0)*(elapsed-s.start).Seconds()/s.length.Seconds()
}

// Expected is the number of hits the stages ask for up to elapsed.
func (p *stagePacer) Expected(elapsed time.Duration) float64 {
	if elapsed <= 0 || len(p.stages) == 0 {
		return 0
	}
	elapsed = min(elapsed, p.end)
	s := &p.stages[p.stage(elapsed)]
	t := (elapsed - s.start).Seconds()
	return s.before + s.r0*t + (s.r1-s.r0)/s.length.Seconds()*t*t/2
}
