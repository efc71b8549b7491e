package lostctx

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/inspect"
	"golang.org/x/tools/go/ast/inspector"
)

// Analyzer reports the places where shadowlane's mark is lost; see the
// package documentation for the rules.
var Analyzer = &analysis.Analyzer{
	Name:     "lostctx",
	Doc:      "report calls, goroutines and clients that lose the shadowlane mark carried by context.Context",
	URL:      "https://pkg.go.dev/github.com/shadowlane/shadowlane/vet/lostctx",
	Requires: []*analysis.Analyzer{inspect.Analyzer},
	Run:      run,
	Flags:    flags(),
}

var (
	// everywhere reports context-less calls also in functions without a
	// context in scope (main, init and test files still excepted).
	everywhere bool
	// wiring turns the unwired-client rule on.
	wiring = true
)

func flags() flag.FlagSet {
	fs := flag.NewFlagSet("lostctx", flag.ExitOnError)
	fs.BoolVar(&everywhere, "everywhere", false, "report calls without a context also in functions that have no context in scope")
	fs.BoolVar(&wiring, "wiring", true, "report Redis, franz-go, sarama and rocketmq-client-go clients constructed without shadowlane wiring")
	return *fs
}

const (
	shadowlanePath = "github.com/shadowlane/shadowlane"
	gormPath       = "gorm.io/gorm"
	ginPath        = "github.com/gin-gonic/gin"
	kgoPath        = "github.com/twmb/franz-go/pkg/kgo"
	rmqPath        = "github.com/apache/rocketmq-client-go/v2"
	rmqProducer    = "github.com/apache/rocketmq-client-go/v2/producer"
	rmqConsumer    = "github.com/apache/rocketmq-client-go/v2/consumer"
	natsPath       = "github.com/nats-io/nats.go"
	jetstreamPath  = "github.com/nats-io/nats.go/jetstream"
)

var redisPaths = map[string]bool{"github.com/redis/go-redis/v9": true, "github.com/go-redis/redis/v8": true}
var saramaPaths = map[string]bool{"github.com/IBM/sarama": true, "github.com/Shopify/sarama": true}

// sqlMethods maps a database/sql method without a context to its context
// form, per receiver type.
var sqlMethods = map[string]map[string]string{
	"DB":   {"Exec": "ExecContext", "Query": "QueryContext", "QueryRow": "QueryRowContext", "Begin": "BeginTx", "Prepare": "PrepareContext", "Ping": "PingContext", "Conn": ""},
	"Tx":   {"Exec": "ExecContext", "Query": "QueryContext", "QueryRow": "QueryRowContext", "Prepare": "PrepareContext", "Stmt": "StmtContext"},
	"Conn": {},
	"Stmt": {"Exec": "ExecContext", "Query": "QueryContext", "QueryRow": "QueryRowContext"},
}

// httpCalls are the net/http functions and *http.Client methods that send
// a request without a context.
var httpCalls = map[string]bool{"Get": true, "Post": true, "Head": true, "PostForm": true}

// gormFinishers are the *gorm.DB methods that run a statement.
var gormFinishers = map[string]bool{
	"Create": true, "CreateInBatches": true, "Save": true, "First": true, "Take": true, "Last": true,
	"Find": true, "FindInBatches": true, "FirstOrInit": true, "FirstOrCreate": true, "Update": true,
	"Updates": true, "UpdateColumn": true, "UpdateColumns": true, "Delete": true, "Count": true,
	"Row": true, "Rows": true, "Scan": true, "Pluck": true, "Exec": true, "Transaction": true,
	"Begin": true,
}

// ctxSource is how a function reaches its request context.
type ctxSource struct {
	expr string // the expression to use, e.g. "ctx" or "r.Context()"
	what string // what is in scope, for messages
}

