//go:build !chaosbug

package warmer

import "github.com/redis/go-redis/v9"

// bug reports whether the warmer is made wrong on purpose in the given
// way. Only a build with the chaosbug tag can be (see chaosbug_on.go); in
// every other build it is false, and the compiler drops what it guards.
func bug(string) bool { return false }

// bugScript is the script a wrong warmer writes with; nil: the fence.
func bugScript() *redis.Script { return nil }
