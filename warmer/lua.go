package warmer

import (
	_ "embed" // the scripts below
	"strings"
)

// The Lua the warmer runs in Redis, one file a script (or a part of one),
// in warmer/lua/, so that it reads as Lua and is reviewed as Lua.
var (
	// fenceLua checks the fence: the lease is the writer's, P:meta holds
	// the epoch and seq the write expects.
	//go:embed lua/fence.lua
	fenceLua string
	// hashWriteLua defines hashwrite(a, b) and hashnew(a, b, clear), the
	// Lua functions behind hashWriteCmd, hashNewCmd and hashFreshCmd, for
	// the arguments ARGV[a..b].
	//go:embed lua/hashwrite.lua
	hashWriteLua string
	// runLua runs each command of ARGV after the fence.
	//go:embed lua/run.lua
	runLua string

	//go:embed lua/lease_renew.lua
	leaseRenewLua string
	//go:embed lua/lease_release.lua
	leaseReleaseLua string
	//go:embed lua/lease_clear.lua
	leaseClearLua string

	//go:embed lua/preflight.lua
	preflightLua string
)

func init() {
	// run.lua names the hash writes by their command names; they must agree.
	for _, name := range []string{hashWriteCmd, hashNewCmd, hashFreshCmd} {
		if !strings.Contains(runLua, "'"+name+"'") {
			panic("warmer/lua/run.lua does not name " + name)
		}
	}
}
