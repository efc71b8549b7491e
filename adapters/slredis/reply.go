package slredis

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/rediskeys"
)

// substitute builds a command of the same type as cmd with extra arguments
// at the end (SCAN's MATCH, PUBSUB CHANNELS' pattern).
func substitute(ctx context.Context, cmd redis.Cmder, extra []any) (redis.Cmder, error) {
	args := append(append(make([]any, 0, len(cmd.Args())+len(extra)), cmd.Args()...), extra...)
	switch cmd.(type) {
	case *redis.ScanCmd:
		return redis.NewScanCmd(ctx, nil, args...), nil
	case *redis.StringSliceCmd:
		return redis.NewStringSliceCmd(ctx, args...), nil
	case *redis.Cmd:
		return redis.NewCmd(ctx, args...), nil
	}
	return nil, &shadow.Error{Store: Store, Target: rediskeys.CommandName(cmd.Args()), Rule: fmt.Sprintf("cannot add a shadow pattern to a %T", cmd), Err: shadow.ErrUnsupported}
}

func copyBack(from, to redis.Cmder) {
	switch f := from.(type) {
	case *redis.ScanCmd:
		keys, cursor := f.Val()
		to.(*redis.ScanCmd).SetVal(keys, cursor)
	case *redis.StringSliceCmd:
		to.(*redis.StringSliceCmd).SetVal(f.Val())
	case *redis.Cmd:
		to.(*redis.Cmd).SetVal(f.Val())
	}
	to.SetErr(from.Err())
}

// restoreReply gives a marked command's reply the application's own names.
func (h *Hook) restoreReply(cmd redis.Cmder, reply rediskeys.Reply) {
	if reply == rediskeys.ReplyNone || !h.rw.Renames() || cmd.Err() != nil {
		return
	}
	prod := func(s string) string { p, _ := h.rw.ProductionName(s); return p }
	switch reply {
	case rediskeys.ReplyNameList:
		switch c := cmd.(type) {
		case *redis.StringSliceCmd:
			c.SetVal(mapNames(c.Val(), prod, nil))
		case *redis.Cmd:
			c.SetVal(mapAny(c.Val(), prod))
		}
	case rediskeys.ReplyScan:
		switch c := cmd.(type) {
		case *redis.ScanCmd:
			keys, cursor := c.Val()
			c.SetVal(mapNames(keys, prod, nil), cursor)
		case *redis.Cmd:
			if v, ok := c.Val().([]any); ok && len(v) == 2 {
				c.SetVal([]any{v[0], mapAny(v[1], prod)})
			}
		}
	case rediskeys.ReplyName:
		switch c := cmd.(type) {
		case *redis.StringCmd:
			c.SetVal(prod(c.Val()))
		case *redis.Cmd:
			if s, ok := c.Val().(string); ok {
				c.SetVal(prod(s))
			}
		}
	case rediskeys.ReplyFirstName:
		switch c := cmd.(type) {
		case *redis.StringSliceCmd:
			if v := c.Val(); len(v) > 0 {
				v[0] = prod(v[0])
			}
		case *redis.ZWithKeyCmd:
			if v := c.Val(); v != nil {
				v.Key = prod(v.Key)
			}
		case *redis.KeyValuesCmd:
			k, v := c.Val()
			c.SetVal(prod(k), v)
		case *redis.ZSliceWithKeyCmd:
			k, v := c.Val()
			c.SetVal(prod(k), v)
		case *redis.Cmd:
			if v, ok := c.Val().([]any); ok && len(v) > 0 {
				if s, ok := v[0].(string); ok {
					v[0] = prod(s)
				}
			}
		}
	case rediskeys.ReplyStreams:
		switch c := cmd.(type) {
		case *redis.XStreamSliceCmd:
			v := c.Val()
			for i := range v {
				v[i].Stream = prod(v[i].Stream)
			}
		case *redis.Cmd:
			switch v := c.Val().(type) {
			case []any:
				for _, e := range v {
					if pair, ok := e.([]any); ok && len(pair) > 0 {
						if s, ok := pair[0].(string); ok {
							pair[0] = prod(s)
						}
					}
				}
			case map[any]any:
				out := make(map[any]any, len(v))
				for k, e := range v {
					if s, ok := k.(string); ok {
						k = prod(s)
					}
					out[k] = e
				}
				c.SetVal(out)
			}
		}
	case rediskeys.ReplyNameCounts:
		switch c := cmd.(type) {
		case *redis.MapStringIntCmd:
			v := c.Val()
			out := make(map[string]int64, len(v))
			for k, n := range v {
				out[prod(k)] = n
			}
			c.SetVal(out)
		case *redis.Cmd:
			if v, ok := c.Val().([]any); ok {
				for i := 0; i < len(v); i += 2 {
					if s, ok := v[i].(string); ok {
						v[i] = prod(s)
					}
				}
			}
		}
	}
}

// filterProduction removes shadow names from the reply of a production
// KEYS, SCAN or PUBSUB CHANNELS (typed commands and rdb.Do alike), and
// counts them (decision "filter", target the command). A SCAN page may
// then hold fewer names than COUNT, or none, with a cursor that is not 0:
// callers already loop until the cursor is 0.
func (h *Hook) filterProduction(cmd redis.Cmder) {
	if cmd.Err() != nil {
		return
	}
	removed := 0
	keep := func(s string) bool {
		if h.rw.Naming.IsShadow(s) {
			removed++
			return false
		}
		return true
	}
	name := rediskeys.CommandName(cmd.Args())
	switch name {
	case "KEYS", "SCAN", "PUBSUB CHANNELS", "PUBSUB SHARDCHANNELS":
	default:
		return
	}
	switch c := cmd.(type) {
	case *redis.StringSliceCmd:
		if name != "SCAN" {
			c.SetVal(mapNames(c.Val(), nil, keep))
		}
	case *redis.ScanCmd:
		if name == "SCAN" {
			keys, cursor := c.Val()
			c.SetVal(mapNames(keys, nil, keep), cursor)
		}
	case *redis.Cmd:
		switch v := c.Val().(type) {
		case []any:
			if name != "SCAN" {
				c.SetVal(filterAny(v, keep))
			} else if len(v) == 2 {
				if page, ok := v[1].([]any); ok {
					c.SetVal([]any{v[0], filterAny(page, keep)})
				}
			}
		}
	}
	if removed > 0 {
		h.decisions().Add("", Store, name, "", shadow.Filter, int64(removed))
	}
}

// filterAny returns the elements of list that are not strings keep
// refuses.
func filterAny(list []any, keep func(string) bool) []any {
	out := list[:0:0]
	for _, e := range list {
		if s, ok := e.(string); ok && !keep(s) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func mapNames(in []string, f func(string) string, keep func(string) bool) []string {
	out := in[:0:0]
	for _, s := range in {
		if keep != nil && !keep(s) {
			continue
		}
		if f != nil {
			s = f(s)
		}
		out = append(out, s)
	}
	return out
}

func mapAny(v any, f func(string) string) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(list))
	for i, e := range list {
		if s, ok := e.(string); ok {
			e = f(s)
		}
		out[i] = e
	}
	return out
}
