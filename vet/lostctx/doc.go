// Package lostctx is the analyzer behind shadowlane-vet (and `shadowlane
// vet`): it finds the places where the shadowlane mark, which rides
// [context.Context], is lost, so load-test work would reach production as if
// it were production.
//
// A function has a request context in scope when it (or a function literal
// around the code) takes a named context.Context, *http.Request,
// *gin.Context, grpc.ServerStream (anything with a Context() context.Context
// method) or any value implementing context.Context. The rules, each with its
// diagnostic category:
//
//   - nocontext: database/sql Exec, Query, QueryRow, Begin, Prepare, Ping on
//     *sql.DB, *sql.Tx and *sql.Stmt (and Tx.Stmt), http.Get/Post/Head/PostForm,
//     the same *http.Client methods, and http.NewRequest, called where a
//     context is in scope. Suggested fix: the Context form with the context
//     in scope (ExecContext(ctx, ...), BeginTx(ctx, nil),
//     NewRequestWithContext(r.Context(), ...); inside a go statement the
//     context is context.WithoutCancel(ctx)); the http.Get family gets a
//     message only (the rewrite needs a request and Do). With -everywhere the
//     rule also reports these calls in functions without a context (main, init
//     and test files excepted), without a fix.
//   - gorm: a *gorm.DB method that runs a statement (Create, First, Find,
//     Save, Update(s), Delete, Count, Exec, Transaction, ...) whose chain has
//     no WithContext, starting from a field, a package variable or a
//     parameter of a declared function. A local variable is followed to what
//     was assigned to it; a function literal's *gorm.DB parameter (the tx of
//     Transaction) is trusted. Fix: insert .WithContext(ctx) after the root.
//   - background: context.Background() or context.TODO() anywhere a request
//     context is in scope, including inside a goroutine's closure started
//     there. Fix: the context in scope; context.WithoutCancel(ctx) when the
//     result is derived (context.WithTimeout(context.Background(), ...)) or the
//     code runs in a go statement, because such work is meant to outlive the
//     request but must keep its mark.
//   - unwired: a go-redis NewClient/NewClusterClient/NewRing/NewFailover*/
//     NewUniversalClient whose result is neither passed to a shadowlane
//     function (goredis.Instrument) nor given AddHook with a shadowlane hook
//     in the same function; a franz-go kgo.NewClient without kgo.WithHooks
//     holding a shadowlane value (options passed as opts... are trusted),
//     not handed to a shadowlane function and not used only as an admin
//     client (kadm); a sarama Sync/Async producer not handed to a shadowlane
//     function ((*sarama.Shadow).SyncProducer) while no shadowlane value is
//     set in a Producer.Interceptors field in the same function; a message
//     sent with nats.go itself — a *nats.Conn Publish, PublishMsg,
//     PublishRequest or Request*, a JetStream Publish* (package jetstream,
//     or the legacy nats.JetStream) — wherever it is called, because nats.go
//     has no publish hook: only the adapters/slnats wrappers
//     ((*nats.Shadow).Conn, (*nats.Shadow).JetStream) route a marked message
//     to its shadow subject; a rocketmq-client-go NewProducer,
//     NewTransactionProducer or NewPushConsumer without a
//     producer/consumer.WithInterceptor option holding an interceptor a
//     shadowlane function returns ((*slrocketmq.Shadow).ProducerInterceptor,
//     ConsumerInterceptor; options passed as opts... are trusted), while
//     (*slrocketmq.Shadow).NewProducer and NewPushConsumer are wired (pull
//     consumers are not reported: their interceptors run after the fact,
//     and the adapter's per-message Decide cannot be seen statically).
//     Turn the rule off with -wiring=false (for
//     example when Orchestrion wires the clients).
//
// A deliberate exception (a probe or a drill that reads the real store on
// purpose, cleanup after a test run) is silenced by a comment starting with
// "//lostctx:ok", followed by the reason, on the finding's line or the line
// above it.
//
// Not reported: test files, generated files, main and init themselves (a
// handler literal inside main is checked), calls that already pass a
// context, and context.WithoutCancel(ctx), the right way to move work off
// the request with its mark (see the propagation package documentation).
//
// Matching is by package path and object through type information, never
// by text: a method named Exec on another type is not a finding.
package lostctx
