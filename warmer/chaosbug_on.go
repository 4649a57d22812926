//go:build chaosbug

package warmer

import (
	"os"

	"github.com/redis/go-redis/v9"
)

// A warmer built with -tags chaosbug can be made wrong on purpose, so the
// robustness suite (internal/chaos) shows that its checker catches each
// wrong warmer by the invariant it breaks. VISTA_WARMER_CHAOS_BUG names
// the way:
//
//	skipfence  writes go through without the lease or the fence, and the
//	           warmer believes it always holds the lease
//	dropevent  one event in a hundred is numbered but never sent
//	hashafter  an item event goes out before its hash is written
//	emptylist  a list that would empty a kind is let through
//
// make build never sets the tag; the release binary cannot do this.
var chaosBug = os.Getenv("VISTA_WARMER_CHAOS_BUG")

func bug(name string) bool { return chaosBug == name }

// unfencedScript is the fence script with its checks cut out: it runs
// the commands whoever holds the lease and whatever P:meta says.
var unfencedScript = redis.NewScript("#!lua\n" + hashWriteLua + runLua)

func bugScript() *redis.Script {
	if bug("skipfence") {
		return unfencedScript
	}
	return nil
}
