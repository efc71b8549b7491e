// Package gorm is a stub of gorm.io/gorm for the analyzer tests.
package gorm

import "context"

type DB struct{ Error error }

func (db *DB) WithContext(ctx context.Context) *DB                  { return db }
func (db *DB) Where(q any, args ...any) *DB                         { return db }
func (db *DB) Model(v any) *DB                                      { return db }
func (db *DB) Create(v any) *DB                                     { return db }
func (db *DB) First(v any, conds ...any) *DB                        { return db }
func (db *DB) Find(v any, conds ...any) *DB                         { return db }
func (db *DB) Save(v any) *DB                                       { return db }
func (db *DB) Updates(v any) *DB                                    { return db }
func (db *DB) Transaction(fc func(tx *DB) error, opts ...any) error { return nil }
