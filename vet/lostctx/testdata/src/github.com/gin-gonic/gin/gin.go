// Package gin is a stub of github.com/gin-gonic/gin for the analyzer tests.
package gin

import "net/http"

type Context struct{ Request *http.Request }

type HandlerFunc func(*Context)

type Engine struct{}

func New() *Engine                                  { return &Engine{} }
func (e *Engine) GET(path string, h ...HandlerFunc) {}
