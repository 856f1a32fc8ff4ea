/* store.c - the state store on SQLite: one table per store_table, cached statements, per-pass commits.
 *
 * Invariants:
 * - SQL text is built only in store_open(), from the constant table names below and the verb
 *   table; values and keys only ever reach SQLite as bound parameters.
 * - in_txn is 1 exactly while our BEGIN is open.  SQLite may roll a transaction back by itself
 *   (a full disk, an I/O error); store_txn_check() notices.  ops[] holds every write since the
 *   last successful COMMIT (recorded before SQLite sees it), so a failed commit loses nothing
 *   while the process lives: the next store_begin() replays them.
 * - The commit event is made active by every write: it runs once at the end of the current loop
 *   pass, whatever the number of writes.
 * - After a failed commit (failures > 0) writes are only recorded, not applied: the commit event
 *   becomes a timer that replays and commits every STORE_RETRY_S, so a full disk costs one
 *   attempt and at most a few log lines per second however many writes come, and never a replay
 *   per write.  store_get() reads the held writes first (held[], held_del[]).  A write replaces
 *   the one held for its key unless a delete of all of its k1 came between, so the held writes
 *   are bounded by the keys changed, and by STORE_MAX_HELD: beyond that a write of a new key
 *   is dropped, counted, and logged (again on the commit that ends the failure).
 * - A write SQLite refuses while the transaction stays open (a value it cannot bind) is dropped
 *   at once and logged: replaying it could never succeed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "dict.h"
#include "gw.h"
#include "store.h"

/* Bump when the schema changes, and teach store_schema() to upgrade from the previous one. */
#define STORE_SCHEMA_VERSION 2	/* 2: table policy */
#define STORE_RETRY_S 1		/* a failed commit is retried after this long, or sooner */
#define STORE_SQL_MAX 256
#define STORE_MAX_HELD 100000	/* writes kept for a commit that keeps failing */

#define STR_(x) #x
#define STR(x) STR_(x)

static const struct {
	const char *name;	/* the SQL table: a constant, never from input */
	const char *purpose;	/* kept in the CREATE statement, so `.schema` explains the file */
} store_tables[STORE_NTABLES] = {
	[STORE_XWATCH] = { "xwatch", "XMPP users watching a SIP presentity: k1 SIP URI, k2 bare JID" },
	[STORE_XDOC] = { "xdoc", "last PIDF document of a SIP presentity: k1 SIP URI, k2 the XMPP watcher's bare JID, or empty for the gateway's own dialog" },
	[STORE_SWATCH] = { "swatch", "SIP users watching an XMPP presentity: k1 bare JID, k2 the watcher as a bare JID" },
	[STORE_POLICY] = { "policy", "presence rules of a SIP presentity's owner: k1 SIP URI, k2 empty, val entity tag, newline, document" },
};

enum store_verb {
	SV_PUT,
	SV_DEL,
	SV_DEL_K1,
	SV_GET,
	SV_EACH,
	SV_EACH_K1,
	SV_COUNT,
	SV_N
};

/* Each statement is head + table name + tail: ?1 is k1, ?2 is k2, ?3 the value. */
static const struct {
	const char *name;	/* for logs */
	const char *head, *tail;
} store_verbs[SV_N] = {
	[SV_PUT] = { "put", "INSERT OR REPLACE INTO ", " (k1, k2, val) VALUES (?1, ?2, ?3)" },
	[SV_DEL] = { "delete", "DELETE FROM ", " WHERE k1 = ?1 AND k2 = ?2" },
	[SV_DEL_K1] = { "delete all of", "DELETE FROM ", " WHERE k1 = ?1" },
	[SV_GET] = { "get", "SELECT val FROM ", " WHERE k1 = ?1 AND k2 = ?2" },
	[SV_EACH] = { "walk", "SELECT k1, k2, val FROM ", " ORDER BY k1, k2" },
	[SV_EACH_K1] = { "walk", "SELECT k1, k2, val FROM ", " WHERE k1 = ?1 ORDER BY k2" },
	[SV_COUNT] = { "count", "SELECT count(*) FROM ", "" },
};

