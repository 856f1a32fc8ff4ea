/* test_confinfo.c - conference-info documents (mapping/confinfo.h), as tables: documents shaped
 * like RFC 4575 section 6's full and partial notifications, merges into a room (RFC 4575 4.6),
 * refusals, and build -> parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "mapping/confinfo.h"
#include "tests/unit/test.h"

#define CI_OPEN(state, version) "<conference-info xmlns='urn:ietf:params:xml:ns:conference-info' " \
	"entity='sips:conf233@example.com' state='" state "' version='" version "'>"

/* The facts of RFC 4575 section 6.1's full document (two users, one endpoint each, audio),
 * written out here, with elements this parser skips (host-info, conference-state, media
 * details, an extension namespace). */
#define FULL_DOC "<?xml version='1.0' encoding='UTF-8'?>\n" \
	CI_OPEN("full", "1") "\n" \
	" <conference-description>\n" \
	"  <display-text>Ad hoc conference</display-text>\n" \
	"  <subject>Quarterly review</subject>\n" \
	"  <conf-uris><entry><uri>tel:+3585671234</uri></entry></conf-uris>\n" \
	" </conference-description>\n" \
	" <host-info><web-page>http://www.example.com/users/blob/</web-page></host-info>\n" \
	" <conference-state><user-count>2</user-count><active>true</active></conference-state>\n" \
	" <users>\n" \
	"  <user entity='sip:bob@example.com' state='full'>\n" \
	"   <display-text>Bob Hoskins</display-text>\n" \
	"   <endpoint entity='sip:bob@pc33.example.com'>\n" \
	"    <display-text>Bob's Laptop</display-text>\n" \
	"    <status>disconnected</status>\n" \
	"    <disconnection-method>departed</disconnection-method>\n" \
	"    <disconnection-info><reason>bad voice quality</reason></disconnection-info>\n" \
	"    <media id='1'><display-text>main audio</display-text><type>audio</type>" \
	"<label>34567</label><status>sendrecv</status></media>\n" \
	"   </endpoint>\n" \
	"  </user>\n" \
	"  <user entity='sip:alice@example.com' state='full'>\n" \
	"   <display-text>Alice</display-text>\n" \
	"   <x:hobby xmlns:x='urn:example:x'><display-text>ignored</display-text></x:hobby>\n" \
	"   <endpoint entity='sip:4kfk4j392jsu@example.com;grid=433kj4j3u'>\n" \
	"    <status> connected </status>\n" \
	"    <joining-method>dialed-out</joining-method>\n" \
	"    <joining-info><when>2005-03-04T20:00:00Z</when></joining-info>\n" \
	"    <media id='1'><type>audio</type></media>\n" \
	"   </endpoint>\n" \
	"  </user>\n" \
	" </users>\n" \
	"</conference-info>\n"

/* Shaped like RFC 4575 section 6.2's partial notification: one endpoint of one user changed. */
#define PARTIAL_DOC CI_OPEN("partial", "2") \
	"<users state='partial'><user entity='sip:bob@example.com' state='partial'>" \
	"<endpoint entity='sip:bob@pc33.example.com' state='partial'><status>connected</status>" \
	"<joining-method>dialed-in</joining-method></endpoint></user></users></conference-info>"