func run(pass *analysis.Pass) (any, error) {
	ins := pass.ResultOf[inspect.Analyzer].(*inspector.Inspector)
	for _, f := range pass.Files {
		name := pass.Fset.File(f.Pos()).Name()
		if strings.HasSuffix(name, "_test.go") || ast.IsGenerated(f) {
			continue
		}
		c := &checker{pass: pass, file: f, ok: okLines(pass.Fset, f)}
		c.assigns = collectAssigns(pass, f)
		// shadowlane's own packages build the clients they wire (a shadow
		// instance, a probe): the unwired rule is for applications.
		wiring := wiring && !isShadowlaneLib(pass.Pkg.Path())
		ins.WithStack([]ast.Node{(*ast.CallExpr)(nil), (*ast.FuncDecl)(nil), (*ast.FuncLit)(nil)}, func(n ast.Node, push bool, stack []ast.Node) bool {
			if !push || !within(f, n) {
				return push
			}
			switch n := n.(type) {
			case *ast.CallExpr:
				if wiring {
					c.natsPublish(n)
				}
				c.call(n, stack)
			case *ast.FuncDecl:
				if wiring && n.Body != nil {
					c.clients(n.Body)
				}
			case *ast.FuncLit:
				if wiring && !inFuncLit(stack[:len(stack)-1]) {
					// A package-level function literal (var h = func...) has
					// no FuncDecl above it.
					if !hasFuncDecl(stack) {
						c.clients(n.Body)
					}
				}
			}
			return true
		})
	}
	return nil, nil
}

func within(f *ast.File, n ast.Node) bool { return f.Pos() <= n.Pos() && n.End() <= f.End() }

func inFuncLit(stack []ast.Node) bool {
	for _, n := range stack {
		if _, ok := n.(*ast.FuncLit); ok {
			return true
		}
	}
	return false
}

func hasFuncDecl(stack []ast.Node) bool {
	for _, n := range stack {
		if _, ok := n.(*ast.FuncDecl); ok {
			return true
		}
	}
	return false
}

type checker struct {
	pass    *analysis.Pass
	file    *ast.File
	ok      map[int]bool                // lines covered by a //lostctx:ok directive
	assigns map[types.Object][]ast.Expr // local variable -> every value assigned to it
}

// scope returns the request context reachable from the innermost function
// on the stack that has one, and whether the stack runs inside a go
// statement below that function.
func (c *checker) scope(stack []ast.Node) (src ctxSource, ok bool, inGo bool) {
	for i := len(stack) - 1; i >= 0; i-- {
		var ft *ast.FuncType
		switch n := stack[i].(type) {
		case *ast.GoStmt:
			inGo = true
			continue
		case *ast.FuncLit:
			ft = n.Type
		case *ast.FuncDecl:
			if n.Recv == nil && (n.Name.Name == "main" && c.pass.Pkg.Name() == "main" || n.Name.Name == "init") {
				return ctxSource{}, false, false
			}
			ft = n.Type
		default:
			continue
		}
		if src, ok := c.fromParams(ft.Params); ok {
			return src, true, inGo
		}
	}
	return ctxSource{}, false, false
}

func (c *checker) fromParams(fl *ast.FieldList) (ctxSource, bool) {
	if fl == nil {
		return ctxSource{}, false
	}
	// A context.Context parameter wins over *http.Request and friends.
	var best ctxSource
	rank := 0
	for _, field := range fl.List {
		t := c.pass.TypesInfo.TypeOf(field.Type)
		if t == nil {
			continue
		}
		for _, name := range field.Names {
			if name.Name == "_" || name.Name == "" {
				continue
			}
			switch {
			case fromPkg(t, "testing"):
				// *testing.T has Context(), but a test helper is no request.
			case isContext(t):
				return ctxSource{expr: name.Name, what: "context.Context " + name.Name}, true
			case isNamed(t, ginPath, "Context", true):
				if rank < 3 {
					best, rank = ctxSource{expr: name.Name + ".Request.Context()", what: "*gin.Context " + name.Name}, 3
				}
			case isNamed(t, "net/http", "Request", true):
				if rank < 3 {
					best, rank = ctxSource{expr: name.Name + ".Context()", what: "*http.Request " + name.Name}, 3
				}
			case hasContextMethod(t):
				// grpc.ServerStream and anything else with Context() context.Context.
				if rank < 2 {
					best, rank = ctxSource{expr: name.Name + ".Context()", what: types.TypeString(t, types.RelativeTo(c.pass.Pkg)) + " " + name.Name}, 2
				}
			case implementsContext(t):
				if rank < 1 {
					best, rank = ctxSource{expr: name.Name, what: types.TypeString(t, types.RelativeTo(c.pass.Pkg)) + " " + name.Name}, 1
				}
			}
		}
	}
	return best, rank > 0
}

