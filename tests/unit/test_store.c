/* test_store.c - tests of the state store (gateway/store.h): a script per table, persistence, batching, refusals. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "gateway/gw.h"
#include "gateway/store.h"
#include "tests/unit/test.h"

static char tmpdir[PATH_MAX];

/* Expected failures log errors: keep them off stderr, where unexpected ones should stand out. */
static void quiet(int on)
{
	log_init("test_store", CONF_LOG_INFO, !on, 0, 0);
}

static char *tmp_path(const char *name)
{
	return gw_xasprintf("%s/%s", tmpdir, name);
}

static void remove_db(const char *path)
{
	char *p;

	unlink(path);
	p = gw_xasprintf("%s-wal", path);
	unlink(p);
	free(p);
	p = gw_xasprintf("%s-shm", path);
	unlink(p);
	free(p);
}

/* ---- walking: rows printed as "k1|k2=value;" with control bytes escaped */

struct walk {
	char out[4096];
	size_t len;
	int calls;
	int stop_after;		/* > 0: fn returns 1 on that call */
	struct store *s;	/* set: fn tries writes and reads while walking */
	enum store_table t;
	int write_same, write_other, get_same, nested;	/* results of those tries */
};

static void walk_add(struct walk *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n && w->len + 5 < sizeof(w->out); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20)
			w->len += (size_t)snprintf(w->out + w->len, sizeof(w->out) - w->len,
						   "\\x%02x", c);
		else
			w->out[w->len++] = (char)c;
	}
	w->out[w->len] = '\0';
}

static int walk_fn(void *arg, const char *k1, const char *k2, const char *val, size_t vlen)
{
	struct walk *w = arg;

	w->calls++;
	walk_add(w, k1, strlen(k1));
	walk_add(w, "|", 1);
	walk_add(w, k2, strlen(k2));
	walk_add(w, "=", 1);
	walk_add(w, val, vlen);
	walk_add(w, ";", 1);
	if (val[vlen] != '\0')
		walk_add(w, "[no NUL]", 8);
	if (w->s) {
		enum store_table other = (enum store_table)((w->t + 1) % STORE_NTABLES);
		char *v = NULL;

		quiet(1);
		w->write_same = store_put(w->s, w->t, "new", "row", "x", 1);
		w->nested = store_foreach(w->s, w->t, NULL, walk_fn, w);
		quiet(0);
		w->write_other = store_put(w->s, other, k1, k2, val, vlen);
		w->get_same = store_get(w->s, w->t, k1, k2, &v, NULL);
		free(v);
	}
	return w->stop_after && w->calls == w->stop_after;
}

/* ---- the script: run once per table, on a fresh in-memory store */

enum op { PUT, GET, DEL, COUNT, EACH, EACH_K1, OTHER_PUT, OTHER_COUNT };

/* Binary-ish values: quotes that would break naive SQL, UTF-8, a NUL in the middle. */
#define QUOTES "it's \"quoted\"; DROP TABLE xwatch; --"
#define UTF8 "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80"
#define PIDF "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:bob@sip.example'/>"

