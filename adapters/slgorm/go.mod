module github.com/shadowlane/shadowlane/adapters/slgorm

go 1.26.0

require (
	github.com/shadowlane/shadowlane v0.0.0
	gorm.io/gorm v1.31.2
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/jinzhu/inflection v1.0.0 // indirect
	github.com/jinzhu/now v1.1.5 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)

replace github.com/shadowlane/shadowlane => ../..