func isContext(t types.Type) bool { return isNamed(t, "context", "Context", false) }

func implementsContext(t types.Type) bool {
	for _, m := range []string{"Deadline", "Done", "Err", "Value"} {
		obj, _, _ := types.LookupFieldOrMethod(t, true, nil, m)
		if _, ok := obj.(*types.Func); !ok {
			return false
		}
	}
	return true
}

func hasContextMethod(t types.Type) bool {
	obj, _, _ := types.LookupFieldOrMethod(t, true, nil, "Context")
	fn, ok := obj.(*types.Func)
	if !ok {
		return false
	}
	sig := fn.Type().(*types.Signature)
	return sig.Params().Len() == 0 && sig.Results().Len() == 1 && isContext(sig.Results().At(0).Type())
}

// isNamed reports whether t (or *t when ptr) is the named type path.name.
func isNamed(t types.Type, path, name string, ptr bool) bool {
	if ptr {
		p, ok := types.Unalias(t).(*types.Pointer)
		if !ok {
			return false
		}
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() == nil {
		return false
	}
	return n.Obj().Pkg().Path() == path && n.Obj().Name() == name
}

// fromShadowlane reports whether t (or what it points to) is declared in a
// shadowlane package.
func fromShadowlane(t types.Type) bool {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && isShadowlanePkg(n.Obj().Pkg().Path())
}

// fromPkg reports whether t (or what it points to) is declared in path.
func fromPkg(t types.Type, path string) bool {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == path
}

// isShadowlaneLib reports whether path is one of shadowlane's library
// packages (not its CLI or examples, which are applications).
func isShadowlaneLib(path string) bool {
	return isShadowlanePkg(path) &&
		!strings.HasPrefix(path, shadowlanePath+"/cmd/") &&
		!strings.HasPrefix(path, shadowlanePath+"/examples")
}

func isShadowlanePkg(path string) bool {
	return path == shadowlanePath || strings.HasPrefix(path, shadowlanePath+"/")
}

// callee returns the function or method a call invokes, or nil.
func (c *checker) callee(call *ast.CallExpr) *types.Func {
	var id *ast.Ident
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		id = fun
	case *ast.SelectorExpr:
		id = fun.Sel
	case *ast.IndexExpr:
		if s, ok := fun.X.(*ast.SelectorExpr); ok {
			id = s.Sel
		}
	}
	if id == nil {
		return nil
	}
	fn, _ := c.pass.TypesInfo.Uses[id].(*types.Func)
	return fn
}

// recvNamed returns the receiver's named type name and package path of a method.
func recvNamed(fn *types.Func) (pkg, name string) {
	sig, ok := fn.Type().(*types.Signature)
	if !ok || sig.Recv() == nil {
		return "", ""
	}
	t := sig.Recv().Type()
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() == nil {
		return "", ""
	}
	return n.Obj().Pkg().Path(), n.Obj().Name()
}

func isFunc(fn *types.Func, path string, names ...string) bool {
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != path {
		return false
	}
	if sig := fn.Type().(*types.Signature); sig.Recv() != nil {
		return false
	}
	for _, n := range names {
		if fn.Name() == n {
			return true
		}
	}
	return false
}

func (c *checker) call(call *ast.CallExpr, stack []ast.Node) {
	fn := c.callee(call)
	if fn == nil {
		return
	}
	src, ok, inGo := c.scope(stack)
	if isFunc(fn, "context", "Background", "TODO") {
		if ok {
			c.background(call, fn, src, inGo, stack)
		}
		return
	}
	if !ok && !(everywhere && !c.inMainOrInit(stack)) {
		return
	}
	if !ok {
		src = ctxSource{expr: "ctx"}
	} else if inGo {
		// A goroutine outlives the request: keep the mark, drop the cancel.
		src.expr = c.qualify("context") + ".WithoutCancel(" + src.expr + ")"
	}
	c.noContext(call, fn, src, ok)
	if ok {
		c.gorm(call, fn, src)
	}
}

