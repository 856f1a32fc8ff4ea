/* fuzz_confinfo.c - libFuzzer harness for mapping/confinfo.c: a conference-info document parsed,
 * built back (full and partial) and parsed again (same users), and merged into a room parsed
 * from a fixed full document (a refused merge leaves the room as it was). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/confinfo.h"

#define MAX_LEN 65536
#define MAX_USERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_doc[] =
	"<conference-info xmlns='urn:ietf:params:xml:ns:conference-info' "
	"entity='sips:conf233@example.com' state='full' version='1'><users>"
	"<user entity='sip:bob@example.com'><display-text>Bob</display-text>"
	"<endpoint entity='sip:bob@pc33.example.com'><status>connected</status>"
	"<media id='1'><type>message</type></media></endpoint></user>"
	"<user entity='sip:alice@example.com'/></users></conference-info>";

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

static size_t live_users(const struct confinfo *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nusers; i++)
		n += c->users[i].state != CONFINFO_DELETED;
	return n;
}

static void rebuild(const struct confinfo *c, int full)
{
	struct confinfo *back = NULL;
	char err[256], *built;
	size_t len;

	built = confinfo_build(c, full, &len);
	must(built && len == strlen(built));
	must(confinfo_parse(built, len, 8 * MAX_LEN, MAX_USERS, &back, err, sizeof(err)) == 0);
	must(!strcmp(back->entity, c->entity) && back->version == c->version);
	must(back->nusers == (full ? live_users(c) : c->has_users ? c->nusers : 0));
	confinfo_free(back);
	free(built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct confinfo *c = NULL, *room = NULL, *before;
	char err[256];
	int r;

	if (confinfo_parse((const char *)data, size, MAX_LEN, MAX_USERS, &c, err, sizeof(err))
	    != 0) {
		must(c == NULL && err[0]);
		return 0;
	}
	must(c->nusers <= MAX_USERS);
	rebuild(c, 1);
	rebuild(c, 0);

	must(confinfo_parse(base_doc, strlen(base_doc), MAX_LEN, MAX_USERS, &room, err,
			    sizeof(err)) == 0);
	before = confinfo_copy(room);
	r = confinfo_merge(room, c, err, sizeof(err));
	must(r >= -1 && r <= 1);
	if (r != 0)
		must(room->version == before->version && room->nusers == before->nusers);
	else
		must(room->version == c->version && room->state != CONFINFO_PARTIAL &&
		     room->nusers <= MAX_USERS);
	rebuild(room, 1);
	confinfo_free(before);
	confinfo_free(room);
	confinfo_free(c);
	return 0;
}
