/* store.h - state that survives restarts, behind a small interface (SQLite now). */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>

/* A table is a set of rows (k1, k2) -> value.  Keys are NUL-terminated strings compared byte by
 * byte (UTF-8 sorts by code point); a value is any bytes.  Nothing about SQL shows here: another
 * backend (PostgreSQL) must be able to implement exactly this.
 *
 * Writes are batched: the first write after a commit opens a transaction, which is committed once
 * per event-loop pass (the store makes an event active on its base) or by store_flush().  Reads see
 * the store's own uncommitted writes.  A commit that fails is logged as an error and retried (on
 * the next pass, and on a timer): writes are kept in memory until a commit succeeds (so memory
 * grows while the database keeps failing), never dropped in silence.  Not thread-safe: one store,
 * one loop, one thread. */
struct store;
struct event_base;

/* One row per table in store_tables[] in store.c: its name and purpose. */
enum store_table {
	STORE_XWATCH,	/* k1 = SIP presentity URI, k2 = XMPP watcher bare JID, value = state text */
	STORE_XDOC,	/* k1 = SIP presentity URI, k2 = XMPP watcher bare JID, or "" for the
			 * gateway's own dialog (authorization migration), value = last PIDF document */
	STORE_SWATCH,	/* k1 = XMPP presentity bare JID, k2 = the SIP watcher as a bare JID, value = state */
	STORE_POLICY,	/* k1 = SIP presentity URI, k2 = "", value = the owner's presence rules as
			 * fetched: the HTTP entity tag, a newline, the document */
	STORE_NTABLES
};

/* Opens (creating if needed, mode 0600) the database at path; ":memory:" keeps it in memory, lost
 * on store_free().  Sets WAL and synchronous=NORMAL, creates the schema or checks its version, and
 * refuses a database written by a newer gateway.  base (borrowed; must outlive the store) runs the
 * per-pass commits.  Returns a new store (free with store_free), or NULL with the reason in err
 * (the caller's buffer of errlen bytes; nothing is logged). */
struct store *store_open(struct event_base *base, const char *path, char *err, size_t errlen);

/* Inserts or replaces the row (k1, k2).  k1, k2 and val are copied; val may be NULL when vlen is
 * 0.  Returns 0, or -1 (logged) and the row is as it was. */
int store_put(struct store *s, enum store_table t, const char *k1, const char *k2,
	      const char *val, size_t vlen);

/* Deletes the row (k1, k2), or with k2 NULL every row under k1.  Deleting nothing is not an
 * error.  Returns 0 or -1 (logged). */
int store_del(struct store *s, enum store_table t, const char *k1, const char *k2);

/* Looks up (k1, k2).  Found: *val is a new NUL-terminated copy of the value (the caller frees
 * it), *vlen (vlen may be NULL) its length without the NUL; returns 1.  Returns 0 when there is
 * no such row, -1 on error (logged); *val is then NULL. */
int store_get(struct store *s, enum store_table t, const char *k1, const char *k2, char **val,
	      size_t *vlen);

/* Calls fn for each row of table t (k1 NULL) or each row under k1, in key order (k1, then k2).
 * The strings are borrowed for the duration of the call; val is NUL-terminated too.  fn returning
 * non-zero stops the walk.  fn may read the store (store_get, store_count) but must not write to
 * table t nor walk it again: those calls fail with -1.  Returns 0 (also when fn stopped it) or -1
 * (logged). */
int store_foreach(struct store *s, enum store_table t, const char *k1,
		  int (*fn)(void *arg, const char *k1, const char *k2, const char *val,
			    size_t vlen),
		  void *arg);

/* Number of rows in table t (0 on error, logged).  This counts the table each call: callers that
 * need a count often should keep their own. */
size_t store_count(struct store *s, enum store_table t);

/* Commits pending writes now.  Returns 0, or -1 (logged) with the writes kept for a retry. */
int store_flush(struct store *s);

/* Writes not yet committed (held while commits fail), and writes dropped since the last
 * successful commit (dropped may be NULL). */
size_t store_unsaved(const struct store *s, unsigned long *dropped);

/* Commits (a failure is logged with the number of writes lost), closes and frees.  NULL is
 * allowed. */
void store_free(struct store *s);

/* Counts every failure from now on in *counter (a read, write, walk or count SQLite refused, a
 * BEGIN or COMMIT that failed, a write dropped): the metrics' store errors.  NULL: none. */
void store_count_errors(struct store *s, unsigned long long *counter);

/* The table's name in logs and in the database ("xwatch"...). */
const char *store_table_name(enum store_table t);

#endif