func (c *checker) inMainOrInit(stack []ast.Node) bool {
	for _, n := range stack {
		if d, ok := n.(*ast.FuncDecl); ok && d.Recv == nil && (d.Name.Name == "init" || d.Name.Name == "main" && c.pass.Pkg.Name() == "main") {
			return true
		}
	}
	return false
}

// background reports context.Background()/TODO() where a request context
// is in scope.
func (c *checker) background(call *ast.CallExpr, fn *types.Func, src ctxSource, inGo bool, stack []ast.Node) {
	repl := src.expr
	detached := inGo
	// Deriving a context (WithTimeout(Background(), ...)) usually means the
	// work is meant to outlive the request: keep the mark, drop the cancel.
	if len(stack) >= 2 {
		if parent, ok := stack[len(stack)-2].(*ast.CallExpr); ok && len(parent.Args) > 0 && parent.Args[0] == call {
			if pf := c.callee(parent); pf != nil && pf.Pkg() != nil && pf.Pkg().Path() == "context" && strings.HasPrefix(pf.Name(), "With") {
				detached = true
			}
		}
	}
	if detached {
		repl = c.qualify("context") + ".WithoutCancel(" + src.expr + ")"
	}
	where := "in a function with " + src.what
	if inGo {
		where = "in a goroutine started in a function with " + src.what
	}
	c.report(analysis.Diagnostic{
		Pos: call.Pos(), End: call.End(), Category: "background",
		Message: fmt.Sprintf("context.%s() %s drops the shadowlane mark: use %s", fn.Name(), where, repl),
		SuggestedFixes: []analysis.SuggestedFix{{
			Message:   "use " + repl,
			TextEdits: []analysis.TextEdit{{Pos: call.Pos(), End: call.End(), NewText: []byte(repl)}},
		}},
	})
}

// qualify returns the name under which the file imports path ("context"
// unless renamed).
func (c *checker) qualify(path string) string {
	for _, imp := range c.file.Imports {
		if strings.Trim(imp.Path.Value, `"`) == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return path[strings.LastIndex(path, "/")+1:]
}

// noContext reports database/sql and net/http calls that have a context form.
func (c *checker) noContext(call *ast.CallExpr, fn *types.Func, src ctxSource, fixable bool) {
	sel, isSel := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	pkg, recv := recvNamed(fn)
	var msg string
	var edits []analysis.TextEdit
	switch {
	case pkg == "database/sql" && isSel:
		alt, ok := sqlMethods[recv][fn.Name()]
		if !ok || alt == "" {
			return
		}
		args := src.expr
		if alt == "BeginTx" {
			args += ", nil"
		}
		msg = fmt.Sprintf("(*sql.%s).%s has no context, so the shadowlane mark is lost: use %s(%s, ...)", recv, fn.Name(), alt, src.expr)
		edits = []analysis.TextEdit{
			{Pos: sel.Sel.Pos(), End: sel.Sel.End(), NewText: []byte(alt)},
			{Pos: call.Lparen + 1, End: call.Lparen + 1, NewText: []byte(args + sepIfArgs(call))},
		}
	case pkg == "net/http" && recv == "Client" && httpCalls[fn.Name()] && isSel:
		msg = fmt.Sprintf("(*http.Client).%s has no context, so the shadowlane mark is lost: build the request with http.NewRequestWithContext(%s, ...) and call Do", fn.Name(), src.expr)
	case isFunc(fn, "net/http", "Get", "Post", "Head", "PostForm"):
		msg = fmt.Sprintf("http.%s has no context, so the shadowlane mark is lost: build the request with http.NewRequestWithContext(%s, ...) and call Do", fn.Name(), src.expr)
	case isFunc(fn, "net/http", "NewRequest"):
		msg = fmt.Sprintf("http.NewRequest has no context, so the shadowlane mark is lost: use http.NewRequestWithContext(%s, ...)", src.expr)
		id := ast.Unparen(call.Fun)
		if s, ok := id.(*ast.SelectorExpr); ok {
			id = s.Sel
		}
		edits = []analysis.TextEdit{
			{Pos: id.Pos(), End: id.End(), NewText: []byte("NewRequestWithContext")},
			{Pos: call.Lparen + 1, End: call.Lparen + 1, NewText: []byte(src.expr + sepIfArgs(call))},
		}
	default:
		return
	}
	d := analysis.Diagnostic{Pos: call.Pos(), End: call.End(), Category: "nocontext", Message: msg}
	if fixable && edits != nil {
		d.SuggestedFixes = []analysis.SuggestedFix{{Message: "pass " + src.expr, TextEdits: edits}}
	}
	c.report(d)
}

func sepIfArgs(call *ast.CallExpr) string {
	if len(call.Args) > 0 {
		return ", "
	}
	return ""
}

// gorm reports a statement-running *gorm.DB call whose chain has no
// WithContext.
func (c *checker) gorm(call *ast.CallExpr, fn *types.Func, src ctxSource) {
	pkg, recv := recvNamed(fn)
	if pkg != gormPath || recv != "DB" || !gormFinishers[fn.Name()] {
		return
	}
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return
	}
	root, has := c.chainHasContext(sel.X, 0)
	if has {
		return
	}
	c.report(analysis.Diagnostic{
		Pos: call.Pos(), End: call.End(), Category: "gorm",
		Message: fmt.Sprintf("gorm chain runs %s without WithContext, so the shadowlane mark is lost: add .WithContext(%s)", fn.Name(), src.expr),
		SuggestedFixes: []analysis.SuggestedFix{{
			Message:   "add .WithContext(" + src.expr + ")",
			TextEdits: []analysis.TextEdit{{Pos: root.End(), End: root.End(), NewText: []byte(".WithContext(" + src.expr + ")")}},
		}},
	})
}

