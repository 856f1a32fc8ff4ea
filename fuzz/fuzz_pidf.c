/* fuzz_pidf.c - libFuzzer harness for mapping/pidf.c: parse, write and re-parse, XMPP stanzas both ways, and writing arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "mapping/pidf.h"

#define MAX_LEN 65536
#define MAX_TUPLES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* the harness's one libstrophe context, made once */
static xmpp_ctx_t *ctx;

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

static int str_eq(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

/* lossy: compare only what survives XMPP (no contact, no show while closed) */
static void same_tuple(const struct pidf_tuple *a, const struct pidf_tuple *b, int lossy)
{
	must(str_eq(a->id, b->id));
	must(a->open == b->open);
	if (!lossy || a->open)
		must(a->show == b->show);
	else
		must(b->show == PIDF_SHOW_NONE);
	must(a->has_priority == b->has_priority);
	if (a->has_priority)
		must(a->priority == b->priority);
	must(lossy ? b->contact == NULL : str_eq(a->contact, b->contact));
	must(str_eq(a->timestamp, b->timestamp));
	must(a->nnotes == b->nnotes);
	for (size_t i = 0; i < a->nnotes; i++) {
		must(str_eq(a->notes[i].text, b->notes[i].text));
		must(str_eq(a->notes[i].lang, b->notes[i].lang));
	}
}

static void check_doc(const struct pidf_doc *d)
{
	size_t len, len2;
	char *xml = pidf_build(d, &len), *xml2, err[160];
	struct pidf_doc *back = NULL;

	must(xml != NULL && strlen(xml) == len);
	/* what we write, we read back the same: every field, every tuple */
	if (pidf_parse(xml, len, (size_t)-1, d->ntuples, &back, err, sizeof(err)) != 0)
		must(0);
	must(back->ntuples == d->ntuples && str_eq(back->entity, d->entity));
	for (size_t i = 0; i < d->ntuples; i++)
		same_tuple(&d->tuples[i], &back->tuples[i], 0);
	/* and writing is stable */
	xml2 = pidf_build(back, &len2);
	must(len2 == len && memcmp(xml, xml2, len) == 0);
	free(xml2);
	pidf_doc_free(back);
	free(xml);

	/* each tuple through an XMPP <presence/> and back */
	for (size_t i = 0; i < d->ntuples; i++) {
		xmpp_stanza_t *s = pidf_tuple_to_presence(ctx, &d->tuples[i]);
		struct pidf_tuple t;

		must(s != NULL);
		must(pidf_tuple_from_presence(s, d->tuples[i].id, &t) == 0);
		same_tuple(&d->tuples[i], &t, 1);
		pidf_tuple_clear(&t);
		xmpp_stanza_release(s);
	}
}

/* Arbitrary bytes as the strings of a document: the writer must still produce one we read. */
static void check_writer(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *fields[6];
	size_t nf = 0, start = 0;
	struct pidf_note note;
	struct pidf_tuple t;
	struct pidf_doc d = { NULL, &t, 1 }, *back = NULL;
	char *xml;
	size_t len;

	must(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';
	for (size_t i = 0; i <= size && nf < 6; i++)
		if (i == size || in[i] == '\0') {
			fields[nf++] = in + start;
			start = i + 1;
		}
	while (nf < 6)
		fields[nf++] = in + size;
	note.text = fields[1];
	note.lang = *fields[2] ? fields[2] : NULL;
	memset(&t, 0, sizeof(t));
	t.id = fields[0];
	t.open = size & 1;
	t.show = (enum pidf_show)(size % 5);
	t.notes = &note;
	t.nnotes = 1;
	t.has_priority = 1;
	t.priority = (int)(size % 256) - 128;
	t.contact = *fields[3] ? fields[3] : NULL;
	t.timestamp = *fields[4] ? fields[4] : NULL;
	d.entity = fields[5];
	xml = pidf_build(&d, &len);
	must(pidf_parse(xml, len, (size_t)-1, 1, &back, NULL, 0) == 0);
	must(back->ntuples == 1 && back->tuples[0].nnotes == 1 && back->tuples[0].has_priority &&
	     back->tuples[0].priority == t.priority && back->tuples[0].show == t.show);
	pidf_doc_free(back);
	free(xml);
	free(in);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	must(ctx != NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: AddressSanitizer sees any read past the end */
	char *buf = malloc(size ? size : 1), err[160];
	struct pidf_doc *d = (struct pidf_doc *)1;
	int r;

	must(buf != NULL);
	memcpy(buf, data, size);
	err[0] = '\0';
	r = pidf_parse(buf, size, MAX_LEN, MAX_TUPLES, &d, err, sizeof(err));
	if (r == 0) {
		must(d != NULL && d->ntuples <= MAX_TUPLES && d->entity != NULL);
		check_doc(d);
		pidf_doc_free(d);
	} else {
		/* refused: no document, and a one-line reason */
		must(r == -1 && d == NULL && err[0] != '\0' && !memchr(err, '\n', strlen(err)));
	}
	free(buf);
	check_writer(data, size);
	return 0;
}