/* A write of the open transaction, kept until it is committed. */
struct store_op {
	enum store_table t;
	enum store_verb verb;	/* SV_PUT, SV_DEL or SV_DEL_K1 */
	const char *k1, *k2, *val;	/* into buf */
	size_t vlen;
	char *buf;
};

struct store {
	sqlite3 *db;
	char *path;
	struct event *commit_ev;
	sqlite3_stmt *stmt[STORE_NTABLES][SV_N];
	sqlite3_stmt *begin, *commit, *rollback;
	int in_txn;
	unsigned walking;		/* bit per table: inside store_foreach() on it */
	struct store_op *ops;
	size_t nops, ops_cap;
	struct dict *held;		/* while commits fail: "t\nk1\nk2" of a PUT or DEL -> the
					 * index + 1 of its latest write in ops[] */
	struct dict *held_del;		/* while commits fail: "t\nk1" -> index + 1 of its latest
					 * delete-all-of-k1 in ops[] */
	unsigned failures;		/* consecutive failed commits */
	unsigned long dropped;		/* writes dropped since the last commit */
	struct log_limit log;		/* errors: a full disk must not flood the log */
	unsigned long long *errors;	/* store_count_errors(), or NULL */
};

/* One failure, for the metrics (store_count_errors). */
static void store_error(struct store *s)
{
	if (s->errors)
		(*s->errors)++;
}

void store_count_errors(struct store *s, unsigned long long *counter)
{
	s->errors = counter;
}

const char *store_table_name(enum store_table t)
{
	return (unsigned)t < STORE_NTABLES ? store_tables[t].name : "?";
}

/* ---- transactions */

/* Notices a transaction SQLite rolled back on its own after an error. */
static void store_txn_check(struct store *s, const char *func)
{
	if (s->in_txn && sqlite3_get_autocommit(s->db)) {
		s->in_txn = 0;
		log_limited(&s->log, CONF_LOG_ERROR, func, "%s: SQLite rolled the transaction back; "
			    "its %zu writes are kept and will be replayed", s->path, s->nops);
	}
}

/* Steps a statement that returns no rows, and resets it.  Errors are logged for func. */
static int store_run(struct store *s, sqlite3_stmt *st, const char *func, const char *what,
		     enum store_table t)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		log_limited(&s->log, CONF_LOG_ERROR, func, "%s: %s%s%s: %s", s->path, what,
			    t < STORE_NTABLES ? " " : "",
			    t < STORE_NTABLES ? store_tables[t].name : "", sqlite3_errmsg(s->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		store_error(s);
		store_txn_check(s, func);
		return -1;
	}
	return 0;
}

static int store_bind_keys(struct store *s, sqlite3_stmt *st, const char *k1, const char *k2,
			   const char *func)
{
	if (sqlite3_bind_text(st, 1, k1, -1, SQLITE_STATIC) != SQLITE_OK ||
	    (k2 && sqlite3_bind_text(st, 2, k2, -1, SQLITE_STATIC) != SQLITE_OK)) {
		log_msg(CONF_LOG_ERROR, func, "%s: binding keys: %s", s->path,
			sqlite3_errmsg(s->db));
		store_error(s);
		sqlite3_clear_bindings(st);
		return -1;
	}
	return 0;
}

static int store_apply(struct store *s, const struct store_op *op, const char *func)
{
	sqlite3_stmt *st = s->stmt[op->t][op->verb];

	if (store_bind_keys(s, st, op->k1, op->k2, func) < 0)
		return -1;
	if (op->verb == SV_PUT &&
	    sqlite3_bind_blob64(st, 3, op->val, op->vlen, SQLITE_STATIC) != SQLITE_OK) {
		log_msg(CONF_LOG_ERROR, func, "%s: binding a value of %zu bytes: %s", s->path,
			op->vlen, sqlite3_errmsg(s->db));
		store_error(s);
		sqlite3_clear_bindings(st);
		return -1;
	}
	return store_run(s, st, func, store_verbs[op->verb].name, op->t);
}