// chainHasContext walks a *gorm.DB chain down to its root; it reports the
// root and whether the chain (or a local variable it starts from) carries
// a WithContext.
func (c *checker) chainHasContext(e ast.Expr, depth int) (ast.Expr, bool) {
	e = ast.Unparen(e)
	if depth > 8 {
		return e, true // too deep to tell: trust it
	}
	switch x := e.(type) {
	case *ast.CallExpr:
		if fn := c.callee(x); fn != nil {
			if pkg, recv := recvNamed(fn); pkg == gormPath && recv == "DB" {
				if fn.Name() == "WithContext" {
					return e, true
				}
				if s, ok := ast.Unparen(x.Fun).(*ast.SelectorExpr); ok {
					return c.chainHasContext(s.X, depth+1)
				}
			}
		}
		return e, true // a call that returns a *gorm.DB we cannot see into
	case *ast.Ident:
		obj, ok := c.pass.TypesInfo.Uses[x].(*types.Var)
		if !ok {
			return e, true
		}
		if obj.Parent() == c.pass.Pkg.Scope() || obj.Parent() == nil {
			return e, false // package-level handle: never has a context
		}
		vals, assigned := c.assigns[obj]
		if !assigned {
			// A parameter: a FuncLit's *gorm.DB parameter (Transaction's tx)
			// inherits its caller's context; a declared function's does not.
			if c.isFuncDeclParam(obj) {
				return e, false
			}
			return e, true
		}
		for _, v := range vals {
			if _, has := c.chainHasContext(v, depth+1); !has {
				return e, false
			}
		}
		return e, true
	case *ast.SelectorExpr:
		return e, false // a field: a stored handle has no request context
	}
	return e, true
}

func (c *checker) isFuncDeclParam(v *types.Var) bool {
	for _, d := range c.file.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Type.Params == nil {
			continue
		}
		for _, f := range fd.Type.Params.List {
			for _, n := range f.Names {
				if c.pass.TypesInfo.Defs[n] == v {
					return true
				}
			}
		}
	}
	return false
}

// collectAssigns maps each local variable to the values assigned to it in
// one-to-one assignments and var declarations.
func collectAssigns(pass *analysis.Pass, f *ast.File) map[types.Object][]ast.Expr {
	m := map[types.Object][]ast.Expr{}
	add := func(id *ast.Ident, v ast.Expr) {
		obj := pass.TypesInfo.ObjectOf(id)
		if obj != nil {
			m[obj] = append(m[obj], v)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == len(n.Rhs) {
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
						add(id, n.Rhs[i])
					}
				}
			}
		case *ast.ValueSpec:
			if len(n.Names) == len(n.Values) {
				for i, id := range n.Names {
					add(id, n.Values[i])
				}
			}
		}
		return true
	})
	return m
}