static const struct row {
	enum op op;
	const char *k1, *k2, *val;
	size_t vlen;		/* 0: strlen(val) */
	long long want;		/* store_* result, or the count */
	const char *want_str;	/* GET: the value; EACH: the rows */
} script[] = {
	{ COUNT, NULL, NULL, NULL, 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 0, NULL },
	{ EACH, NULL, NULL, NULL, 0, 0, "" },
	{ DEL, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 0, NULL },	/* absent: fine */
	{ PUT, "sip:bob@sip.example", "alice@xmpp.example", "pending", 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 1, "pending" },
	{ COUNT, NULL, NULL, NULL, 0, 1, NULL },
	{ PUT, "sip:bob@sip.example", "alice@xmpp.example", "active", 0, 0, NULL },	/* replace */
	{ GET, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 1, "active" },
	{ COUNT, NULL, NULL, NULL, 0, 1, NULL },
	{ GET, "sip:bob@sip.example", "Alice@xmpp.example", NULL, 0, 0, NULL },	/* case-sensitive */
	{ GET, "sip:bob@sip.example", "", NULL, 0, 0, NULL },
	{ PUT, "sip:bob@sip.example", "", PIDF, 0, 0, NULL },			/* k2 "" is a key */
	{ GET, "sip:bob@sip.example", "", NULL, 0, 1, PIDF },
	{ PUT, "sip:bob@sip.example", "carol@xmpp.example", QUOTES, 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "carol@xmpp.example", NULL, 0, 1, QUOTES },
	{ PUT, "sip:\xc3\xa9ve@sip.example", "d\xc3\xa9" "dal@xmpp.example", UTF8, 0, 0, NULL },
	{ GET, "sip:\xc3\xa9ve@sip.example", "d\xc3\xa9" "dal@xmpp.example", NULL, 0, 1, UTF8 },
	{ PUT, "sip:zed@sip.example", "a'b@xmpp.example", "a\0b\nc", 5, 0, NULL },	/* NUL inside */
	{ GET, "sip:zed@sip.example", "a'b@xmpp.example", NULL, 0, 1, "a\\x00b\\x0ac" },
	{ PUT, "sip:amy@sip.example", "bob@xmpp.example", "", 0, 0, NULL },		/* empty value */
	{ GET, "sip:amy@sip.example", "bob@xmpp.example", NULL, 0, 1, "" },
	{ COUNT, NULL, NULL, NULL, 0, 6, NULL },
	/* key order: k1 then k2, bytewise (UTF-8 after ASCII) */
	{ EACH, NULL, NULL, NULL, 0, 0,
	  "sip:amy@sip.example|bob@xmpp.example=;"
	  "sip:bob@sip.example|=" PIDF ";"
	  "sip:bob@sip.example|alice@xmpp.example=active;"
	  "sip:bob@sip.example|carol@xmpp.example=" QUOTES ";"
	  "sip:zed@sip.example|a'b@xmpp.example=a\\x00b\\x0ac;"
	  "sip:\xc3\xa9ve@sip.example|d\xc3\xa9" "dal@xmpp.example=" UTF8 ";" },
	{ EACH_K1, "sip:bob@sip.example", NULL, NULL, 0, 0,
	  "sip:bob@sip.example|=" PIDF ";"
	  "sip:bob@sip.example|alice@xmpp.example=active;"
	  "sip:bob@sip.example|carol@xmpp.example=" QUOTES ";" },
	{ EACH_K1, "sip:nobody@sip.example", NULL, NULL, 0, 0, "" },
	{ EACH_K1, "sip:bob@sip.exampl", NULL, NULL, 0, 0, "" },	/* not a prefix match */
	/* another table does not see these rows, nor do they see its */
	{ OTHER_COUNT, NULL, NULL, NULL, 0, 0, NULL },
	{ OTHER_PUT, "sip:bob@sip.example", "alice@xmpp.example", "other", 0, 0, NULL },
	{ OTHER_COUNT, NULL, NULL, NULL, 0, 1, NULL },
	{ GET, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 1, "active" },
	{ COUNT, NULL, NULL, NULL, 0, 6, NULL },
	/* delete one row, then every row under a k1 */
	{ DEL, "sip:bob@sip.example", "carol@xmpp.example", NULL, 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "carol@xmpp.example", NULL, 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 1, "active" },
	{ COUNT, NULL, NULL, NULL, 0, 5, NULL },
	{ DEL, "sip:bob@sip.example", NULL, NULL, 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "alice@xmpp.example", NULL, 0, 0, NULL },
	{ GET, "sip:bob@sip.example", "", NULL, 0, 0, NULL },
	{ COUNT, NULL, NULL, NULL, 0, 3, NULL },
	{ OTHER_COUNT, NULL, NULL, NULL, 0, 1, NULL },	/* untouched */
	{ DEL, "sip:bob@sip.example", NULL, NULL, 0, 0, NULL },	/* nothing left: fine */
	{ DEL, "sip:amy@sip.example", "", NULL, 0, 0, NULL },	/* "" is not NULL */
	{ COUNT, NULL, NULL, NULL, 0, 3, NULL },
	{ EACH, NULL, NULL, NULL, 0, 0,
	  "sip:amy@sip.example|bob@xmpp.example=;"
	  "sip:zed@sip.example|a'b@xmpp.example=a\\x00b\\x0ac;"
	  "sip:\xc3\xa9ve@sip.example|d\xc3\xa9" "dal@xmpp.example=" UTF8 ";" },
};