static const struct parse_case {
	const char *what;
	const char *doc;
	int state;
	unsigned long version;
	const char *subject;
	int users_state;
	size_t nusers;
	/* the first user and its first endpoint */
	const char *u0_entity;
	int u0_state;
	const char *u0_display;
	size_t u0_endpoints;
	const char *e0_entity;
	int e0_state;
	const char *e0_display;
	int e0_status;
	int e0_joining;
	int e0_disconnection;
	size_t e0_media;
	const char *m0_type;
	/* the second user's display text and first endpoint status */
	const char *u1_display;
	int e1_status;
} parse_cases[] = {
	{ "RFC 4575 full document", FULL_DOC, CONFINFO_FULL, 1, "Quarterly review", CONFINFO_FULL,
	  2, "sip:bob@example.com", CONFINFO_FULL, "Bob Hoskins", 1, "sip:bob@pc33.example.com",
	  CONFINFO_FULL, "Bob's Laptop", CONFINFO_DISCONNECTED, CONFINFO_JOIN_NONE,
	  CONFINFO_DEPARTED, 1, "audio", "Alice", CONFINFO_CONNECTED },
	{ "RFC 4575 partial notification", PARTIAL_DOC, CONFINFO_PARTIAL, 2, NULL,
	  CONFINFO_PARTIAL, 1, "sip:bob@example.com", CONFINFO_PARTIAL, NULL, 1,
	  "sip:bob@pc33.example.com", CONFINFO_PARTIAL, NULL, CONFINFO_CONNECTED,
	  CONFINFO_DIALED_IN, CONFINFO_DISC_NONE, 0, NULL, NULL, 0 },
	{ "private status value, chat media, every status name", CI_OPEN("full", "7")
	  "<users><user entity='sip:a@x'><endpoint entity='sip:a@x;gr=1'><status>connect-fail"
	  "</status><media id='m'><type>message</type></media></endpoint></user>"
	  "<user entity='sip:b@x'><display-text>B &amp; co</display-text><endpoint entity='e'>"
	  "<status>muted-via-focus</status></endpoint></user></users></conference-info>",
	  CONFINFO_FULL, 7, NULL, CONFINFO_FULL, 2, "sip:a@x", CONFINFO_FULL, NULL, 1,
	  "sip:a@x;gr=1", CONFINFO_FULL, NULL, CONFINFO_STATUS_NONE, CONFINFO_JOIN_NONE,
	  CONFINFO_DISC_NONE, 1, "message", "B & co", CONFINFO_MUTED_VIA_FOCUS },
	{ "no users element, conference deleted", CI_OPEN("deleted", "9") "</conference-info>",
	  CONFINFO_DELETED, 9, NULL, CONFINFO_FULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0,
	  NULL, NULL, 0 },
};

