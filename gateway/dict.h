/* dict.h - a small string-keyed hash table (chained, power-of-two buckets, grows at load 1). */
#ifndef GW_DICT_H
#define GW_DICT_H

#include <stddef.h>

struct dict;

/* Creates an empty table.  Never returns NULL (allocation failure aborts). */
struct dict *dict_new(void);

/* Frees the table and its copies of the keys.  Values are the caller's: free them first
 * (dict_foreach) if the table owned them.  NULL is allowed. */
void dict_free(struct dict *d);

/* Inserts or replaces.  The key is copied; the value pointer is stored as is.
 * Returns the previous value for that key, or NULL. */
void *dict_set(struct dict *d, const char *key, void *value);

/* Returns the value stored under key, or NULL. */
void *dict_get(const struct dict *d, const char *key);

/* Removes key and returns its value (NULL if absent). */
void *dict_del(struct dict *d, const char *key);

size_t dict_count(const struct dict *d);

/* Calls fn for every entry.  fn may call dict_del() on the entry it was given, and only on it. */
void dict_foreach(struct dict *d, void (*fn)(void *arg, const char *key, void *value), void *arg);

#endif
