/* test_dict.c - tests of the string-keyed hash table (gateway/dict.h): a script of operations, growth, foreach. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gateway/dict.h"
#include "tests/unit/test.h"

/* Values are small integers stored as pointers; 0 means "NULL / absent". */
#define V(n) ((void *)(uintptr_t)(n))
#define N(p) ((long long)(uintptr_t)(p))

enum op { SET, GET, DEL, COUNT };

/* One script run against one table, in order; want is the value returned (or the count). */
static const struct {
	enum op op;
	const char *key;
	int value;
	long long want;
} script[] = {
	{ COUNT, NULL, 0, 0 },
	{ GET, "a", 0, 0 },
	{ DEL, "a", 0, 0 },
	{ SET, "a", 1, 0 },
	{ GET, "a", 0, 1 },
	{ COUNT, NULL, 0, 1 },
	{ SET, "a", 2, 1 },		/* replace returns the previous value */
	{ GET, "a", 0, 2 },
	{ COUNT, NULL, 0, 1 },		/* and does not add an entry */
	{ SET, "b", 3, 0 },
	{ SET, "", 4, 0 },		/* the empty string is a key like any other */
	{ GET, "", 0, 4 },
	{ COUNT, NULL, 0, 3 },
	{ GET, "A", 0, 0 },		/* keys are case-sensitive */
	{ GET, "a ", 0, 0 },
	{ GET, "ab", 0, 0 },
	{ SET, "ab", 5, 0 },
	{ GET, "a", 0, 2 },
	{ GET, "ab", 0, 5 },
	{ DEL, "a", 0, 2 },
	{ GET, "a", 0, 0 },
	{ GET, "ab", 0, 5 },
	{ DEL, "a", 0, 0 },		/* deleting twice is harmless */
	{ COUNT, NULL, 0, 3 },
	{ DEL, "", 0, 4 },
	{ GET, "", 0, 0 },
	{ SET, "", 6, 0 },
	{ GET, "", 0, 6 },
	{ SET, "null", 0, 0 },		/* a NULL value is stored, and reads as absent */
	{ GET, "null", 0, 0 },
	{ COUNT, NULL, 0, 4 },
	{ DEL, "null", 0, 0 },
	{ COUNT, NULL, 0, 3 },
	{ SET, "m1@sip-gw.example/ab-12", 7, 0 },	/* realistic correlation keys */
	{ SET, "gw-7f3a9c-m12", 8, 0 },
	{ GET, "m1@sip-gw.example/ab-12", 0, 7 },
	{ GET, "gw-7f3a9c-m12", 0, 8 },
	{ SET, "\xc3\xa9t\xc3\xa9", 9, 0 },
	{ GET, "\xc3\xa9t\xc3\xa9", 0, 9 },
	{ GET, "\xc3\xa9t\xc3", 0, 0 },
	{ COUNT, NULL, 0, 6 },
};

static void test_script(void)
{
	struct dict *d = dict_new();

	for (size_t i = 0; i < NELEM(script); i++) {
		const char *k = script[i].key;

		switch (script[i].op) {
		case SET:
			CHECK_INT(N(dict_set(d, k, V(script[i].value))), script[i].want,
				  "row %zu: dict_set(\"%s\", %d)", i, k, script[i].value);
			break;
		case GET:
			CHECK_INT(N(dict_get(d, k)), script[i].want, "row %zu: dict_get(\"%s\")", i, k);
			break;
		case DEL:
			CHECK_INT(N(dict_del(d, k)), script[i].want, "row %zu: dict_del(\"%s\")", i, k);
			break;
		case COUNT:
			CHECK_INT(dict_count(d), script[i].want, "row %zu: dict_count()", i);
			break;
		}
	}
	dict_free(d);
	dict_free(NULL);
}

#define MANY 100000

static void key_of(char *buf, size_t len, int i)
{
	snprintf(buf, len, "key-%d", i);
}