// clients reports Redis, franz-go and sarama clients that a function body
// constructs without shadowlane wiring in the same function.
func (c *checker) clients(body *ast.BlockStmt) {
	type made struct {
		call *ast.CallExpr
		kind string
		fix  string
	}
	var constructed []made
	parents := map[ast.Node]ast.Node{}
	var stack []ast.Node
	ast.Inspect(body, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return false
		}
		if len(stack) > 0 {
			parents[n] = stack[len(stack)-1]
		}
		stack = append(stack, n)
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fn := c.callee(call)
		if fn == nil || fn.Pkg() == nil {
			return true
		}
		path := fn.Pkg().Path()
		switch {
		case redisPaths[path] && isFunc(fn, path, "NewClient", "NewClusterClient", "NewRing", "NewFailoverClient", "NewFailoverClusterClient", "NewUniversalClient"):
			constructed = append(constructed, made{call, "redis." + fn.Name(), "pass it to goredis.Instrument (or AddHook a shadowlane hook)"})
		case isFunc(fn, kgoPath, "NewClient"):
			if !c.kgoHooked(call) {
				constructed = append(constructed, made{call, "kgo.NewClient", "add kgo.WithHooks(shadow) with a *kafka.Shadow from adapters/slkafka"})
			}
		case isFunc(fn, rmqPath, "NewProducer", "NewTransactionProducer"):
			if !c.rmqIntercepted(call, rmqProducer) {
				constructed = append(constructed, made{call, "rocketmq." + fn.Name(), "build it with (*slrocketmq.Shadow).NewProducer from adapters/slrocketmq, or add producer.WithInterceptor(shadow.ProducerInterceptor())"})
			}
		case isFunc(fn, rmqPath, "NewPushConsumer"):
			if !c.rmqIntercepted(call, rmqConsumer) {
				constructed = append(constructed, made{call, "rocketmq.NewPushConsumer", "build it with (*slrocketmq.Shadow).NewPushConsumer from adapters/slrocketmq (shadow groups, lanes), or add consumer.WithInterceptor(shadow.ConsumerInterceptor())"})
			}
		case saramaPaths[path] && isFunc(fn, path, "NewSyncProducer", "NewAsyncProducer", "NewSyncProducerFromClient", "NewAsyncProducerFromClient"):
			constructed = append(constructed, made{call, "sarama." + fn.Name(), "wrap it with (*sarama.Shadow).SyncProducer from adapters/slsarama, or add the Shadow to Config.Producer.Interceptors"})
		}
		return true
	})
	if len(constructed) == 0 {
		return
	}
	saramaIntercepted := c.saramaInterceptors(body)
	for _, m := range constructed {
		if strings.HasPrefix(m.kind, "sarama.") && saramaIntercepted {
			continue
		}
		if c.wiredLater(m.call, parents, body, strings.HasPrefix(m.kind, "redis.")) {
			continue
		}
		if strings.HasPrefix(m.kind, "kgo.") && c.adminOnly(m.call, parents, body) {
			continue
		}
		c.report(analysis.Diagnostic{
			Pos: m.call.Pos(), End: m.call.End(), Category: "unwired",
			Message: fmt.Sprintf("%s client without shadowlane wiring: load-test work through it reaches production; %s", m.kind, m.fix),
		})
	}
}

// kgoHooked reports whether a kgo.NewClient call has a kgo.WithHooks option
// holding a shadowlane hook, or options it cannot see (opts...).
func (c *checker) kgoHooked(call *ast.CallExpr) bool {
	if call.Ellipsis.IsValid() {
		return true
	}
	for _, a := range call.Args {
		ac, ok := ast.Unparen(a).(*ast.CallExpr)
		if !ok {
			continue
		}
		if fn := c.callee(ac); isFunc(fn, kgoPath, "WithHooks") {
			for _, h := range ac.Args {
				if fromShadowlane(c.pass.TypesInfo.TypeOf(h)) {
					return true
				}
			}
		}
	}
	return false
}

