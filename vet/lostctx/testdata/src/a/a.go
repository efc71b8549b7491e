package a

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"google.golang.org/grpc"
	"gorm.io/gorm"
)

type store struct {
	db   *sql.DB
	orm  *gorm.DB
	http *http.Client
}

// --- nocontext: database/sql ---

func (s *store) sqlCalls(ctx context.Context, tx *sql.Tx, st *sql.Stmt) error {
	s.db.Exec("DELETE FROM t")        // want `\(\*sql.DB\).Exec has no context, so the shadowlane mark is lost: use ExecContext\(ctx, ...\)`
	rows, _ := s.db.Query("SELECT 1") // want `\(\*sql.DB\).Query has no context`
	defer rows.Close()
	s.db.QueryRow("SELECT 1") // want `\(\*sql.DB\).QueryRow has no context`
	t, _ := s.db.Begin()      // want `\(\*sql.DB\).Begin has no context, so the shadowlane mark is lost: use BeginTx\(ctx, ...\)`
	_ = t
	p, _ := s.db.Prepare("SELECT 1") // want `\(\*sql.DB\).Prepare has no context`
	_ = p
	tx.Exec("UPDATE t SET a = 1")          // want `\(\*sql.Tx\).Exec has no context`
	tx.Stmt(st)                            // want `\(\*sql.Tx\).Stmt has no context`
	st.QueryRow(1)                         // want `\(\*sql.Stmt\).QueryRow has no context`
	s.db.ExecContext(ctx, "DELETE FROM t") // already passes ctx: fine
	return nil
}

// --- nocontext: net/http ---

func handler(w http.ResponseWriter, r *http.Request) {
	http.Get("http://pay.example/charge")                                 // want `http.Get has no context, so the shadowlane mark is lost: build the request with http.NewRequestWithContext\(r.Context\(\), ...\) and call Do`
	http.Post("http://pay.example", "text/plain", strings.NewReader("x")) // want `http.Post has no context`
	http.DefaultClient.Head("http://pay.example")                         // want `\(\*http.Client\).Head has no context`
	http.PostForm("http://pay.example", nil)                              // want `http.PostForm has no context`
	req, _ := http.NewRequest("GET", "http://pay.example", nil)           // want `http.NewRequest has no context, so the shadowlane mark is lost: use http.NewRequestWithContext\(r.Context\(\), ...\)`
	_ = req
	ok, _ := http.NewRequestWithContext(r.Context(), "GET", "http://pay.example", nil) // fine
	http.DefaultClient.Do(ok)                                                          // fine
}

// --- gorm ---

type order struct{ ID int }

func (s *store) gormCalls(ctx context.Context, db *gorm.DB) {
	var o order
	s.orm.Create(&o)                                // want `gorm chain runs Create without WithContext, so the shadowlane mark is lost: add .WithContext\(ctx\)`
	s.orm.Where("id = ?", 1).First(&o)              // want `gorm chain runs First without WithContext`
	db.Find(&o)                                     // want `gorm chain runs Find without WithContext`
	s.orm.WithContext(ctx).Where("id = 1").Find(&o) // fine
	q := s.orm.WithContext(ctx)
	q.Where("id = 1").Save(&o) // fine: the local variable carries the context
	bare := s.orm.Model(&o)
	bare.Updates(&o) // want `gorm chain runs Updates without WithContext`
	s.orm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Create(&o).Error // fine: Transaction's tx inherits the context
	})
}

// --- background ---

func (s *store) background(ctx context.Context) {
	s.db.QueryRowContext(context.Background(), "SELECT 1")              // want `context.Background\(\) in a function with context.Context ctx drops the shadowlane mark: use ctx`
	s.db.QueryRowContext(context.TODO(), "SELECT 1")                    // want `context.TODO\(\) in a function with context.Context ctx drops the shadowlane mark: use ctx`
	c, cancel := context.WithTimeout(context.Background(), time.Second) // want `context.Background\(\) in a function with context.Context ctx drops the shadowlane mark: use context.WithoutCancel\(ctx\)`
	defer cancel()
	_ = c
	go func() {
		s.db.ExecContext(context.Background(), "INSERT INTO audit VALUES (1)") // want `context.Background\(\) in a goroutine started in a function with context.Context ctx drops the shadowlane mark: use context.WithoutCancel\(ctx\)`
	}()
	go func() {
		s.db.Exec("INSERT INTO audit VALUES (3)") // want `\(\*sql.DB\).Exec has no context, so the shadowlane mark is lost: use ExecContext\(context.WithoutCancel\(ctx\), ...\)`
	}()
	go s.worker(context.Background()) // want `in a goroutine started in a function`
	// The right way to move work off the request: fine.
	go s.worker(context.WithoutCancel(ctx))
	d := context.WithoutCancel(ctx)
	go func() { s.db.ExecContext(d, "INSERT INTO audit VALUES (2)") }()
}

func (s *store) worker(ctx context.Context) {}

func ginHandler(c *gin.Context) {
	var db *sql.DB
	db.Exec("DELETE FROM t")                              // want `use ExecContext\(c.Request.Context\(\), ...\)`
	db.ExecContext(context.Background(), "DELETE FROM t") // want `in a function with \*gin.Context c drops the shadowlane mark: use c.Request.Context\(\)`
}

func stream(srv grpc.ServerStream) error {
	var db *sql.DB
	db.QueryRowContext(context.TODO(), "SELECT 1") // want `use srv.Context\(\)`
	return nil
}

func register(e *gin.Engine, db *sql.DB) {
	e.GET("/x", func(c *gin.Context) {
		go func() {
			db.ExecContext(context.Background(), "SELECT 1") // want `in a goroutine started in a function with \*gin.Context c`
		}()
	})
}

// --- look-alikes that must not be flagged ---

// No context in scope: nothing to pass.
func noContext(db *sql.DB) {
	db.Exec("DELETE FROM t")
	http.Get("http://example.com")
	db.ExecContext(context.Background(), "SELECT 1")
	var o order
	var g *gorm.DB
	g.Create(&o)
}

// An unnamed context cannot be used.
func unnamed(_ context.Context, db *sql.DB) { db.Exec("SELECT 1") }

// Methods named like database/sql's on other types.
type fakeDB struct{}

func (fakeDB) Exec(q string)  {}
func (fakeDB) Get(url string) {}

func lookAlike(ctx context.Context) {
	var f fakeDB
	f.Exec("DELETE FROM t")
	f.Get("http://example.com")
}

func init() {
	var db *sql.DB
	db.Exec("SELECT 1")
	_ = context.Background()
}