/* Growth from 16 buckets to well past 100k entries, with every key still found afterwards. */
static void test_growth(void)
{
	struct dict *d = dict_new();
	char k[32];
	int bad = 0;

	for (int i = 1; i <= MANY; i++) {
		key_of(k, sizeof(k), i);
		if (dict_set(d, k, V(i)) != NULL)
			bad++;
		if (dict_count(d) != (size_t)i)
			bad++;
	}
	CHECK_INT(bad, 0, "growth: %d inserts returned a value or miscounted", MANY);
	CHECK_INT(dict_count(d), MANY, "growth: count");
	bad = 0;
	for (int i = 1; i <= MANY; i++) {
		key_of(k, sizeof(k), i);
		if (N(dict_get(d, k)) != i)
			bad++;
	}
	CHECK_INT(bad, 0, "growth: lookups after growth");
	CHECK_INT(N(dict_get(d, "key-0")), 0, "growth: absent key");
	CHECK_INT(N(dict_get(d, "key-100001")), 0, "growth: absent key past the end");
	/* replace every odd one, delete every even one */
	bad = 0;
	for (int i = 1; i <= MANY; i++) {
		key_of(k, sizeof(k), i);
		if (i % 2) {
			if (N(dict_set(d, k, V(i + MANY))) != i)
				bad++;
		} else if (N(dict_del(d, k)) != i) {
			bad++;
		}
	}
	CHECK_INT(bad, 0, "growth: replace odd, delete even");
	CHECK_INT(dict_count(d), MANY / 2, "growth: count after deleting half");
	bad = 0;
	for (int i = 1; i <= MANY; i++) {
		key_of(k, sizeof(k), i);
		if (N(dict_get(d, k)) != (i % 2 ? i + MANY : 0))
			bad++;
	}
	CHECK_INT(bad, 0, "growth: lookups after replace and delete");
	dict_free(d);	/* LeakSanitizer checks every key copy went */
}

struct visit {
	struct dict *d;
	int seen[64];
	int calls;
	long long sum;
	int bad;
};

/* Deletes the entry it is given when its value is even. */
static void visit_delete_even(void *arg, const char *key, void *value)
{
	struct visit *v = arg;
	long long n = N(value);

	v->calls++;
	v->sum += n;
	if (n < 0 || n >= (long long)NELEM(v->seen) || v->seen[n]++)
		v->bad++;
	if (n % 2 == 0 && N(dict_del(v->d, key)) != n)
		v->bad++;
}

/* Deletes every entry it is given: the table must end empty. */
static void visit_delete_all(void *arg, const char *key, void *value)
{
	struct visit *v = arg;

	v->calls++;
	if (dict_del(v->d, key) != value)
		v->bad++;
}

static void visit_count(void *arg, const char *key, void *value)
{
	struct visit *v = arg;

	v->calls++;
	v->sum += N(value);
}

static void test_foreach(void)
{
	struct dict *d = dict_new();
	struct visit v = { .d = d };
	char k[32];

	dict_foreach(d, visit_count, &v);
	CHECK_INT(v.calls, 0, "foreach on an empty table");

	/* 40 entries: the table has grown past its first 16 buckets, so chains are long enough
	 * that deleting the current entry mid-chain matters */
	for (int i = 0; i < 40; i++) {
		key_of(k, sizeof(k), i);
		dict_set(d, k, V(i));
	}
	dict_set(d, "", V(40));
	dict_foreach(d, visit_delete_even, &v);
	CHECK_INT(v.calls, 41, "foreach visits every entry once while deleting");
	CHECK_INT(v.bad, 0, "foreach: no entry twice, deletes return the value");
	CHECK_INT(v.sum, 40 * 41 / 2, "foreach: sum of values");
	CHECK_INT(dict_count(d), 20, "foreach: odd entries left");
	CHECK_INT(N(dict_get(d, "")), 0, "foreach: empty key (even value) deleted");
	for (int i = 0; i < 40; i++) {
		key_of(k, sizeof(k), i);
		CHECK_INT(N(dict_get(d, k)), i % 2 ? i : 0, "foreach: after deleting evens, %s", k);
	}

	v = (struct visit){ .d = d };
	dict_foreach(d, visit_count, &v);
	CHECK_INT(v.calls, 20, "foreach after deletions");
	CHECK_INT(v.sum, 20 * 20, "foreach after deletions: sum of odd values");

	v = (struct visit){ .d = d };
	dict_foreach(d, visit_delete_all, &v);
	CHECK_INT(v.calls, 20, "foreach deleting everything");
	CHECK_INT(v.bad, 0, "foreach deleting everything: values");
	CHECK_INT(dict_count(d), 0, "foreach deleting everything: count");

	/* the table is still usable */
	CHECK_INT(N(dict_set(d, "again", V(1))), 0, "set after emptying");
	CHECK_INT(N(dict_get(d, "again")), 1, "get after emptying");
	dict_free(d);
}

int main(void)
{
	test_script();
	test_growth();
	test_foreach();
	TEST_DONE();
}
