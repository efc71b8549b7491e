// Package kadm is a stub of github.com/twmb/franz-go/pkg/kadm for the analyzer tests.
package kadm

import "github.com/twmb/franz-go/pkg/kgo"

type Client struct{}

func NewClient(cl *kgo.Client) *Client     { return &Client{} }
func (c *Client) DeleteTopics(t ...string) {}