/* A write SQLite refused inside an open transaction: it would fail again on every replay. */
static void store_op_drop(struct store *s, struct store_op *op, const char *func)
{
	log_limited(&s->log, CONF_LOG_ERROR, func, "%s: a %s of %s refused by SQLite is DROPPED",
		    s->path, store_verbs[op->verb].name, store_tables[op->t].name);
	s->dropped++;
	op->verb = SV_N;
}

static void store_held_index(struct store *s, size_t i);

/* Opens the transaction if none is open, applying ops[]: the writes of one SQLite rolled back
 * or that were held, then the last `fresh` ones, which are new (not logged as replayed). */
static int store_begin(struct store *s, size_t fresh, const char *func)
{
	if (s->in_txn)
		return 0;
	if (store_run(s, s->begin, func, "BEGIN", STORE_NTABLES) < 0)
		return -1;
	s->in_txn = 1;
	for (size_t i = 0; i < s->nops; i++) {
		if (s->ops[i].verb == SV_N)
			continue;	/* dropped */
		if (store_apply(s, &s->ops[i], func) == 0)
			continue;
		if (!s->in_txn)
			return -1;	/* rolled back (a full disk): all of them stay held */
		store_op_drop(s, &s->ops[i], func);
	}
	if (s->nops > fresh)
		log_limited(&s->log, CONF_LOG_NOTICE, func, "%s: replayed %zu uncommitted writes",
			    s->path, s->nops - fresh);
	return 0;
}

/* Before a read: writes SQLite rolled back must be back in place, or the read would lie. */
static int store_ready(struct store *s, const char *func)
{
	return !s->in_txn && s->nops ? store_begin(s, 0, func) : 0;
}

static void store_ops_clear(struct store *s)
{
	for (size_t i = 0; i < s->nops; i++)
		free(s->ops[i].buf);
	if (dict_count(s->held) || dict_count(s->held_del)) {
		dict_free(s->held);
		dict_free(s->held_del);
		s->held = dict_new();
		s->held_del = dict_new();
	}
	s->nops = 0;
	if (s->ops_cap > 1024) {	/* do not keep a burst's array for ever */
		free(s->ops);
		s->ops = NULL;
		s->ops_cap = 0;
	}
}

/* A commit (or the replay before it) failed: from now on writes are held and coalesced, and a
 * timer retries every STORE_RETRY_S. */
static void store_failed(struct store *s, const char *what, const char *func)
{
	static const struct timeval retry = { STORE_RETRY_S, 0 };

	if (!s->failures++)
		for (size_t i = 0; i < s->nops; i++)
			store_held_index(s, i);
	log_limited(&s->log, CONF_LOG_ERROR, func, "%s: %s FAILED (attempt %u): %zu writes are "
		    "not saved yet; retrying every %d s", s->path, what, s->failures, s->nops,
		    STORE_RETRY_S);
	if (!evtimer_pending(s->commit_ev, NULL))
		evtimer_add(s->commit_ev, &retry);
}

static int store_commit(struct store *s, const char *func)
{
	if (s->walking) {
		log_msg(CONF_LOG_ERROR, func, "%s: cannot commit inside store_foreach()", s->path);
		return -1;
	}
	if (store_ready(s, func) < 0)
		goto fail;
	if (!s->in_txn)
		return 0;
	if (store_run(s, s->commit, func, "COMMIT", STORE_NTABLES) < 0)
		goto fail;
	s->in_txn = 0;
	if (s->failures) {
		log_msg(CONF_LOG_NOTICE, func, "%s: committed after %u failed attempts", s->path,
			s->failures);
		evtimer_del(s->commit_ev);	/* the retry is done */
	}
	if (s->dropped)
		log_msg(CONF_LOG_ERROR, func, "%s: %lu writes were DROPPED since the last commit: "
			"what is on disk is older than the gateway's state for them", s->path,
			s->dropped);
	s->failures = 0;
	s->dropped = 0;
	store_ops_clear(s);
	return 0;

fail:
	store_failed(s, "COMMIT", func);
	return -1;
}

static void store_on_pass(evutil_socket_t fd, short what, void *arg)
{
	store_commit(arg, "store_commit");
}

/* ---- opening */

static int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st, char *err,
			 size_t errlen)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s: %s (preparing \"%s\")", s->path, sqlite3_errmsg(s->db),
			 sql);
		return -1;
	}
	return 0;
}