static void run_row(struct store *s, enum store_table t, size_t i, const struct row *r)
{
	enum store_table other = (enum store_table)((t + 1) % STORE_NTABLES);
	const char *tn = store_table_name(t);
	struct walk w = { .len = 0 };
	size_t vlen = r->val ? (r->vlen ? r->vlen : strlen(r->val)) : 0, n = 99;
	char *v = NULL;
	int rc;

	switch (r->op) {
	case PUT:
	case OTHER_PUT:
		CHECK_INT(store_put(s, r->op == PUT ? t : other, r->k1, r->k2, r->val, vlen),
			  r->want, "%s row %zu: put", tn, i);
		break;
	case GET:
		rc = store_get(s, t, r->k1, r->k2, &v, &n);
		CHECK_INT(rc, r->want, "%s row %zu: get (%s, %s)", tn, i, r->k1, r->k2);
		if (rc == 1) {
			walk_add(&w, v, n);
			CHECK_STR(w.out, r->want_str, "%s row %zu: value", tn, i);
			CHECK_INT(v[n], 0, "%s row %zu: NUL-terminated", tn, i);
		} else {
			CHECK(v == NULL && n == 0, "%s row %zu: nothing returned", tn, i);
		}
		free(v);
		break;
	case DEL:
		CHECK_INT(store_del(s, t, r->k1, r->k2), r->want, "%s row %zu: del", tn, i);
		break;
	case COUNT:
	case OTHER_COUNT:
		CHECK_INT(store_count(s, r->op == COUNT ? t : other), r->want, "%s row %zu: count",
			  tn, i);
		break;
	case EACH:
	case EACH_K1:
		CHECK_INT(store_foreach(s, t, r->op == EACH ? NULL : r->k1, walk_fn, &w), 0,
			  "%s row %zu: foreach", tn, i);
		CHECK_STR(w.out, r->want_str, "%s row %zu: rows walked", tn, i);
		break;
	}
}

static struct event_base *base;

static void test_script(void)
{
	char err[256] = "";

	for (int t = 0; t < STORE_NTABLES; t++) {
		struct store *s = store_open(base, ":memory:", err, sizeof(err));

		CHECK(s != NULL, "open :memory: (%s)", err);
		if (!s)
			return;
		for (size_t i = 0; i < NELEM(script); i++)
			run_row(s, (enum store_table)t, i, &script[i]);
		/* the same rows again after the pass committed them */
		event_base_loop(base, EVLOOP_NONBLOCK);
		run_row(s, (enum store_table)t, NELEM(script) - 1, &script[NELEM(script) - 1]);
		store_free(s);
	}
	store_free(NULL);
	CHECK_STR(store_table_name(STORE_XWATCH), "xwatch", "table name");
	CHECK_STR(store_table_name(STORE_NTABLES), "?", "table name out of range");
}

/* ---- calls the interface refuses */