// rmqIntercepted reports whether a rocketmq-client-go constructor call has
// a WithInterceptor option of package optPath (producer or consumer) with
// an interceptor that a shadowlane function or method returns, or options
// it cannot see (opts...).
func (c *checker) rmqIntercepted(call *ast.CallExpr, optPath string) bool {
	if call.Ellipsis.IsValid() {
		return true
	}
	for _, a := range call.Args {
		ac, ok := ast.Unparen(a).(*ast.CallExpr)
		if !ok || !isFunc(c.callee(ac), optPath, "WithInterceptor") {
			continue
		}
		for _, i := range ac.Args {
			if ic, ok := ast.Unparen(i).(*ast.CallExpr); ok && c.isShadowlaneCall(ic) {
				return true
			}
		}
	}
	return false
}

// saramaInterceptors reports whether the body assigns a shadowlane value
// to a Producer.Interceptors field.
func (c *checker) saramaInterceptors(body *ast.BlockStmt) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || found {
			return !found
		}
		for i, l := range as.Lhs {
			if s, ok := l.(*ast.SelectorExpr); ok && s.Sel.Name == "Interceptors" && i < len(as.Rhs) {
				ast.Inspect(as.Rhs[i], func(n ast.Node) bool {
					if e, ok := n.(ast.Expr); ok && fromShadowlane(c.pass.TypesInfo.TypeOf(e)) {
						found = true
					}
					return !found
				})
			}
		}
		return !found
	})
	return found
}

// wiredLater reports whether the client a constructor call returns reaches
// shadowlane in the same function: the call is itself an argument to a
// shadowlane function, or the variable/field it is stored in is later
// passed to one (or, for Redis, gets AddHook).
func (c *checker) wiredLater(call *ast.CallExpr, parents map[ast.Node]ast.Node, body *ast.BlockStmt, redis bool) bool {
	target, direct := c.binding(call, parents)
	if direct != nil {
		return c.isShadowlaneCall(direct)
	}
	return target != nil && c.passedTo(target, body, redis, c.isShadowlaneCall)
}

// adminOnly reports whether a kgo client is handed to kadm (an admin
// client: it creates and deletes topics and groups, it never carries a
// request's records) and used for nothing else in the function.
func (c *checker) adminOnly(call *ast.CallExpr, parents map[ast.Node]ast.Node, body *ast.BlockStmt) bool {
	isKadm := func(cl *ast.CallExpr) bool {
		fn := c.callee(cl)
		return fn != nil && fn.Pkg() != nil && fn.Pkg().Path() == "github.com/twmb/franz-go/pkg/kadm"
	}
	target, direct := c.binding(call, parents)
	if direct != nil {
		return isKadm(direct)
	}
	if target == nil || !c.passedTo(target, body, false, isKadm) {
		return false
	}
	// Any other use than Close and the kadm call: not admin-only.
	same := c.sameRef(target)
	other := false
	ast.Inspect(body, func(n ast.Node) bool {
		if other {
			return false
		}
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if same(n.X) && n.Sel.Name != "Close" {
				other = true
			}
		case *ast.CallExpr:
			if !isKadm(n) {
				for _, a := range n.Args {
					if same(a) {
						other = true
					}
				}
			}
		}
		return !other
	})
	return !other
}

// binding returns where a constructor's result goes: the variable or field
// it is stored in, or the call it is passed to directly.
func (c *checker) binding(call *ast.CallExpr, parents map[ast.Node]ast.Node) (target ast.Expr, direct *ast.CallExpr) {
	switch p := parents[call].(type) {
	case *ast.CallExpr:
		return nil, p
	case *ast.AssignStmt:
		for i, r := range p.Rhs {
			if r == call && i < len(p.Lhs) {
				target = p.Lhs[0]
				if len(p.Lhs) == len(p.Rhs) {
					target = p.Lhs[i]
				}
			}
		}
	case *ast.ValueSpec:
		if len(p.Names) > 0 {
			target = p.Names[0]
		}
	}
	return target, nil
}

