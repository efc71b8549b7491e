// Package redis is a stub of github.com/redis/go-redis/v9 for the analyzer tests.
package redis

import "context"

type Options struct{ Addr string }
type ClusterOptions struct{ Addrs []string }
type RingOptions struct{}

type Hook interface{}

type Client struct{}
type ClusterClient struct{}
type Ring struct{}

type StringCmd struct{}

func NewClient(o *Options) *Client                               { return &Client{} }
func NewClusterClient(o *ClusterOptions) *ClusterClient          { return &ClusterClient{} }
func NewRing(o *RingOptions) *Ring                               { return &Ring{} }
func (c *Client) AddHook(h Hook)                                 {}
func (c *Client) Get(ctx context.Context, key string) *StringCmd { return &StringCmd{} }
func (c *ClusterClient) AddHook(h Hook)                          {}
func (c *Ring) AddHook(h Hook)                                   {}