static void test_misuse(void)
{
	char err[256] = "", *v = (char *)"x";
	struct store *s = store_open(base, ":memory:", err, sizeof(err));
	struct walk w = { .len = 0 };
	size_t n = 7;

	if (!s)
		return;
	quiet(1);
	CHECK_INT(store_put(s, STORE_XWATCH, NULL, "k2", "v", 1), -1, "put: k1 NULL");
	CHECK_INT(store_put(s, STORE_XWATCH, "k1", NULL, "v", 1), -1, "put: k2 NULL");
	CHECK_INT(store_put(s, STORE_XWATCH, "k1", "k2", NULL, 1), -1, "put: NULL value, length 1");
	CHECK_INT(store_put(s, STORE_NTABLES, "k1", "k2", "v", 1), -1, "put: bad table");
	CHECK_INT(store_put(s, (enum store_table)-1, "k1", "k2", "v", 1), -1, "put: table -1");
	CHECK_INT(store_del(s, STORE_XWATCH, NULL, NULL), -1, "del: k1 NULL");
	CHECK_INT(store_get(s, STORE_XWATCH, "k1", NULL, &v, &n), -1, "get: k2 NULL");
	CHECK(v == NULL && n == 0, "get: failure clears the outputs");
	CHECK_INT(store_get(s, STORE_NTABLES, "k1", "k2", &v, NULL), -1, "get: bad table");
	CHECK_INT(store_foreach(s, STORE_NTABLES, NULL, walk_fn, &w), -1, "foreach: bad table");
	CHECK_INT(store_count(s, STORE_NTABLES), 0, "count: bad table");
	CHECK_INT(store_flush(NULL), -1, "flush: NULL");
	quiet(0);
	CHECK_INT(store_put(s, STORE_XWATCH, "k1", "k2", NULL, 0), 0, "put: NULL value, length 0");
	CHECK_INT(store_get(s, STORE_XWATCH, "k1", "k2", &v, NULL), 1, "get without vlen");
	CHECK_STR(v, "", "get: empty value");
	free(v);
	CHECK_INT(store_count(s, STORE_XWATCH), 1, "count after misuse: only the good put");
	store_free(s);
}

/* fn may read, and write other tables; writing its own table or walking it again fails */
static void test_walk_rules(void)
{
	char err[256] = "";
	struct store *s = store_open(base, ":memory:", err, sizeof(err));
	struct walk w = { .s = s, .t = STORE_XWATCH };

	if (!s)
		return;
	for (int i = 0; i < 5; i++) {
		char k1[16];

		snprintf(k1, sizeof(k1), "k%d", i);
		store_put(s, STORE_XWATCH, k1, "w", "v", 1);
	}
	store_flush(s);	/* the walk starts outside a transaction: the write inside opens one */
	w.stop_after = 3;
	CHECK_INT(store_foreach(s, STORE_XWATCH, NULL, walk_fn, &w), 0, "walk stopped by fn");
	CHECK_INT(w.calls, 3, "fn returning non-zero stops the walk");
	CHECK_INT(w.write_same, -1, "a write to the walked table fails");
	CHECK_INT(w.nested, -1, "walking the walked table again fails");
	CHECK_INT(w.write_other, 0, "a write to another table works");
	CHECK_INT(w.get_same, 1, "a read of the walked table works");
	CHECK_INT(store_count(s, STORE_XWATCH), 5, "the walked table is unchanged");
	CHECK_INT(store_count(s, (STORE_XWATCH + 1) % STORE_NTABLES), 3, "other table written");
	CHECK_INT(store_put(s, STORE_XWATCH, "after", "w", "v", 1), 0, "writes work after the walk");
	CHECK_INT(store_flush(s), 0, "flush after the walk");
	store_free(s);
}

/* ---- files: persistence, batching, refusals */

static long long raw_count(const char *path, const char *table)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *sql = gw_xasprintf("SELECT count(*) FROM %s", table);
	long long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	return n;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "raw_exec %s: %s\n", sql, db ? sqlite3_errmsg(db) : "?");
		exit(2);
	}
	sqlite3_close(db);
}

