// Package httpstatus is the response writer wrapper that records the
// status an HTTP handler answers with, shared by the net/http entry
// (middleware.ServeMarked, marked requests) and the flow limiter's
// middleware (limiter/httplimit, every request; pooled there, so it does
// not allocate).
package httpstatus