/* Runs one statement that returns at most one row, and copies its first column as an integer
 * (when out is not NULL) or text (when text is not NULL). */
static int store_query1(struct store *s, const char *sql, long long *out, char *text,
			size_t textlen, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	if (out)
		*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (text)
		snprintf(text, textlen, "%s", rc == SQLITE_ROW && sqlite3_column_text(st, 0) ?
			 (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	return 0;

fail:
	snprintf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return -1;
}

static int store_exec(struct store *s, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

/* Creates the schema in an empty database, or checks the version of an existing one. */
static int store_schema(struct store *s, char *err, size_t errlen)
{
	char sql[STORE_SQL_MAX * 2];
	long long version, ntables = 0;

	if (store_query1(s, "PRAGMA user_version", &version, NULL, 0, err, errlen) < 0)
		return -1;
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this gateway's (%d): "
			 "it was written by a later simplegw; refusing to touch it", s->path,
			 version, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (version < 0) {
		snprintf(err, errlen, "%s: schema version %lld is not one of ours", s->path, version);
		return -1;
	}
	/* version 0: a new file, unless it holds someone else's tables */
	if (version == 0 &&
	    store_query1(s, "SELECT count(*) FROM sqlite_master", &ntables, NULL, 0, err,
			 errlen) < 0)
		return -1;
	if (version == 0 && ntables) {
		snprintf(err, errlen, "%s: holds %lld tables but no simplegw schema version: not a "
			 "simplegw state database", s->path, ntables);
		return -1;
	}
	/* new, or an earlier version: the tables it lacks are added (every version so far only
	 * added tables) */
	if (store_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	for (int t = 0; t < STORE_NTABLES; t++) {
		snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s ( -- %s\n"
			 "  k1 TEXT NOT NULL, k2 TEXT NOT NULL, val BLOB NOT NULL,\n"
			 "  PRIMARY KEY (k1, k2)) WITHOUT ROWID", store_tables[t].name,
			 store_tables[t].purpose);
		if (store_exec(s, sql, err, errlen) < 0)
			goto fail;
	}
	if (store_exec(s, "PRAGMA user_version = " STR(STORE_SCHEMA_VERSION), err, errlen) < 0 ||
	    store_exec(s, "COMMIT", err, errlen) < 0)
		goto fail;
	return 0;

fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Creates a missing file ourselves: SQLite would make it 0644, and this is users' presence. */
static int store_create_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	/* it says who watches whom: for the gateway's user only (SQLite gives -wal and -shm the
	 * database's mode when it creates them; existing ones are fixed here too) */
	if ((st.st_mode & 077) && fchmod(fd, 0600) == 0)
		log_notice("%s was mode %04o, readable or writable by others: now 0600", path,
			   (unsigned)(st.st_mode & 07777));
	close(fd);
	for (int i = 0; i < 2; i++) {
		char *side = gw_xasprintf("%s%s", path, i ? "-shm" : "-wal");

		if (stat(side, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) &&
		    chmod(side, 0600) == 0)
			log_notice("%s was mode %04o: now 0600", side, (unsigned)(st.st_mode & 07777));
		free(side);
	}
	return 0;
}

struct store *store_open(struct event_base *base, const char *path, char *err, size_t errlen)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int memory = path && strcmp(path, ":memory:") == 0;
	char mode[32], sql[STORE_SQL_MAX];
	struct store *s = NULL;

	if (!base || !path || !*path) {
		snprintf(err, errlen, "store_open: no event base or no path");
		return NULL;
	}
	if (!memory && store_create_file(path, err, errlen) < 0)
		return NULL;
	s = gw_xcalloc(1, sizeof(*s));
	s->path = gw_xstrdup(path);
	s->held = dict_new();
	s->held_del = dict_new();
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* the version first: a newer gateway's file is not touched at all, and reading it is what
	 * finds out a file that is not a database */
	if (store_schema(s, err, errlen) < 0)
		goto fail;
	if (store_query1(s, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode), err,
			 errlen) < 0 ||
	    store_exec(s, "PRAGMA synchronous = NORMAL", err, errlen) < 0)
		goto fail;
	if (strcmp(mode, memory ? "memory" : "wal") != 0)
		log_warn("%s: journal mode is %s, not WAL", path, mode);
	for (int t = 0; t < STORE_NTABLES; t++) {
		for (int v = 0; v < SV_N; v++) {
			snprintf(sql, sizeof(sql), "%s%s%s", store_verbs[v].head,
				 store_tables[t].name, store_verbs[v].tail);
			if (store_prepare(s, sql, &s->stmt[t][v], err, errlen) < 0)
				goto fail;
		}
	}
	if (store_prepare(s, "BEGIN IMMEDIATE", &s->begin, err, errlen) < 0 ||
	    store_prepare(s, "COMMIT", &s->commit, err, errlen) < 0 ||
	    store_prepare(s, "ROLLBACK", &s->rollback, err, errlen) < 0)
		goto fail;
	s->commit_ev = event_new(base, -1, 0, store_on_pass, s);
	if (!s->commit_ev) {
		snprintf(err, errlen, "%s: cannot create the commit event", path);
		goto fail;
	}
	return s;

fail:
	store_free(s);
	return NULL;
}

/* ---- access */

static int store_check(struct store *s, enum store_table t, const char *k1, const char *func)
{
	if (!s || (unsigned)t >= STORE_NTABLES || !k1) {
		log_msg(CONF_LOG_ERROR, func, "no store, table %d or key", (int)t);
		return -1;
	}
	return 0;
}

/* Fills op with a copy of the write. */
static void store_op_set(struct store_op *op, enum store_table t, enum store_verb verb,
			 const char *k1, const char *k2, const char *val, size_t vlen)
{
	size_t l1 = strlen(k1), l2 = k2 ? strlen(k2) : 0;
	char *p = gw_xmalloc(l1 + l2 + vlen + 3);

	op->buf = p;
	op->t = t;
	op->verb = verb;
	op->k1 = memcpy(p, k1, l1 + 1);
	p += l1 + 1;
	op->k2 = k2 ? memcpy(p, k2, l2 + 1) : NULL;
	p += l2 + 1;
	op->val = p;
	op->vlen = vlen;
	if (vlen)
		memcpy(p, val, vlen);
	p[vlen] = '\0';
}

/* The key of a write in held[] ("t\nk1\nk2") or, k2 NULL, in held_del[] ("t\nk1").  Returns a
 * string the caller frees. */
static char *store_held_key(enum store_table t, const char *k1, const char *k2)
{
	return k2 ? gw_xasprintf("%d\n%s\n%s", (int)t, k1, k2) : gw_xasprintf("%d\n%s", (int)t, k1);
}

/* Enters ops[i] in held[] or held_del[]. */
static void store_held_index(struct store *s, size_t i)
{
	const struct store_op *op = &s->ops[i];
	char *key;

	if (op->verb == SV_N)
		return;
	key = store_held_key(op->t, op->k1, op->verb == SV_DEL_K1 ? NULL : op->k2 ? op->k2 : "");
	dict_set(op->verb == SV_DEL_K1 ? s->held_del : s->held, key, (void *)(uintptr_t)(i + 1));
	free(key);
}

/* While commits fail: the index + 1 in ops[] of the latest held write that decides (t, k1, k2),
 * or 0 if none does (the database does).  A write held before a delete of all of k1 does not. */
static size_t store_held_find(const struct store *s, enum store_table t, const char *k1,
			      const char *k2)
{
	char *key = store_held_key(t, k1, k2 ? k2 : ""), *kd = store_held_key(t, k1, NULL);
	size_t at = (size_t)(uintptr_t)dict_get(s->held, key);
	size_t del = (size_t)(uintptr_t)dict_get(s->held_del, kd);

	free(key);
	free(kd);
	return at > del ? at : del;
}

/* Records a write in ops[], or returns NULL if it is dropped.  While commits fail, a write
 * replaces the one held for its key (unless a delete of all of k1 came after that one);
 * otherwise ops[] is one pass's writes and is simply appended to. */
static struct store_op *store_record(struct store *s, enum store_table t, enum store_verb verb,
				     const char *k1, const char *k2, const char *val, size_t vlen,
				     const char *func)
{
	struct store_op *op = NULL;
	size_t at;

	if (s->failures && verb != SV_DEL_K1 && (at = store_held_find(s, t, k1, k2)) &&
	    s->ops[at - 1].verb != SV_DEL_K1) {
		op = &s->ops[at - 1];
		free(op->buf);
		store_op_set(op, t, verb, k1, k2, val, vlen);
		return op;
	}
	if (s->nops >= STORE_MAX_HELD) {
		s->dropped++;
		store_error(s);
		log_limited(&s->log, CONF_LOG_ERROR, func, "%s: %zu writes held for a commit that "
			    "keeps failing: a %s of %s is DROPPED", s->path, s->nops,
			    store_verbs[verb].name, store_tables[t].name);
		return NULL;
	}
	if (s->nops == s->ops_cap) {
		s->ops_cap = s->ops_cap ? 2 * s->ops_cap : 16;
		s->ops = gw_xrealloc(s->ops, s->ops_cap * sizeof(*s->ops));
	}
	op = &s->ops[s->nops++];
	store_op_set(op, t, verb, k1, k2, val, vlen);
	if (s->failures)
		store_held_index(s, s->nops - 1);
	return op;
}

/* Records a write, applies it to the open transaction, and asks for a commit at the end of
 * this pass (or leaves it to the retry timer while commits fail). */
static int store_write(struct store *s, enum store_table t, enum store_verb verb,
		       const char *k1, const char *k2, const char *val, size_t vlen,
		       const char *func)
{
	struct store_op *op;
	int ok;

	if (s->walking & (1u << t)) {
		log_msg(CONF_LOG_ERROR, func, "%s: cannot write to %s inside store_foreach() on it",
			s->path, store_tables[t].name);
		return -1;
	}
	if (!(op = store_record(s, t, verb, k1, k2, val, vlen, func)))
		return -1;
	if (!s->in_txn && s->failures) {
		ok = 1;		/* held: the retry replays it, store_get() sees it meanwhile */
	} else if (!s->in_txn) {
		ok = store_begin(s, 1, func) == 0;	/* replays held writes, then this one */
	} else if (!(ok = store_apply(s, op, func) == 0) && s->in_txn) {
		store_op_drop(s, op, func);	/* SQLite refused this one write */
		return -1;
	}
	if (!ok)
		store_failed(s, "REPLAY", func);
	else if (!s->failures)
		event_active(s->commit_ev, EV_TIMEOUT, 0);
	/* else the retry timer commits */
	return 0;
}

int store_put(struct store *s, enum store_table t, const char *k1, const char *k2,
	      const char *val, size_t vlen)
{
	if (store_check(s, t, k1, __func__) < 0)
		return -1;
	if (!k2 || (!val && vlen)) {
		log_error("%s: no k2 or no value", store_tables[t].name);
		return -1;
	}
	return store_write(s, t, SV_PUT, k1, k2, val, vlen, __func__);
}

int store_del(struct store *s, enum store_table t, const char *k1, const char *k2)
{
	if (store_check(s, t, k1, __func__) < 0)
		return -1;
	return store_write(s, t, k2 ? SV_DEL : SV_DEL_K1, k1, k2, NULL, 0, __func__);
}

int store_get(struct store *s, enum store_table t, const char *k1, const char *k2, char **val,
	      size_t *vlen)
{
	sqlite3_stmt *st;
	const char *v;
	int rc, ret = -1;
	size_t n;

	*val = NULL;
	if (vlen)
		*vlen = 0;
	if (store_check(s, t, k1, __func__) < 0)
		return -1;
	if (!k2) {
		log_error("%s: no k2", store_tables[t].name);
		return -1;
	}
	if (s->failures && !s->in_txn) {
		/* writes are held, not in SQLite: the latest held one for the key decides */
		size_t at = store_held_find(s, t, k1, k2);
		const struct store_op *op = at ? &s->ops[at - 1] : NULL;

		if (op && op->verb == SV_PUT) {
			*val = gw_xmalloc(op->vlen + 1);
			memcpy(*val, op->val, op->vlen + 1);
			if (vlen)
				*vlen = op->vlen;
			return 1;
		}
		if (op && op->verb != SV_N)
			return 0;	/* deleted (SV_N: dropped, the database decides) */
	} else if (store_ready(s, __func__) < 0) {
		return -1;
	}
	st = s->stmt[t][SV_GET];
	if (store_bind_keys(s, st, k1, k2, __func__) < 0)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* column_text: the bytes as stored, with a NUL after them */
		v = (const char *)sqlite3_column_text(st, 0);
		n = (size_t)sqlite3_column_bytes(st, 0);
		if (!v && n) {
			log_error("%s: reading a value from %s: %s", s->path, store_tables[t].name,
				  sqlite3_errmsg(s->db));
			goto out;
		}
		*val = gw_xmalloc(n + 1);
		if (n)
			memcpy(*val, v, n);
		(*val)[n] = '\0';
		if (vlen)
			*vlen = n;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		log_error("%s: get %s: %s", s->path, store_tables[t].name, sqlite3_errmsg(s->db));
	}

out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (ret < 0) {
		store_error(s);
		store_txn_check(s, __func__);
	}
	return ret;
}

int store_foreach(struct store *s, enum store_table t, const char *k1,
		  int (*fn)(void *arg, const char *k1, const char *k2, const char *val,
			    size_t vlen),
		  void *arg)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (store_check(s, t, "", __func__) < 0)
		return -1;
	if (s->walking & (1u << t)) {
		log_error("%s: store_foreach() on %s from inside a walk of it", s->path,
			  store_tables[t].name);
		return -1;
	}
	if (store_ready(s, __func__) < 0)
		return -1;
	st = s->stmt[t][k1 ? SV_EACH_K1 : SV_EACH];
	if (k1 && store_bind_keys(s, st, k1, NULL, __func__) < 0)
		return -1;
	s->walking |= 1u << t;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *r1 = (const char *)sqlite3_column_text(st, 0);
		const char *r2 = (const char *)sqlite3_column_text(st, 1);
		const char *v = (const char *)sqlite3_column_text(st, 2);
		size_t n = (size_t)sqlite3_column_bytes(st, 2);

		if (!r1 || !r2 || (!v && n)) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (fn(arg, r1, r2, v ? v : "", n)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc == SQLITE_DONE)
		ret = 0;
	else
		log_error("%s: walk %s: %s", s->path, store_tables[t].name,
			  rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
	s->walking &= ~(1u << t);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (ret < 0) {
		store_error(s);
		store_txn_check(s, __func__);
	}
	return ret;
}

size_t store_count(struct store *s, enum store_table t)
{
	sqlite3_stmt *st;
	long long n = 0;

	if (store_check(s, t, "", __func__) < 0 || store_ready(s, __func__) < 0)
		return 0;
	st = s->stmt[t][SV_COUNT];
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else {
		log_error("%s: count %s: %s", s->path, store_tables[t].name,
			  sqlite3_errmsg(s->db));
		store_error(s);
	}
	sqlite3_reset(st);
	return n > 0 ? (size_t)n : 0;
}

int store_flush(struct store *s)
{
	if (!s) {
		log_error("no store");
		return -1;
	}
	return store_commit(s, __func__);
}

size_t store_unsaved(const struct store *s, unsigned long *dropped)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nops; i++)
		n += s->ops[i].verb != SV_N;
	if (dropped)
		*dropped = s->dropped;
	return n;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	if (s->commit_ev && (s->in_txn || s->nops) && store_commit(s, __func__) < 0) {
		log_error("%s: closing with %zu writes that could not be saved: they are LOST",
			  s->path, s->nops);
		if (s->in_txn)
			store_run(s, s->rollback, __func__, "ROLLBACK", STORE_NTABLES);
	}
	store_ops_clear(s);
	free(s->ops);
	dict_free(s->held);
	dict_free(s->held_del);
	for (int t = 0; t < STORE_NTABLES; t++)
		for (int v = 0; v < SV_N; v++)
			sqlite3_finalize(s->stmt[t][v]);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		log_error("%s: close: %s", s->path, sqlite3_errmsg(s->db));
	if (s->commit_ev)
		event_free(s->commit_ev);
	free(s->path);
	free(s);
}