static void test_persistence(void)
{
	char *path = tmp_path("persist.db"), err[256] = "", *v = NULL;
	struct walk w = { .len = 0 };
	struct store *s;
	struct stat st;

	s = store_open(base, path, err, sizeof(err));
	CHECK(s != NULL, "persistence: open new file (%s)", err);
	if (!s)
		goto out;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "persistence: file is 0600");
	for (size_t i = 0; i < NELEM(script); i++)
		if (script[i].op == PUT)
			run_row(s, STORE_XDOC, i, &script[i]);
	store_put(s, STORE_SWATCH, "bob@xmpp.example", "sip:amy@sip.example", "active", 6);
	store_del(s, STORE_XDOC, "sip:bob@sip.example", "carol@xmpp.example");
	store_free(s);	/* commits: no loop pass ran */

	s = store_open(base, path, err, sizeof(err));
	CHECK(s != NULL, "persistence: reopen (%s)", err);
	if (!s)
		goto out;
	CHECK_INT(store_count(s, STORE_XDOC), 5, "persistence: rows after reopen");
	CHECK_INT(store_count(s, STORE_XWATCH), 0, "persistence: other table still empty");
	CHECK_INT(store_get(s, STORE_XDOC, "sip:bob@sip.example", "", &v, NULL), 1,
		  "persistence: PIDF row");
	CHECK_STR(v, PIDF, "persistence: PIDF value");
	free(v);
	CHECK_INT(store_get(s, STORE_SWATCH, "bob@xmpp.example", "sip:amy@sip.example", &v, NULL),
		  1, "persistence: swatch row");
	CHECK_STR(v, "active", "persistence: swatch value");
	free(v);
	CHECK_INT(store_foreach(s, STORE_XDOC, NULL, walk_fn, &w), 0, "persistence: walk");
	CHECK_STR(w.out,
		  "sip:amy@sip.example|bob@xmpp.example=;"
		  "sip:bob@sip.example|=" PIDF ";"
		  "sip:bob@sip.example|alice@xmpp.example=active;"
		  "sip:zed@sip.example|a'b@xmpp.example=a\\x00b\\x0ac;"
		  "sip:\xc3\xa9ve@sip.example|d\xc3\xa9" "dal@xmpp.example=" UTF8 ";",
		  "persistence: rows, replaced value and binary value intact");
	store_free(s);
out:
	remove_db(path);
	free(path);
}

#define BATCH 2000

/* Writes stay in one transaction until the loop pass ends (or store_flush): another connection
 * sees none of them before, all of them after. */
static void test_batching(void)
{
	char *path = tmp_path("batch.db"), err[256] = "", k1[32], k2[32];
	struct store *s = store_open(base, path, err, sizeof(err));
	int bad = 0;

	CHECK(s != NULL, "batching: open (%s)", err);
	if (!s)
		goto out;
	for (int i = 0; i < BATCH; i++) {
		snprintf(k1, sizeof(k1), "sip:u%d@sip.example", i / 10);
		snprintf(k2, sizeof(k2), "w%d@xmpp.example", i % 10);
		bad += store_put(s, STORE_XWATCH, k1, k2, "active", 6) != 0;
	}
	CHECK_INT(bad, 0, "batching: %d puts", BATCH);
	CHECK_INT(store_count(s, STORE_XWATCH), BATCH, "batching: the store sees its own writes");
	CHECK_INT(raw_count(path, "xwatch"), 0, "batching: nothing committed during the pass");
	CHECK(event_base_loop(base, EVLOOP_NONBLOCK) >= 0, "batching: loop pass");
	CHECK_INT(raw_count(path, "xwatch"), BATCH, "batching: all committed after one pass");

	store_del(s, STORE_XWATCH, "sip:u0@sip.example", NULL);
	store_put(s, STORE_XDOC, "sip:u1@sip.example", "", PIDF, strlen(PIDF));
	CHECK_INT(raw_count(path, "xwatch"), BATCH, "batching: a delete waits for the pass too");
	CHECK_INT(store_flush(s), 0, "batching: flush");
	CHECK_INT(raw_count(path, "xwatch"), BATCH - 10, "batching: flush commits");
	CHECK_INT(raw_count(path, "xdoc"), 1, "batching: flush commits every table");
	CHECK_INT(store_flush(s), 0, "batching: flush with nothing pending");
	CHECK(event_base_loop(base, EVLOOP_NONBLOCK) >= 0, "batching: pass after a flush");

	/* many writes in one pass, then flush, then reopen */
	for (int i = 0; i < BATCH; i++) {
		snprintf(k1, sizeof(k1), "sip:v%d@sip.example", i);
		bad += store_put(s, STORE_SWATCH, k1, "x@xmpp.example", "pending", 7) != 0;
	}
	CHECK_INT(store_flush(s), 0, "batching: flush %d more", BATCH);
	store_free(s);
	s = store_open(base, path, err, sizeof(err));
	CHECK(s != NULL, "batching: reopen (%s)", err);
	if (s) {
		CHECK_INT(store_count(s, STORE_SWATCH), BATCH, "batching: flushed rows after reopen");
		CHECK_INT(store_count(s, STORE_XWATCH), BATCH - 10, "batching: committed rows");
		CHECK_INT(store_count(s, STORE_XDOC), 1, "batching: xdoc after reopen");
	}
	store_free(s);
out:
	remove_db(path);
	free(path);
}

