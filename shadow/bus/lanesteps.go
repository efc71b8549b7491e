package bus

import "context"

// Broker is what the lane steps of a partitioned-log consumer ask the
// broker; both calls may wait on it.
type Broker interface {
	// Floor returns env's lane floor on p: the offset its lane group
	// committed (see [Skips.Floor]), after the lane left its group.
	Floor(ctx context.Context, env string, p Partition) (int64, error)
	// TrunkSkipped reports, from the trunk group's commits, whether the
	// trunk skipped the record at off of p for env's lane (see
	// [TrunkDecision]).
	TrunkSkipped(ctx context.Context, env string, p Partition, off int64) (bool, error)
}

// LaneSteps are the steps a consumer of a partitioned log (Kafka, through
// franz-go or sarama) takes on a record between the consume rule's lane
// steps and its kill-switch step. Fields a consumer does not have stay
// nil.
type LaneSteps struct {
	// Skips is a trunk's hand-over ledger: the records it skips for a live
	// lane are noted, and an env it takes again is closed ([Skips.Left]);
	// with lanes configured, a record below the env's lane floor is passed
	// over (the lane handled it).
	Skips *Skips
	// Window is a lane instance's start window: while it is open on a
	// partition, a record the trunk handled before it saw the lane is
	// passed over.
	Window *StartWindow
	// Broker answers the floor and start-window questions.
	Broker Broker
	// Counts counts what the steps passed over.
	Counts *Counters
}

// ConsumeRecord is [Rules.Consume] for the record at off of partition p
// of a partitioned log, with the lane steps s run before the kill-switch
// step: the steps may wait on the broker, and the switch is read once,
// after them, so that a load-test record is never handled after the
// switch went off while they waited. An error is a step's (the broker
// did not answer); the record is then neither handled nor committed. A
// nil s takes no lane steps ([Rules.Consume]).
func (r *Rules) ConsumeRecord(ctx context.Context, consumer string, p Partition, off int64, d *Decoder, s *LaneSteps) (Decision, error) {
	if s == nil {
		return r.Consume(consumer, p.Topic, d), nil
	}
	dec := r.consume(consumer, p.Topic, d)
	if s.Skips != nil && dec.Mark.Env != "" {
		switch dec.Action {
		case Skip:
			s.Skips.Skip(dec.Mark.Env, p, off) // its lane is live
		case Handle:
			s.Skips.Left(dec.Mark.Env) // the trunk takes the env again
			if r.c.Lanes != nil {
				at, err := s.Broker.Floor(ctx, dec.Mark.Env, p)
				if err != nil {
					return dec, err
				}
				if off < at {
					// The lane handled it (a redelivery after its env
					// left): pass it over.
					s.Counts.FloorSkipped(1)
					dec.Action = Skip
				}
			}
		}
	}
	if s.Window != nil && dec.Action == Handle && s.Window.IsOpen(p) {
		skipped, err := s.Broker.TrunkSkipped(ctx, dec.Mark.Env, p, off)
		if err != nil {
			return dec, err
		}
		if skipped {
			s.Window.Close(p) // the trunk skips from here on
		} else {
			s.Counts.StartSkipped(1) // the trunk handled it
			dec.Action = Skip
		}
	}
	if dec.Action == Handle && dec.Mark.Run != "" { // production work never reads the switch
		r.killSwitch(p.Topic, &dec)
	}
	return dec, nil
}
