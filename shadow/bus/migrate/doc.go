// Package migrate moves message traffic from one bus to another by dual
// write, in three phases, client-neutral (adapters/slkafka, slsarama,
// slamqp, slnats and slrocketmq provide the glue: a [Sender] over their
// producer wrapper, the id header on their messages, and a handler wrapper
// that asks a [Reader]).
//
// A [Plan] is the migration in force: a [Phase] and a topic map (old
// production name -> new production name, per topic). Phases:
//
//	phase          produce (Producer.Send)            consume (Reader.Begin)
//	0 before       old only                           first copy of an id handled
//	1 dual-write   old, then new (same id)            old copies handled, new copies skipped
//	2 dual-read    old, then new (same id)            first copy of an id handled, later ones dropped
//	3 new-only     new only                           new copies handled (unless their id was), old copies skipped
//
// "Skipped" and "dropped" copies are acknowledged without running the
// handler. A message without an id (written by a plain producer) is
// handled wherever it is read.
//
// Load-test marks ride the context, not the Message: each side's Sender
// is its adapter's producer wrapper, so a marked message lands on that
// system's shadow twin of the mapped name (and is refused where the twin
// is missing), the mark headers are written by that adapter, and env tags
// travel the same way. The map names production names only.
//
// The phase is read from a [Source] on every send and every received copy,
// so a reload of the "migration:" config section (*shadowlane.Runtime is a
// Source) moves a running process to the next phase without a restart.
// Each Runtime has its own plan.
//
// The [Reader]'s memory is bounded by its window of handled ids; its
// limits are stated on the type.
package migrate
