package slredis

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/shadow/rediskeys"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]): an unmarked command whose keys or values
// look like load-test data is refused with a [*shadow.Error] wrapping
// [shadow.ErrLostMark] (or only reported, with testData.action: alert),
// counted under "redis". Without testData rules it costs one pointer
// load. Connection set-up commands (HELLO, AUTH...) are not checked.
func (h *Hook) lostMark(_ context.Context, cmd redis.Cmder) error {
	rt := shadowlane.OrDefault(h.rt)
	td := rt.TestData()
	if td == nil { // inlined into the hooks: no testData, no call
		return nil
	}
	return h.lostMarkCheck(rt, td, cmd)
}

func (h *Hook) lostMarkCheck(rt *shadowlane.Runtime, td *shadowlane.TestData, cmd redis.Cmder) error {
	args := cmd.Args()
	if len(args) < 2 || rediskeys.ConnectionSetup(args) {
		return nil
	}
	for _, a := range args[1:] {
		if rule, ok := td.MatchValue(a); ok {
			err := rt.LostMark(Store, cmd.Name(), rule)
			if err != nil {
				cmd.SetErr(err)
			}
			return err
		}
	}
	return nil
}
