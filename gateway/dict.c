/* dict.c - string-keyed hash table used for correlation tables (stanza id -> pending request). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "gw.h"

struct dict_entry {
	struct dict_entry *next;
	uint32_t hash;
	void *value;
	char key[];
};

struct dict {
	struct dict_entry **buckets;
	size_t nbuckets;	/* always a power of two */
	size_t count;
};

/* FNV-1a: keys are stanza ids and addresses we generate or have already bounded in size. */
static uint32_t dict_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

struct dict *dict_new(void)
{
	struct dict *d = gw_xcalloc(1, sizeof(*d));

	d->nbuckets = 16;
	d->buckets = gw_xcalloc(d->nbuckets, sizeof(*d->buckets));
	return d;
}

void dict_free(struct dict *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct dict_entry *e = d->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(d->buckets);
	free(d);
}

static void dict_grow(struct dict *d)
{
	size_t n = d->nbuckets * 2;
	struct dict_entry **b = gw_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < d->nbuckets; i++) {
		struct dict_entry *e = d->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
}

static struct dict_entry **dict_slot(const struct dict *d, const char *key, uint32_t h)
{
	struct dict_entry **pp = &d->buckets[h & (d->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

void *dict_set(struct dict *d, const char *key, void *value)
{
	uint32_t h = dict_hash(key);
	struct dict_entry **pp = dict_slot(d, key, h), *e;
	size_t klen;

	if (*pp) {
		void *old = (*pp)->value;

		(*pp)->value = value;
		return old;
	}
	if (d->count >= d->nbuckets) {
		dict_grow(d);
		pp = dict_slot(d, key, h);
	}
	klen = strlen(key);
	e = gw_xmalloc(sizeof(*e) + klen + 1);
	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	d->count++;
	return NULL;
}

void *dict_get(const struct dict *d, const char *key)
{
	struct dict_entry **pp = dict_slot(d, key, dict_hash(key));

	return *pp ? (*pp)->value : NULL;
}

void *dict_del(struct dict *d, const char *key)
{
	struct dict_entry **pp = dict_slot(d, key, dict_hash(key)), *e = *pp;
	void *v;

	if (!e)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	d->count--;
	return v;
}

size_t dict_count(const struct dict *d)
{
	return d->count;
}

void dict_foreach(struct dict *d, void (*fn)(void *arg, const char *key, void *value), void *arg)
{
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct dict_entry *e = d->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;	/* fn may delete e */
			fn(arg, e->key, e->value);
		}
	}
}
