// Package kgo is a stub of github.com/twmb/franz-go/pkg/kgo for the analyzer tests.
package kgo

type Opt interface{ opt() }

type opt struct{}

func (opt) opt() {}

type Hook interface{}

type Client struct{}

func NewClient(opts ...Opt) (*Client, error) { return &Client{}, nil }
func SeedBrokers(b ...string) Opt            { return opt{} }
func WithHooks(h ...Hook) Opt                { return opt{} }
func (c *Client) Close()                     {}