static void test_parse(void)
{
	for (size_t i = 0; i < NELEM(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct confinfo *ci = NULL;
		char err[256] = "";
		int r = confinfo_parse(c->doc, strlen(c->doc), 65536, 16, &ci, err, sizeof(err));

		CHECK(r == 0 && ci, "%s: parsed (%s)", c->what, err);
		if (!ci)
			continue;
		CHECK_STR(ci->entity, "sips:conf233@example.com", "%s: entity", c->what);
		CHECK_INT(ci->state, c->state, "%s: state", c->what);
		CHECK_INT(ci->version, c->version, "%s: version", c->what);
		CHECK_STR(ci->subject, c->subject, "%s: subject", c->what);
		CHECK_INT(ci->users_state, c->users_state, "%s: users state", c->what);
		CHECK_INT(ci->max_users, 16, "%s: max users kept", c->what);
		CHECK_INT(ci->nusers, c->nusers, "%s: users", c->what);
		if (ci->nusers >= 1 && c->nusers >= 1) {
			const struct confinfo_user *u = &ci->users[0];

			CHECK_STR(u->entity, c->u0_entity, "%s: user entity", c->what);
			CHECK_INT(u->state, c->u0_state, "%s: user state", c->what);
			CHECK_STR(u->display_text, c->u0_display, "%s: user display text", c->what);
			CHECK_INT(u->nendpoints, c->u0_endpoints, "%s: endpoints", c->what);
			if (u->nendpoints) {
				const struct confinfo_endpoint *e = &u->endpoints[0];

				CHECK_STR(e->entity, c->e0_entity, "%s: endpoint entity", c->what);
				CHECK_INT(e->state, c->e0_state, "%s: endpoint state", c->what);
				CHECK_STR(e->display_text, c->e0_display, "%s: endpoint text", c->what);
				CHECK_INT(e->status, c->e0_status, "%s: status", c->what);
				CHECK_INT(e->joining, c->e0_joining, "%s: joining", c->what);
				CHECK_INT(e->disconnection, c->e0_disconnection, "%s: disconnection",
					  c->what);
				CHECK_INT(e->nmedia, c->e0_media, "%s: media", c->what);
				if (e->nmedia)
					CHECK_STR(e->media[0].type, c->m0_type, "%s: media type", c->what);
			}
		}
		if (ci->nusers >= 2 && c->nusers >= 2) {
			CHECK_STR(ci->users[1].display_text, c->u1_display, "%s: 2nd user text", c->what);
			CHECK(ci->users[1].nendpoints == 1 &&
			      ci->users[1].endpoints[0].status == (enum confinfo_status)c->e1_status,
			      "%s: 2nd user's status", c->what);
		}
		confinfo_free(ci);
	}
}

#define DEEP32 "<x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b>" \
	"<x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b>"

#define EP(n) "<endpoint entity='e" #n "'/>"

static const struct refuse_case {
	const char *what;
	const char *doc;
	size_t max_users;
	const char *want_err;
} refuse_cases[] = {
	{ "not well-formed", CI_OPEN("full", "1") "<users>", 16, "not well-formed" },
	{ "empty", "", 16, "not well-formed" },
	{ "wrong root", "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/>", 16,
	  "not a <conference-info>" },
	{ "wrong namespace", "<conference-info xmlns='urn:example' entity='x' version='1'/>", 16,
	  "not a <conference-info>" },
	{ "no namespace", "<conference-info entity='x' version='1'/>", 16,
	  "not a <conference-info>" },
	{ "a DOCTYPE", "<!DOCTYPE conference-info [<!ENTITY x 'y'>]>" CI_OPEN("full", "1")
	  "</conference-info>", 16, "DOCTYPE" },
	{ "too many users", FULL_DOC, 1, "more than 1 users" },
	{ "too deep", CI_OPEN("full", "1") "<x:a xmlns:x='urn:x'>" DEEP32 "</x:a>"
	  "</conference-info>", 16, "nested deeper than 32" },
	{ "conference without entity", "<conference-info xmlns='urn:ietf:params:xml:ns:"
	  "conference-info' version='1'/>", 16, "<conference-info> without entity" },
	{ "user without entity", CI_OPEN("full", "1") "<users><user/></users></conference-info>",
	  16, "<user> without entity" },
	{ "endpoint without entity", CI_OPEN("full", "1") "<users><user entity='a'><endpoint "
	  "entity=''/></user></users></conference-info>", 16, "<endpoint> without entity" },
	{ "media without id", CI_OPEN("full", "1") "<users><user entity='a'><endpoint "
	  "entity='e'><media/></endpoint></user></users></conference-info>", 16,
	  "<media> without id" },
	{ "no version", "<conference-info xmlns='urn:ietf:params:xml:ns:conference-info' "
	  "entity='x'/>", 16, "without a version" },
	{ "negative version", CI_OPEN("full", "-1") "</conference-info>", 16, "without a version" },
	{ "version not a number", CI_OPEN("full", "1x") "</conference-info>", 16,
	  "without a version" },
	{ "version too large", CI_OPEN("full", "99999999999999999999999") "</conference-info>", 16,
	  "without a version" },
	{ "unknown state", CI_OPEN("complete", "1") "</conference-info>", 16,
	  "state is not full, partial or deleted" },
	{ "unknown user state", CI_OPEN("full", "1") "<users><user entity='a' state='gone'/>"
	  "</users></conference-info>", 16, "<user> state is not" },
	{ "a user twice", CI_OPEN("full", "1") "<users><user entity='a'/><user entity='a'/>"
	  "</users></conference-info>", 16, "user a listed twice" },
	{ "an endpoint twice", CI_OPEN("full", "1") "<users><user entity='a'>" EP(1) EP(1)
	  "</user></users></conference-info>", 16, "endpoint e1 listed twice" },
	{ "17 endpoints", CI_OPEN("full", "1") "<users><user entity='a'>" EP(1) EP(2) EP(3) EP(4)
	  EP(5) EP(6) EP(7) EP(8) EP(9) EP(10) EP(11) EP(12) EP(13) EP(14) EP(15) EP(16) EP(17)
	  "</user></users></conference-info>", 16, "more than 16 endpoints" },
	{ "bad UTF-8", CI_OPEN("full", "1") "<conference-description><subject>\xc3\x28</subject>"
	  "</conference-description></conference-info>", 16, "not UTF-8" },
	{ "a control character", CI_OPEN("full", "1") "<conference-description><subject>\x01"
	  "</subject></conference-description></conference-info>", 16, "does not allow" },
};

static void test_refuse(void)
{
	for (size_t i = 0; i < NELEM(refuse_cases); i++) {
		const struct refuse_case *c = &refuse_cases[i];
		struct confinfo *ci = NULL;
		char err[256] = "";
		int r = confinfo_parse(c->doc, strlen(c->doc), 65536, c->max_users, &ci, err,
				       sizeof(err));

		CHECK(r == -1 && !ci, "%s: refused", c->what);
		CHECK(strstr(err, c->want_err) != NULL, "%s: \"%s\" says \"%s\"", c->what, err,
		      c->want_err);
		confinfo_free(ci);
	}
	/* the byte limit */
	{
		struct confinfo *ci = NULL;
		char err[256] = "";

		CHECK_INT(confinfo_parse(FULL_DOC, strlen(FULL_DOC), 100, 16, &ci, err, sizeof(err)),
			  -1, "too long: refused");
		CHECK(strstr(err, "larger than 100") != NULL, "too long: says so (%s)", err);
	}
}

static const struct merge_case {
	const char *what;
	const char *update;
	int want_rc;		/* 0 applied, 1 stale, -1 refused */
	const char *want_err;
	int room_state;
	unsigned long version;
	size_t nusers;
	const char *subject;
	const char *user;	/* this user is looked at... */
	int present;		/* ...and is (not) in the room */
	const char *display;	/* its display text */
	size_t nendpoints;
	int status;		/* its first endpoint */
	int joining;
	int disconnection;
	const char *media_type;	/* its first endpoint's first media, NULL: none */
} merge_cases[] = {
	{ "add a user", CI_OPEN("partial", "2") "<users state='partial'><user entity='sip:carol@"
	  "example.com' state='full'><display-text>Carol</display-text><endpoint entity='sip:"
	  "carol@pc.example.com'><status>dialing-in</status><media id='c'><type>message</type>"
	  "</media></endpoint></user></users></conference-info>",
	  0, NULL, CONFINFO_FULL, 2, 3, "Quarterly review", "sip:carol@example.com", 1, "Carol", 1,
	  CONFINFO_DIALING_IN, CONFINFO_JOIN_NONE, CONFINFO_DISC_NONE, "message" },
	{ "update an endpoint's status (RFC 4575 partial)", PARTIAL_DOC, 0, NULL, CONFINFO_FULL, 2,
	  2, "Quarterly review", "sip:bob@example.com", 1, "Bob Hoskins", 1, CONFINFO_CONNECTED,
	  CONFINFO_DIALED_IN, CONFINFO_DEPARTED, "audio" },
	{ "partial media: a type changed, another media deleted", CI_OPEN("partial", "2")
	  "<users state='partial'><user entity='sip:bob@example.com' state='partial'><endpoint "
	  "entity='sip:bob@pc33.example.com' state='partial'><media id='1' state='partial'><type>"
	  "message</type></media><media id='9' state='deleted'/></endpoint></user></users>"
	  "</conference-info>", 0, NULL, CONFINFO_FULL, 2, 2, "Quarterly review",
	  "sip:bob@example.com", 1, "Bob Hoskins", 1, CONFINFO_DISCONNECTED, CONFINFO_JOIN_NONE,
	  CONFINFO_DEPARTED, "message" },
	{ "a full endpoint replaces the old one", CI_OPEN("partial", "2") "<users state='partial'>"
	  "<user entity='sip:bob@example.com' state='partial'><endpoint entity='sip:bob@pc33."
	  "example.com' state='full'><status>on-hold</status></endpoint></user></users>"
	  "</conference-info>", 0, NULL, CONFINFO_FULL, 2, 2, "Quarterly review",
	  "sip:bob@example.com", 1, "Bob Hoskins", 1, CONFINFO_ON_HOLD, CONFINFO_JOIN_NONE,
	  CONFINFO_DISC_NONE, NULL },
	{ "delete an endpoint", CI_OPEN("partial", "2") "<users state='partial'><user entity='sip:"
	  "bob@example.com' state='partial'><endpoint entity='sip:bob@pc33.example.com' "
	  "state='deleted'/></user></users></conference-info>", 0, NULL, CONFINFO_FULL, 2, 2,
	  "Quarterly review", "sip:bob@example.com", 1, "Bob Hoskins", 0, 0, 0, 0, NULL },
	{ "delete a user", CI_OPEN("partial", "2") "<users state='partial'><user entity='sip:alice@"
	  "example.com' state='deleted'/></users></conference-info>", 0, NULL, CONFINFO_FULL, 2, 1,
	  "Quarterly review", "sip:alice@example.com", 0, NULL, 0, 0, 0, 0, NULL },
	{ "users container deleted", CI_OPEN("partial", "2") "<users state='deleted'><user "
	  "entity='sip:bob@example.com'/></users></conference-info>", 0, NULL, CONFINFO_FULL, 2, 1,
	  "Quarterly review", "sip:bob@example.com", 0, NULL, 0, 0, 0, 0, NULL },
	{ "subject changed, users untouched", CI_OPEN("partial", "2") "<conference-description>"
	  "<subject>New topic</subject></conference-description></conference-info>", 0, NULL,
	  CONFINFO_FULL, 2, 2, "New topic", "sip:alice@example.com", 1, "Alice", 1,
	  CONFINFO_CONNECTED, CONFINFO_DIALED_OUT, CONFINFO_DISC_NONE, "audio" },
	{ "version gap refused", CI_OPEN("partial", "3") "<users state='partial'><user entity='sip:"
	  "alice@example.com' state='deleted'/></users></conference-info>", -1,
	  "version 3 after 1", CONFINFO_FULL, 1, 2, "Quarterly review", "sip:alice@example.com", 1,
	  "Alice", 1, CONFINFO_CONNECTED, CONFINFO_DIALED_OUT, CONFINFO_DISC_NONE, "audio" },
	{ "stale version ignored", CI_OPEN("partial", "1") "<users state='deleted'><user entity="
	  "'sip:alice@example.com'/></users></conference-info>", 1, NULL, CONFINFO_FULL, 1, 2,
	  "Quarterly review", "sip:alice@example.com", 1, "Alice", 1, CONFINFO_CONNECTED,
	  CONFINFO_DIALED_OUT, CONFINFO_DISC_NONE, "audio" },
	{ "another conference refused", "<conference-info xmlns='urn:ietf:params:xml:ns:"
	  "conference-info' entity='sip:other@example.com' state='partial' version='2'/>", -1,
	  "not for this room", CONFINFO_FULL, 1, 2, "Quarterly review", "sip:bob@example.com", 1,
	  "Bob Hoskins", 1, CONFINFO_DISCONNECTED, CONFINFO_JOIN_NONE, CONFINFO_DEPARTED, "audio" },
	{ "full state replaces, after a gap", CI_OPEN("full", "5") "<users><user entity='sip:carol"
	  "@example.com'><endpoint entity='c1'><status>alerting</status></endpoint></user>"
	  "<user entity='sip:gone@example.com' state='deleted'/></users></conference-info>", 0,
	  NULL, CONFINFO_FULL, 5, 1, NULL, "sip:carol@example.com", 1, NULL, 1, CONFINFO_ALERTING,
	  CONFINFO_JOIN_NONE, CONFINFO_DISC_NONE, NULL },
	{ "full users list in a partial", CI_OPEN("partial", "2") "<users state='full'><user "
	  "entity='sip:alice@example.com'><display-text>A.</display-text></user></users>"
	  "</conference-info>", 0, NULL, CONFINFO_FULL, 2, 1, "Quarterly review",
	  "sip:alice@example.com", 1, "A.", 0, 0, 0, 0, NULL },
	{ "conference deleted", CI_OPEN("deleted", "2") "</conference-info>", 0, NULL,
	  CONFINFO_DELETED, 2, 0, "Quarterly review", "sip:bob@example.com", 0, NULL, 0, 0, 0, 0,
	  NULL },
	{ "merge beyond the room's bound refused", CI_OPEN("partial", "2") "<users state='partial'>"
	  "<user entity='u1'/><user entity='u2'/><user entity='u3'/></users></conference-info>", -1,
	  "too many users", CONFINFO_FULL, 1, 2, "Quarterly review", "sip:bob@example.com", 1,
	  "Bob Hoskins", 1, CONFINFO_DISCONNECTED, CONFINFO_JOIN_NONE, CONFINFO_DEPARTED, "audio" },
};

static const struct confinfo_user *find_user(const struct confinfo *c, const char *entity)
{
	for (size_t i = 0; i < c->nusers; i++)
		if (strcmp(c->users[i].entity, entity) == 0)
			return &c->users[i];
	return NULL;
}

static void test_merge(void)
{
	for (size_t i = 0; i < NELEM(merge_cases); i++) {
		const struct merge_case *c = &merge_cases[i];
		struct confinfo *room = NULL, *up = NULL;
		const struct confinfo_user *u;
		char err[256] = "";
		int r;

		CHECK_INT(confinfo_parse(FULL_DOC, strlen(FULL_DOC), 65536, 4, &room, err,
					 sizeof(err)), 0, "%s: base parses", c->what);
		CHECK_INT(confinfo_parse(c->update, strlen(c->update), 65536, 16, &up, err,
					 sizeof(err)), 0, "%s: update parses (%s)", c->what, err);
		if (!room || !up) {
			confinfo_free(room);
			confinfo_free(up);
			continue;
		}
		err[0] = '\0';
		r = confinfo_merge(room, up, err, sizeof(err));
		CHECK_INT(r, c->want_rc, "%s: result (%s)", c->what, err);
		if (c->want_err)
			CHECK(strstr(err, c->want_err) != NULL, "%s: \"%s\" says \"%s\"", c->what, err,
			      c->want_err);
		CHECK_INT(room->state, c->room_state, "%s: room state", c->what);
		CHECK_INT(room->version, c->version, "%s: room version", c->what);
		CHECK_INT(room->nusers, c->nusers, "%s: room users", c->what);
		CHECK_STR(room->subject, c->subject, "%s: subject", c->what);
		u = find_user(room, c->user);
		CHECK_INT(u != NULL, c->present, "%s: %s present", c->what, c->user);
		if (u && c->present) {
			CHECK_INT(u->state, CONFINFO_FULL, "%s: user state full", c->what);
			CHECK_STR(u->display_text, c->display, "%s: display text", c->what);
			CHECK_INT(u->nendpoints, c->nendpoints, "%s: endpoints", c->what);
			if (u->nendpoints) {
				const struct confinfo_endpoint *e = &u->endpoints[0];

				CHECK_INT(e->state, CONFINFO_FULL, "%s: endpoint state full", c->what);
				CHECK_INT(e->status, c->status, "%s: status", c->what);
				CHECK_INT(e->joining, c->joining, "%s: joining", c->what);
				CHECK_INT(e->disconnection, c->disconnection, "%s: disconnection",
					  c->what);
				CHECK_STR(e->nmedia ? e->media[0].type : NULL, c->media_type,
					  "%s: media type", c->what);
			}
		}
		confinfo_free(up);
		confinfo_free(room);
	}
}

/* Notifications in sequence: full, then two partials, the second one lost -> resubscribe. */
static void test_merge_sequence(void)
{
	static const char *const docs[] = {
		CI_OPEN("partial", "2") "<users state='partial'><user entity='sip:c@x' "
		"state='full'/></users></conference-info>",
		CI_OPEN("partial", "3") "<users state='partial'><user entity='sip:c@x' "
		"state='partial'><display-text>C</display-text></user></users></conference-info>",
		CI_OPEN("partial", "5") "<users state='partial'><user entity='sip:c@x' "
		"state='deleted'/></users></conference-info>",
	};
	static const int want[] = { 0, 0, -1 };
	struct confinfo *room = NULL;
	char err[256] = "";

	CHECK_INT(confinfo_parse(FULL_DOC, strlen(FULL_DOC), 65536, 16, &room, err, sizeof(err)), 0,
		  "sequence: base");
	for (size_t i = 0; room && i < NELEM(docs); i++) {
		struct confinfo *up = NULL;

		CHECK_INT(confinfo_parse(docs[i], strlen(docs[i]), 65536, 16, &up, err, sizeof(err)),
			  0, "sequence %zu: parses", i);
		if (up)
			CHECK_INT(confinfo_merge(room, up, err, sizeof(err)), want[i],
				  "sequence %zu: merge (%s)", i, err);
		confinfo_free(up);
	}
	if (room) {
		CHECK_INT(room->version, 3, "sequence: version after the gap");
		CHECK(find_user(room, "sip:c@x") && find_user(room, "sip:c@x")->display_text &&
		      !strcmp(find_user(room, "sip:c@x")->display_text, "C"),
		      "sequence: c kept with its display text");
	}
	confinfo_free(room);
}

static void test_build(void)
{
	struct confinfo_media media[2] = {
		{ "chat", CONFINFO_FULL, "message" },
		{ "old", CONFINFO_DELETED, "audio" },
	};
	struct confinfo_endpoint eps[2] = {
		{ "xmpp:room@muc.example/Alice & \"Co\"", CONFINFO_FULL, "Psi+ <laptop>",
		  CONFINFO_CONNECTED, CONFINFO_DIALED_IN, CONFINFO_DISC_NONE, media, 2 },
		{ "sip:left@example.com", CONFINFO_DELETED, NULL, CONFINFO_DISCONNECTED,
		  CONFINFO_JOIN_NONE, CONFINFO_BOOTED, NULL, 0 },
	};
	struct confinfo_user users[3] = {
		{ "xmpp:alice@example.com", CONFINFO_FULL, "Alice <3 & friends", eps, 1 },
		{ "xmpp:bob@example.com", CONFINFO_DELETED, NULL, NULL, 0 },
		{ "xmpp:carol@example.com", CONFINFO_PARTIAL, "Carol", eps + 1, 1 },
	};
	struct confinfo c = { "xmpp:room@muc.example", CONFINFO_FULL, 41, "Tea & <cake>", 1,
			      CONFINFO_FULL, users, 3, 0 };
	struct confinfo *full = NULL, *part = NULL;
	char *doc, err[256] = "";
	size_t len = 0;

	/* full: what is deleted is left out, everything else comes back */
	doc = confinfo_build(&c, 1, &len);
	CHECK(doc && len == strlen(doc), "build full: a document");
	CHECK_INT(confinfo_parse(doc, len, 65536, 16, &full, err, sizeof(err)), 0,
		  "build full: parses (%s)", err);
	free(doc);
	if (full) {
		CHECK_STR(full->entity, c.entity, "build full: entity");
		CHECK_INT(full->state, CONFINFO_FULL, "build full: state");
		CHECK_INT(full->version, 41, "build full: version");
		CHECK_STR(full->subject, c.subject, "build full: subject escaped and back");
		CHECK_INT(full->nusers, 2, "build full: the deleted user left out");
		CHECK_STR(full->users[0].display_text, users[0].display_text, "build full: text");
		CHECK(full->users[0].nendpoints == 1, "build full: endpoint");
		if (full->users[0].nendpoints == 1) {
			const struct confinfo_endpoint *e = &full->users[0].endpoints[0];

			CHECK_STR(e->entity, eps[0].entity, "build full: endpoint entity escaped");
			CHECK_STR(e->display_text, eps[0].display_text, "build full: endpoint text");
			CHECK_INT(e->status, CONFINFO_CONNECTED, "build full: status");
			CHECK_INT(e->joining, CONFINFO_DIALED_IN, "build full: joining");
			CHECK_INT(e->nmedia, 1, "build full: the deleted media left out");
			CHECK_STR(e->nmedia ? e->media[0].type : NULL, "message", "build full: media");
		}
		CHECK_INT(full->users[1].state, CONFINFO_FULL, "build full: user state full");
		CHECK_INT(full->users[1].nendpoints, 0, "build full: deleted endpoint left out");
	}

	/* partial: states as given; merged into the full one it deletes and changes */
	c.version = 42;
	users[0].state = CONFINFO_PARTIAL;	/* a full user would replace the text too */
	users[0].display_text = NULL;	/* unchanged */
	eps[0].status = CONFINFO_ON_HOLD;
	doc = confinfo_build(&c, 0, &len);
	CHECK_INT(confinfo_parse(doc, len, 65536, 16, &part, err, sizeof(err)), 0,
		  "build partial: parses (%s)", err);
	free(doc);
	if (part) {
		CHECK_INT(part->state, CONFINFO_PARTIAL, "build partial: state");
		CHECK_INT(part->users_state, CONFINFO_PARTIAL, "build partial: users state");
		CHECK_INT(part->nusers, 3, "build partial: all users");
		CHECK_INT(part->users[1].state, CONFINFO_DELETED, "build partial: deleted user");
		CHECK_INT(part->users[2].state, CONFINFO_PARTIAL, "build partial: partial user");
		CHECK_INT(part->users[2].endpoints[0].state, CONFINFO_DELETED,
			  "build partial: deleted endpoint");
		CHECK_INT(part->users[0].endpoints[0].nmedia, 2, "build partial: both media");
	}
	if (full && part) {
		const struct confinfo_user *a, *cu;

		CHECK_INT(confinfo_merge(full, part, err, sizeof(err)), 0,
			  "build partial: merges (%s)", err);
		a = find_user(full, "xmpp:alice@example.com");
		cu = find_user(full, "xmpp:carol@example.com");
		CHECK_INT(full->version, 42, "build partial: version after merge");
		CHECK(a && a->display_text && !strcmp(a->display_text, "Alice <3 & friends"),
		      "build partial: alice's text unchanged");
		CHECK(a && a->nendpoints == 1 && a->endpoints[0].status == CONFINFO_ON_HOLD &&
		      a->endpoints[0].nmedia == 1, "build partial: alice on hold, media deleted");
		CHECK(cu && cu->nendpoints == 0, "build partial: carol's endpoint gone");
		CHECK(!find_user(full, "xmpp:bob@example.com"), "build partial: bob absent");
	}
	confinfo_free(full);
	confinfo_free(part);
}

/* Every value table row has a name that parses back to it. */
static void test_names(void)
{
	for (int s = CONFINFO_PENDING; s <= CONFINFO_DISCONNECTED; s++) {
		char doc[512];
		struct confinfo *ci = NULL;

		snprintf(doc, sizeof(doc), CI_OPEN("full", "1") "<users><user entity='a'><endpoint "
			 "entity='e'><status>%s</status><joining-method>%s</joining-method>"
			 "<disconnection-method>%s</disconnection-method></endpoint></user></users>"
			 "</conference-info>", confinfo_status_name((enum confinfo_status)s),
			 confinfo_joining_name((enum confinfo_joining)(1 + s % 3)),
			 confinfo_disconnection_name((enum confinfo_disconnection)(1 + s % 4)));
		CHECK_INT(confinfo_parse(doc, strlen(doc), 65536, 4, &ci, NULL, 0), 0, "name %d", s);
		if (!ci)
			continue;
		CHECK_INT(ci->users[0].endpoints[0].status, s, "status %d back", s);
		CHECK_INT(ci->users[0].endpoints[0].joining, 1 + s % 3, "joining %d back", s);
		CHECK_INT(ci->users[0].endpoints[0].disconnection, 1 + s % 4, "disc %d back", s);
		confinfo_free(ci);
	}
	CHECK(confinfo_status_name(CONFINFO_STATUS_NONE) == NULL, "status none has no name");
	CHECK(confinfo_state_name((enum confinfo_state)7) == NULL, "state out of range");
}

int main(void)
{
	test_parse();
	test_refuse();
	test_merge();
	test_merge_sequence();
	test_build();
	test_names();
	TEST_DONE();
}