/* A commit that fails (the file may not grow: RLIMIT_FSIZE) keeps its writes and retries. */
static void test_commit_failure(void)
{
	char *path = tmp_path("full.db"), err[256] = "", *big = gw_xmalloc(256 * 1024), *v = NULL;
	struct store *s = store_open(base, path, err, sizeof(err));
	struct rlimit old, small;
	size_t n = 0, before;
	int rc;

	CHECK(s != NULL, "commit failure: open (%s)", err);
	if (!s)
		goto out;
	memset(big, 'p', 256 * 1024);
	store_put(s, STORE_XDOC, "sip:a@sip.example", "", "small", 5);
	store_flush(s);
	if (getrlimit(RLIMIT_FSIZE, &old) < 0) {
		perror("getrlimit");
		exit(2);
	}
	small = old;
	small.rlim_cur = 64 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	setrlimit(RLIMIT_FSIZE, &small);
	quiet(1);
	store_put(s, STORE_XDOC, "sip:b@sip.example", "", big, 256 * 1024);	/* may spill */
	store_put(s, STORE_XDOC, "sip:a@sip.example", "", "replaced", 8);
	rc = store_flush(s);
	quiet(0);
	CHECK_INT(rc, -1, "commit failure: flush fails while the file cannot grow");
	CHECK_INT(raw_count(path, "xdoc"), 1, "commit failure: nothing new on disk");
	CHECK_INT(store_get(s, STORE_XDOC, "sip:b@sip.example", "", &v, &n), 1,
		  "commit failure: the store still has the write");
	CHECK_INT(n, 256 * 1024, "commit failure: value length");
	free(v);
	v = NULL;

	/* while the disk stays full, writes of the same keys replace the ones held for them */
	quiet(1);
	for (int i = 0; i < 5000; i++) {
		char k1[32], val[32];

		snprintf(k1, sizeof(k1), "sip:w%d@sip.example", i % 10);
		snprintf(val, sizeof(val), "v%d", i);
		store_put(s, STORE_XWATCH, k1, "alice@xmpp.example", val, strlen(val));
		store_put(s, STORE_XDOC, "sip:a@sip.example", "", val, strlen(val));
	}
	store_put(s, STORE_XWATCH, "sip:w1@sip.example", "carol@xmpp.example", "x", 1);
	store_del(s, STORE_XWATCH, "sip:w1@sip.example", NULL);	/* all of w1 */
	store_put(s, STORE_XWATCH, "sip:w1@sip.example", "dave@xmpp.example", "d", 1);
	store_del(s, STORE_XWATCH, "sip:w2@sip.example", "alice@xmpp.example");
	CHECK(event_base_loop(base, EVLOOP_NONBLOCK) >= 0, "commit failure: loop pass");
	quiet(0);
	CHECK(store_unsaved(s, NULL) <= 16, "commit failure: %zu writes held for 10 002 keys "
	      "changed 10 014 times", store_unsaved(s, NULL));
	CHECK_INT(store_get(s, STORE_XDOC, "sip:a@sip.example", "", &v, NULL), 1,
		  "commit failure: a held write is read back");
	CHECK_STR(v, "v4999", "commit failure: the latest held write");
	free(v);
	v = NULL;
	CHECK_INT(store_get(s, STORE_XWATCH, "sip:w1@sip.example", "alice@xmpp.example", &v,
			    NULL), 0, "commit failure: a held delete of all of k1 is read back");
	free(v);
	v = NULL;
	CHECK_INT(store_get(s, STORE_XWATCH, "sip:w1@sip.example", "dave@xmpp.example", &v,
			    NULL), 1, "commit failure: a write held after it is read back");
	free(v);
	v = NULL;
	CHECK_INT(store_get(s, STORE_XWATCH, "sip:w2@sip.example", "alice@xmpp.example", &v,
			    NULL), 0, "commit failure: a held delete is read back");
	free(v);
	v = NULL;

	store_put(s, STORE_XDOC, "sip:c@sip.example", "", "c", 1);
	/* distinct keys beyond STORE_MAX_HELD (100 000) are dropped and counted, not held */
	before = store_unsaved(s, NULL);
	quiet(1);
	for (int i = 0; i < 100010; i++) {
		char k1[32];

		snprintf(k1, sizeof(k1), "sip:f%d@sip.example", i);
		store_put(s, STORE_XWATCH, k1, "alice@xmpp.example", "f", 1);
	}
	quiet(0);
	{
		unsigned long dropped = 0;
		size_t held = store_unsaved(s, &dropped);

		CHECK_INT(held, 100000, "commit failure: writes held at most");
		CHECK_INT(dropped, 100010 - (100000 - before), "commit failure: the rest counted as "
			  "dropped");
	}
	for (int i = 0; i < 100010; i++) {	/* not to be committed by the retry below */
		char k1[32];

		snprintf(k1, sizeof(k1), "sip:f%d@sip.example", i);
		store_del(s, STORE_XWATCH, k1, "alice@xmpp.example");
	}

	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	/* the retry is on a timer (STORE_RETRY_S): writes do not trigger it while commits fail */
	CHECK(event_base_loop(base, EVLOOP_NONBLOCK) >= 0, "commit failure: loop pass");
	{
		struct timeval two = { 2, 0 };

		event_base_loopexit(base, &two);
		CHECK(event_base_dispatch(base) >= 0, "commit failure: loop for the retry");
	}
	CHECK_INT(store_unsaved(s, NULL), 0, "commit failure: nothing held after the retry");
	CHECK_INT(raw_count(path, "xdoc"), 3, "commit failure: retried and committed");
	/* w0, w3..w9 with alice; w1 with dave only; w2 deleted */
	CHECK_INT(raw_count(path, "xwatch"), 9, "commit failure: the held deletes and puts applied");
	store_free(s);
	s = store_open(base, path, err, sizeof(err));
	if (s) {
		CHECK_INT(store_get(s, STORE_XDOC, "sip:a@sip.example", "", &v, NULL), 1,
			  "commit failure: reopen");
		CHECK_STR(v, "v4999", "commit failure: the latest replace survived");
		free(v);
	}
	store_free(s);
out:
	free(big);
	remove_db(path);
	free(path);
}

