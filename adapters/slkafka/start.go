package slkafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// pinStart fixes where a lane group starts: every partition of topics that
// has no committed offset in group gets the partition's current end
// offset committed, before the group is joined. A new lane never starts at
// the beginning of a topic (the trunk handled what came before), and the
// start stays put when the lane restarts before it committed anything. A
// group that already committed keeps its offsets. The commit is an admin
// commit, accepted only while the group has no members; when it is
// refused (another instance of the lane is running and fixed the start)
// the group's own reset (the end) applies. The pinned partitions carry
// [bus.StartMetadata]: their start window is open (window.go).
func pinStart(ctx context.Context, opts []kgo.Opt, group string, topics []string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // a group that never committed
	}
	if err != nil {
		return fmt.Errorf("fetch offsets of %q: %w", group, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %v: %w", topics, err)
	}
	pin := kadm.Offsets{}
	ends.Each(func(l kadm.ListedOffset) {
		if c, ok := committed.Lookup(l.Topic, l.Partition); ok && (c.Err != nil || c.At >= 0) {
			return
		}
		pin.Add(kadm.Offset{Topic: l.Topic, Partition: l.Partition, At: l.Offset, LeaderEpoch: -1, Metadata: bus.StartMetadata})
	})
	if len(pin) == 0 {
		return nil
	}
	_, _ = adm.CommitOffsets(ctx, group, pin)
	return nil
}
