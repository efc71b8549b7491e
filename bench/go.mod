module github.com/shadowlane/shadowlane/bench

go 1.25.0

require github.com/shadowlane/shadowlane v0.0.0

replace github.com/shadowlane/shadowlane => ..