enum refusal { R_NEWER, R_FOREIGN, R_RANDOM, R_NODIR, R_DIR, R_EMPTY_PATH };

static const struct {
	const char *what;
	enum refusal setup;
	const char *name;	/* in the temporary directory */
	const char *want;	/* a substring of the message */
} refusals[] = {
	{ "a newer schema version", R_NEWER, "newer.db", "schema version 3 is newer than this gateway's (2)" },
	{ "another program's database", R_FOREIGN, "foreign.db", "not a simplegw state database" },
	{ "random bytes", R_RANDOM, "random.db", "file is not a database" },
	{ "a directory that does not exist", R_NODIR, "nodir/state.db", "cannot open @/nodir/state.db: No such file or directory" },
	{ "a directory", R_DIR, "adir", "@/adir: Is a directory" },
	{ "an empty path", R_EMPTY_PATH, "", "no path" },
};

static void test_refusals(void)
{
	for (size_t i = 0; i < NELEM(refusals); i++) {
		char *path = refusals[i].setup == R_EMPTY_PATH ? gw_xstrdup("") :
			tmp_path(refusals[i].name);
		char *want = NULL, err[512] = "";
		struct store *s;
		const char *at;

		if (refusals[i].setup == R_NEWER) {
			store_free(store_open(base, path, err, sizeof(err)));
			raw_exec(path, "PRAGMA user_version = 3");
		} else if (refusals[i].setup == R_FOREIGN) {
			raw_exec(path, "CREATE TABLE accounts (name TEXT)");
		} else if (refusals[i].setup == R_RANDOM) {
			unsigned x = 12345;
			char junk[8192];
			FILE *f = fopen(path, "w");

			for (size_t j = 0; j < sizeof(junk); j++) {
				x = x * 1103515245u + 12345u;
				junk[j] = (char)(x >> 16);
			}
			if (!f || fwrite(junk, 1, sizeof(junk), f) != sizeof(junk) || fclose(f)) {
				perror(path);
				exit(2);
			}
		} else if (refusals[i].setup == R_DIR) {
			mkdir(path, 0700);
		}
		s = store_open(base, path, err, sizeof(err));
		CHECK(s == NULL, "refusal %s: opened", refusals[i].what);
		at = strchr(refusals[i].want, '@');
		want = at ? gw_xasprintf("%.*s%s%s", (int)(at - refusals[i].want), refusals[i].want,
					 tmpdir, at + 1) : gw_xstrdup(refusals[i].want);
		CHECK(strstr(err, want) != NULL, "refusal %s: message \"%s\", want \"%s\"",
		      refusals[i].what, err, want);
		store_free(s);
		if (refusals[i].setup == R_NEWER || refusals[i].setup == R_FOREIGN ||
		    refusals[i].setup == R_RANDOM) {
			/* refused, and left as it was */
			CHECK(access(path, F_OK) == 0, "refusal %s: file kept", refusals[i].what);
			remove_db(path);
		}
		if (refusals[i].setup == R_DIR)
			rmdir(path);
		free(want);
		free(path);
	}
}