// passedTo reports whether target is passed to a call accepted by want in
// body (or, with addHook, given AddHook with a shadowlane hook).
func (c *checker) passedTo(target ast.Expr, body *ast.BlockStmt, addHook bool, want func(*ast.CallExpr) bool) bool {
	same := c.sameRef(target)
	wired := false
	ast.Inspect(body, func(n ast.Node) bool {
		if wired {
			return false
		}
		cl, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if addHook {
			if s, ok := ast.Unparen(cl.Fun).(*ast.SelectorExpr); ok && s.Sel.Name == "AddHook" && same(s.X) {
				for _, a := range cl.Args {
					if fromShadowlane(c.pass.TypesInfo.TypeOf(a)) {
						wired = true
						return false
					}
				}
			}
		}
		if want(cl) {
			for _, a := range cl.Args {
				if same(a) {
					wired = true
					return false
				}
			}
		}
		return true
	})
	return wired
}

// sameRef returns a predicate matching expressions that name the same
// variable (by object) or field path (by text) as target.
func (c *checker) sameRef(target ast.Expr) func(ast.Expr) bool {
	if id, ok := ast.Unparen(target).(*ast.Ident); ok {
		obj := c.pass.TypesInfo.ObjectOf(id)
		return func(e ast.Expr) bool {
			x, ok := ast.Unparen(e).(*ast.Ident)
			return ok && obj != nil && c.pass.TypesInfo.ObjectOf(x) == obj
		}
	}
	want := render(c.pass.Fset, target)
	return func(e ast.Expr) bool { return render(c.pass.Fset, ast.Unparen(e)) == want }
}

func render(fset *token.FileSet, e ast.Expr) string {
	var b bytes.Buffer
	_ = format.Node(&b, fset, e)
	return b.String()
}

// isShadowlaneCall reports whether a call goes to a shadowlane function or
// method (goredis.Instrument, (*kafka.Shadow).Producer, ...).
func (c *checker) isShadowlaneCall(call *ast.CallExpr) bool {
	fn := c.callee(call)
	return fn != nil && fn.Pkg() != nil && isShadowlanePkg(fn.Pkg().Path())
}

// directive marks a deliberate exception: on the line of a finding or the
// line above it, "//lostctx:ok <reason>" silences that finding.
const directive = "//lostctx:ok"

func okLines(fset *token.FileSet, f *ast.File) map[int]bool {
	m := map[int]bool{}
	for _, cg := range f.Comments {
		for _, cm := range cg.List {
			if strings.HasPrefix(cm.Text, directive) {
				line := fset.Position(cm.Slash).Line
				m[line], m[line+1] = true, true
			}
		}
	}
	return m
}

// natsSends are the nats.go methods that send a message (core NATS
// publish and request, JetStream publish).
var natsSends = map[string]bool{
	"Publish": true, "PublishMsg": true, "PublishRequest": true, "PublishAsync": true, "PublishMsgAsync": true,
	"Request": true, "RequestMsg": true, "RequestWithContext": true, "RequestMsgWithContext": true,
}

// natsPublish reports a message sent with nats.go itself: a *nats.Conn
// publish or request, or a JetStream publish (package jetstream's
// Publisher or the legacy nats.JetStream). nats.go has no publish hook, so
// such a message keeps its production subject and carries no mark even
// when the context is marked; only the adapter's wrappers apply the rules.
func (c *checker) natsPublish(call *ast.CallExpr) {
	fn := c.callee(call)
	if fn == nil || fn.Pkg() == nil || !natsSends[fn.Name()] {
		return
	}
	path, recv := recvNamed(fn)
	switch {
	case path == natsPath && (recv == "Conn" || recv == "JetStream" || recv == "JetStreamContext"):
	case path == jetstreamPath && (recv == "Publisher" || recv == "JetStream"):
	default:
		return
	}
	pkg := path[strings.LastIndex(path, "/")+1:]
	if pkg == "nats.go" {
		pkg = "nats"
	}
	c.report(analysis.Diagnostic{
		Pos: call.Pos(), End: call.End(), Category: "unwired",
		Message: fmt.Sprintf("raw NATS publish (%s.%s.%s): nats.go has no publish hook, so a marked message would reach the production subject unmarked; publish through (*nats.Shadow).Conn(nc) or (*nats.Shadow).JetStream(js) from adapters/slnats", pkg, recv, fn.Name()),
	})
}

func (c *checker) report(d analysis.Diagnostic) {
	if c.ok[c.pass.Fset.Position(d.Pos).Line] {
		return
	}
	c.pass.Report(d)
}
