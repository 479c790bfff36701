"""The rules the state, cache and lease kits quote in their failures, in the words of
docs/backends.md, and the sections that state them."""

from __future__ import annotations

CONTRACTS = "docs/backends.md#backends-the-contracts"
STATE = "docs/backends.md#statebackend-bound-to-one-run"
CACHE = "docs/backends.md#cachebackend-shared-by-all-runs"
CAPABILITIES = "docs/backends.md#optional-capabilities"
LEASES = "docs/backends.md#leases-no-duplicate-work"
CRASH = "docs/backends.md#after-a-crash"
ENFORCED = "docs/backends.md#what-the-conformance-kit-enforces"

# -- every backend (CONTRACTS) --
BYTES = "every value a backend receives or returns is opaque bytes, returned exactly as stored"
BATCHES = (
    "all methods take batches, so that a networked backend can answer a whole level of the graph in one round trip"
)
EMPTY_BATCH = "an empty batch must be accepted and may do nothing"
NAMES = (
    "names are arbitrary strings: a backend that turns names into file names, URLs or key patterns must encode them "
    "so that no name escapes its place or lands on another's"
)
THREADS = (
    "the engine calls one backend object from several threads at once, and several backends may use one store "
    "at the same time: every method must be safe under that"
)
SHARED = "several backends, in this process and others, may use one store at the same time"
PERSISTS = "data outlives the backend and the factory that wrote it"  # ENFORCED

# -- StateBackend (STATE) --
ISOLATED = "the state backend holds everything one run stores and is bound to one run id"  # CONTRACTS
PUT_RESULTS = "put_results(results): store results by node id, overwriting"
GET_RESULTS = "get_results(node_ids) -> the stored ones; missing ids are left out"
RESULT_IDS = "result_ids() -> every node id with a stored result (what a resumed run skips)"
SKIPS = "mark_skipped(reasons): why nodes did not run; get_skip_reasons() -> every recorded reason of this run"
RUN_INFO = "set_run_info(info): merge run metadata; get_run_info() -> the metadata so far, plus created and updated"
UNKNOWN_RUN = "a run that has never been written has empty info, no results and is not listed"
STATE_CLOSE = "close(): release what this backend holds; calling it twice is harmless"
STAMPS = "the backend stamps created (first write of the run) and updated (every write) itself, as ISO-8601 UTC strings"

# -- optional capabilities of the state (CAPABILITIES) --
LIST_RUNS = (
    "list_runs() -> one dict per run with run_id, the run's info (created and updated included) and results "
    "(how many results are stored, as a decimal string); every value is a str"
)
DELETE_RUN = "delete_run(run_id) -> bool (whether it existed); it removes everything of one run"
TASK_RECORDS = (
    "put_task_records(Mapping[node_id, json str]) stores or replaces; get_task_records() -> dict[str, str]: node id "
    "to the JSON text exactly as written (not parsed), {} for a run without records"
)

# -- CacheBackend (CACHE) --
GET_MANY = "get_many(keys) -> live entries; missing and expired ones are left out"
SET_MANY = "set_many(items, ttl): store entries, overwriting (the new TTL replaces the old)"
TTL_ZERO = "ttl <= 0 means expired on arrival: get_many returns neither the new value nor the one it replaced"
EXPIRED = (
    "an entry past its TTL is never returned, and after delete_many or clear of its key it is gone for good; "
    "both count live entries only"
)
DELETE_MANY = "delete_many(keys) -> int: delete; return how many existed (a missing key counts 0, a repeated key once)"
CACHE_CLOSE = "close(): release connections; twice is harmless"
CLEAR = (
    "clear(prefix): delete every entry whose key starts with prefix (literally: %, _ and * are no wildcards; "
    "case-sensitive), return how many, counted as delete_many counts"
)
COUNT_ENTRIES = "count_entries(keys) -> how many distinct keys among keys have live entries, without reading them"

# -- Leases (LEASES, CRASH) --
ACQUIRE = "acquire_leases claims every name that is free, expired or already the owner's"
EXCLUSIVE = "a lease is an exclusive claim on a name, held by an owner token for ttl seconds unless renewed"
OWNER_ONLY = (
    "renew_leases and release_leases touch only names the owner still holds, so a driver never frees a lease it lost"
)
HOLDERS = "lease_holders(names) -> the owner token of each name held now (unexpired), free names left out"

# -- LimitStore (LIMITS) --
LIMITS = "docs/backends.md#limits-shared-by-every-run"
LIMIT_SETTINGS = (
    "set_limit stores a limit's settings for every run of the store; get_limits returns them; delete_limit removes "
    "the limit and returns whether it existed"
)
LIMIT_SLOTS = (
    "acquire_limit takes one of concurrency slots for a holder (0.0) or refuses (seconds to wait, > 0); a holder "
    "that holds a slot may ask again; release_limit frees its slot"
)
LIMIT_UNKNOWN = "acquire_limit of a limit that is not set returns None; pause_limit returns False"
LIMIT_PAUSE = "a paused limit refuses every new acquisition until it is resumed"
LIMIT_EXPIRY = "a slot expires ttl seconds after it was taken or renewed, so a holder that died frees it"
LIMIT_RATE = (
    "the rate admits burst acquisitions at once, then one per per/rate seconds; a refusal says how long to wait"
)
LIMIT_ATOMIC = "acquisitions from many threads and processes at once never hand out more slots than the concurrency"