/* A database of schema 1 (no policy table) is upgraded in place: its rows stay, the table it
 * lacks is added, and the version is 2. */
static void test_upgrade(void)
{
	char *path = tmp_path("v1.db"), err[512] = "", *val = NULL;
	struct store *s;

	raw_exec(path, "CREATE TABLE xwatch (k1 TEXT NOT NULL, k2 TEXT NOT NULL, val BLOB NOT NULL, "
		 "PRIMARY KEY (k1, k2)) WITHOUT ROWID; CREATE TABLE xdoc (k1 TEXT NOT NULL, k2 TEXT NOT "
		 "NULL, val BLOB NOT NULL, PRIMARY KEY (k1, k2)) WITHOUT ROWID; CREATE TABLE swatch (k1 "
		 "TEXT NOT NULL, k2 TEXT NOT NULL, val BLOB NOT NULL, PRIMARY KEY (k1, k2)) WITHOUT "
		 "ROWID; INSERT INTO xwatch VALUES ('sip:bob@sip.example', 'alice@xmpp.example', "
		 "'subscribed'); PRAGMA user_version = 1");
	s = store_open(base, path, err, sizeof(err));
	CHECK(s != NULL, "schema 1 not upgraded: %s", err);
	if (s) {
		CHECK(store_get(s, STORE_XWATCH, "sip:bob@sip.example", "alice@xmpp.example", &val,
				NULL) == 1 && val && strcmp(val, "subscribed") == 0,
		      "upgrade lost a row: %s", val ? val : "(none)");
		free(val);
		CHECK(store_put(s, STORE_POLICY, "sip:bob@sip.example", "", "\"e1\"\n<r/>", 9) == 0,
		      "the added table takes no row");
		store_free(s);
		s = store_open(base, path, err, sizeof(err));
		CHECK(s != NULL, "upgraded database refused: %s", err);
		val = NULL;
		CHECK(s && store_get(s, STORE_POLICY, "sip:bob@sip.example", "", &val, NULL) == 1,
		      "upgraded database lost the policy row");
		free(val);
		store_free(s);
	}
	remove_db(path);
	free(path);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_store.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	quiet(0);
	base = event_base_new();
	if (!base) {
		fprintf(stderr, "event_base_new failed\n");
		return 2;
	}
	test_script();
	test_misuse();
	test_walk_rules();
	test_persistence();
	test_batching();
	test_commit_failure();
	test_refusals();
	test_upgrade();
	event_base_free(base);
	if (rmdir(tmpdir) < 0)
		TEST_FAIL("temporary directory %s not empty: %s", tmpdir, strerror(errno));
	TEST_DONE();
}
