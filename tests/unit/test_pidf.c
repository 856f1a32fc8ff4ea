/* test_pidf.c - table-driven tests of presence documents (mapping/pidf.h): tables, parsing, writing, XMPP both ways, round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "mapping/pidf.h"
#include "tests/unit/test.h"

#define MAXLEN 65536
#define MAXTUPLES 16
#define HEAD "<?xml version='1.0' encoding='UTF-8'?>\n"
#define P_OPEN "<presence xmlns='urn:ietf:params:xml:ns:pidf' " \
	"xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' " \
	"xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' xmlns:sg='urn:simplegw:pidf:1' " \
	"entity='pres:bob@sip.example'>"
#define P_CLOSE "</presence>"
#define ST_OPEN "<status><basic>open</basic></status>"
#define ST_CLOSED "<status><basic>closed</basic></status>"
/* a person with one activity, around a tuple t1 that has no activity or note of its own */
#define PERSON_DOC(act) P_OPEN "<tuple id='t1'>" ST_OPEN "</tuple><dm:person id='p'>" \
	"<rpid:activities><rpid:" act "/></rpid:activities></dm:person>" P_CLOSE

/* ---- a canonical text of a document, so whole results fit in one table cell --------------- */

/* "<id> open|closed <show|-> p=<prio|-> c=<contact|-> t=<stamp|-> [lang|text]..." */
static void dump_tuple(FILE *f, const struct pidf_tuple *t, int lossy)
{
	const char *show = pidf_show_name(t->show);

	/* lossy: what survives PIDF -> XMPP -> PIDF (no contact; no show when closed) */
	if (lossy && !t->open)
		show = NULL;
	fprintf(f, "%s %s %s p=", t->id ? t->id : "(null)", t->open ? "open" : "closed",
		show ? show : "-");
	if (t->has_priority)
		fprintf(f, "%d", t->priority);
	else
		fputc('-', f);
	fprintf(f, " c=%s t=%s", t->contact && !lossy ? t->contact : "-",
		t->timestamp ? t->timestamp : "-");
	for (size_t i = 0; i < t->nnotes; i++)
		fprintf(f, " [%s|%s]", t->notes[i].lang ? t->notes[i].lang : "-", t->notes[i].text);
}

static char *dump_doc(const struct pidf_doc *d, int lossy)
{
	char *s = NULL;
	size_t n;
	FILE *f = open_memstream(&s, &n);

	if (!f)
		abort();
	fputs(d->entity ? d->entity : "(null)", f);
	for (size_t i = 0; i < d->ntuples; i++) {
		fputs("; ", f);
		dump_tuple(f, &d->tuples[i], lossy);
	}
	fclose(f);
	return s;
}

static char *dump_one(const struct pidf_tuple *t)
{
	char *s = NULL;
	size_t n;
	FILE *f = open_memstream(&s, &n);

	if (!f)
		abort();
	dump_tuple(f, t, 0);
	fclose(f);
	return s;
}

/* Parses an exact-size heap copy, so AddressSanitizer sees any read past the end. */
static int parse(const char *buf, size_t len, size_t max_tuples, struct pidf_doc **out, char *err,
		 size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, buf, len);
	r = pidf_parse(copy, len, MAXLEN, max_tuples, out, err, errlen);
	free(copy);
	return r;
}

/* ---- the show <-> RPID activity table: every row of pidf.c's table has a row here --------- */

#define X PIDF_TO_XMPP
#define S PIDF_TO_SIP
static const struct {
	const char *activity;
	enum pidf_show show;
	unsigned dir;
} show_rows[] = {
	{ NULL, PIDF_SHOW_NONE, X | S },
	{ NULL, PIDF_SHOW_CHAT, S },
	{ "away", PIDF_SHOW_AWAY, X | S },
	{ "away", PIDF_SHOW_XA, S },
	{ "busy", PIDF_SHOW_DND, X | S },
	{ "on-the-phone", PIDF_SHOW_DND, X },
	{ "meeting", PIDF_SHOW_DND, X },
	{ "presentation", PIDF_SHOW_DND, X },
	{ "vacation", PIDF_SHOW_XA, X },
	{ "holiday", PIDF_SHOW_XA, X },
	{ "sleeping", PIDF_SHOW_XA, X },
	{ "permanent-absence", PIDF_SHOW_XA, X },
	{ "appointment", PIDF_SHOW_AWAY, X },
	{ "breakfast", PIDF_SHOW_AWAY, X },
	{ "dinner", PIDF_SHOW_AWAY, X },
	{ "lunch", PIDF_SHOW_AWAY, X },
	{ "meal", PIDF_SHOW_AWAY, X },
	{ "travel", PIDF_SHOW_AWAY, X },
	{ "steering", PIDF_SHOW_AWAY, X },
	{ "in-transit", PIDF_SHOW_AWAY, X },
	{ "looking-for-work", PIDF_SHOW_AWAY, X },
	{ "shopping", PIDF_SHOW_AWAY, X },
	{ "playing", PIDF_SHOW_AWAY, X },
	{ "worship", PIDF_SHOW_AWAY, X },
	{ "spectator", PIDF_SHOW_AWAY, X },
	{ "performance", PIDF_SHOW_AWAY, X },
	{ "tv", PIDF_SHOW_AWAY, X },
};

/* activities with no row: no show */
static const char *const unmapped_activities[] = {
	"working", "unknown", "other", "note", "Away", "busy ", "", "chat", "xa", "dnd",
};

static void test_show_table(void)
{
	const char *activity;
	enum pidf_show show;
	unsigned dir;
	size_t n = 0;

	/* the library's table and this one are the same, row for row */
	while (pidf_show_row(n, &activity, &show, &dir) == 0) {
		CHECK(n < NELEM(show_rows), "show table row %zu has a test row", n);
		if (n < NELEM(show_rows)) {
			CHECK_STR(activity, show_rows[n].activity, "show table row %zu: activity", n);
			CHECK_INT(show, show_rows[n].show, "show table row %zu: show", n);
			CHECK_INT(dir, show_rows[n].dir, "show table row %zu: direction", n);
		}
		n++;
	}
	CHECK_INT(n, NELEM(show_rows), "show table: number of rows");

	for (size_t i = 0; i < NELEM(show_rows); i++) {
		const char *a = show_rows[i].activity;
		enum pidf_show s = show_rows[i].show;

		if (show_rows[i].dir & X)
			CHECK_INT(pidf_show_from_activity(a), s, "activity %s -> show", a ? a : "(none)");
		if (show_rows[i].dir & S)
			CHECK_STR(pidf_show_to_activity(s), a, "show %s -> activity",
				  pidf_show_name(s) ? pidf_show_name(s) : "(none)");
		/* SIP -> XMPP through a whole document: the person's activity reaches the tuple */
		if ((show_rows[i].dir & X) && a) {
			char doc[1024];
			struct pidf_doc *d = NULL;
			char err[200] = "";

			snprintf(doc, sizeof(doc), PERSON_DOC("%s"), a);
			CHECK_INT(parse(doc, strlen(doc), MAXTUPLES, &d, err, sizeof(err)), 0,
				  "person activity %s: parses (%s)", a, err);
			if (d) {
				CHECK_INT(d->tuples[0].show, s, "person activity %s: tuple show", a);
				pidf_doc_free(d);
			}
		}
		/* XMPP -> SIP through a whole document: the person carries the activity */
		if (show_rows[i].dir & S) {
			struct pidf_note note = { "x", NULL };
			struct pidf_tuple t = { "r", 1, s, &note, 1, 0, 0, NULL, NULL };
			struct pidf_doc d = { "pres:a@b", &t, 1 };
			char *xml = pidf_build(&d, NULL), want[128];

			snprintf(want, sizeof(want), "<rpid:activities><rpid:%s/></rpid:activities>",
				 a ? a : "");
			CHECK((strstr(xml, want) != NULL) == (a != NULL), "show %d written as %s: %s", s,
			      a ? a : "no activity", xml);
			free(xml);
		}
	}
	for (size_t i = 0; i < NELEM(unmapped_activities); i++)
		CHECK_INT(pidf_show_from_activity(unmapped_activities[i]), PIDF_SHOW_NONE,
			  "activity \"%s\" has no show", unmapped_activities[i]);
	CHECK_INT(pidf_show_from_activity(NULL), PIDF_SHOW_NONE, "no activity");

	/* XMPP show names */
	static const struct {
		const char *name;
		int show;
	} names[] = {
		{ "away", PIDF_SHOW_AWAY }, { "xa", PIDF_SHOW_XA }, { "dnd", PIDF_SHOW_DND },
		{ "chat", PIDF_SHOW_CHAT }, { "", PIDF_SHOW_NONE }, { NULL, PIDF_SHOW_NONE },
		{ "Away", -1 }, { "busy", -1 }, { "online", -1 }, { " away", -1 },
	};
	for (size_t i = 0; i < NELEM(names); i++)
		CHECK_INT(pidf_show_parse(names[i].name), names[i].show, "pidf_show_parse(\"%s\")",
			  names[i].name ? names[i].name : "(null)");
	for (int s = PIDF_SHOW_AWAY; s <= PIDF_SHOW_CHAT; s++)
		CHECK_INT(pidf_show_parse(pidf_show_name((enum pidf_show)s)), s, "show %d by name", s);
	CHECK_STR(pidf_show_name(PIDF_SHOW_NONE), NULL, "no show has no name");
}

/* ---- priority <-> q-value ------------------------------------------------------------------ */

static const struct {
	int priority, q;	/* q in thousandths */
} prio_rows[] = {
	{ -128, 0 }, { -127, 4 }, { -64, 250 }, { -5, 480 }, { -1, 496 }, { 0, 500 }, { 1, 504 },
	{ 5, 520 }, { 64, 752 }, { 76, 799 }, { 100, 894 }, { 126, 996 }, { 127, 1000 },
};

static const struct {
	int q, priority;
} q_rows[] = {
	{ 0, -128 }, { 1, -128 }, { 2, -127 }, { 100, -102 }, { 250, -64 }, { 498, -1 }, { 499, 0 },
	{ 500, 0 }, { 501, 0 }, { 502, 1 }, { 800, 76 }, { 900, 102 }, { 999, 127 }, { 1000, 127 },
	/* clamped */
	{ -1, -128 }, { 1001, 127 }, { 5000, 127 },
};

static void test_priority(void)
{
	int prev = -1;

	for (size_t i = 0; i < NELEM(prio_rows); i++)
		CHECK_INT(pidf_priority_to_q(prio_rows[i].priority), prio_rows[i].q,
			  "priority %d -> q", prio_rows[i].priority);
	for (size_t i = 0; i < NELEM(q_rows); i++)
		CHECK_INT(pidf_q_to_priority(q_rows[i].q), q_rows[i].priority, "q %d -> priority",
			  q_rows[i].q);
	CHECK_INT(pidf_priority_to_q(-129), 0, "priority clamped below");
	CHECK_INT(pidf_priority_to_q(1000), 1000, "priority clamped above");
	/* every priority survives the q-value, and q grows with it */
	for (int p = -128; p <= 127; p++) {
		int q = pidf_priority_to_q(p);

		CHECK(q > prev && q >= 0 && q <= 1000, "priority %d -> q %d, increasing", p, q);
		CHECK_INT(pidf_q_to_priority(q), p, "priority %d -> q %d -> priority", p, q);
		prev = q;
	}
	/* priority through a document, with and without a contact URI to carry the q-value */
	for (int p = -128; p <= 127; p += 17) {
		for (int withc = 0; withc <= 1; withc++) {
			struct pidf_tuple t = { "r", 1, PIDF_SHOW_NONE, NULL, 0, 1, p,
						withc ? "xmpp:a@b/r" : NULL, NULL };
			struct pidf_doc d = { "pres:a@b", &t, 1 }, *back = NULL;
			size_t len;
			char *xml = pidf_build(&d, &len);

			CHECK_INT(parse(xml, len, 1, &back, NULL, 0), 0, "priority %d doc parses", p);
			if (back) {
				CHECK(back->ntuples == 1 && back->tuples[0].has_priority &&
				      back->tuples[0].priority == p,
				      "priority %d through a document (contact %d)", p, withc);
				pidf_doc_free(back);
			}
			/* <sg:priority> only when there is no contact to hang the q on */
			CHECK((strstr(xml, "<sg:priority>") != NULL) == !withc,
			      "priority %d: sg:priority iff no contact: %s", p, xml);
			free(xml);
		}
	}
}

/* ---- parsing: valid documents, including real-world shapes ---------------------------------- */

static const struct {
	const char *name;
	const char *doc;
	const char *want;	/* dump_doc() of the result */
} parse_rows[] = {
	{ "RFC 3863 6 minimal example (prefixed)",
	  HEAD "<impp:presence xmlns:impp=\"urn:ietf:params:xml:ns:pidf\"\n"
	  "    entity=\"pres:someone@example.com\">\n"
	  "  <impp:tuple id=\"sg89ae\">\n    <impp:status>\n      <impp:basic>open</impp:basic>\n"
	  "    </impp:status>\n    <impp:contact priority=\"0.8\">tel:+09012345678</impp:contact>\n"
	  "  </impp:tuple>\n</impp:presence>\n",
	  "pres:someone@example.com; sg89ae open - p=76 c=tel:+09012345678 t=-" },
	{ "RFC 3863 6 full example: extensions, two notes, presence note",
	  HEAD "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\n"
	  "    xmlns:im=\"urn:ietf:params:xml:ns:pidf:im\"\n"
	  "    xmlns:myex=\"http://id.example.com/presence/\"\n"
	  "    entity=\"pres:someone@example.com\">\n"
	  "  <tuple id=\"bs35r9\">\n    <status>\n      <basic>open</basic>\n"
	  "      <im:im>busy</im:im>\n      <myex:location>home</myex:location>\n    </status>\n"
	  "    <contact priority=\"0.8\">im:someone@mobilecarrier.net</contact>\n"
	  "    <note xml:lang=\"en\">Don't Disturb Please!</note>\n"
	  "    <note xml:lang=\"fr\">Ne d\xc3\xa9rangez pas, s'il vous plait</note>\n"
	  "    <timestamp>2001-10-27T16:49:29Z</timestamp>\n  </tuple>\n"
	  "  <tuple id=\"eg92n8\">\n    <status>\n      <basic>open</basic>\n    </status>\n"
	  "    <contact priority=\"1.0\">mailto:someone@example.com</contact>\n  </tuple>\n"
	  "  <note>I'll be in Tokyo next week</note>\n</presence>\n",
	  "pres:someone@example.com; bs35r9 open - p=76 c=im:someone@mobilecarrier.net "
	  "t=2001-10-27T16:49:29Z [en|Don't Disturb Please!] "
	  "[fr|Ne d\xc3\xa9rangez pas, s'il vous plait]; "
	  "eg92n8 open - p=127 c=mailto:someone@example.com t=- [-|I'll be in Tokyo next week]" },
	{ "RFC 4480 5 example: person activity with a note, device ignored",
	  HEAD "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\n"
	  "     xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\"\n"
	  "     xmlns:r=\"urn:ietf:params:xml:ns:pidf:rpid\"\n"
	  "     xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\"\n"
	  "     entity=\"pres:someone@example.com\">\n"
	  "  <tuple id=\"bs35r9\">\n    <status>\n      <basic>open</basic>\n    </status>\n"
	  "    <dm:deviceID>urn:device:0003</dm:deviceID>\n"
	  "    <r:relationship><r:self/></r:relationship>\n"
	  "    <r:service-class><r:electronic/></r:service-class>\n"
	  "    <contact priority=\"0.8\">im:someone@mobilecarrier.net</contact>\n"
	  "    <note xml:lang=\"en\">Don't Disturb Please!</note>\n"
	  "    <note xml:lang=\"fr\">Ne derangez pas, s'il vous plait</note>\n"
	  "    <timestamp>2005-10-27T16:49:29Z</timestamp>\n  </tuple>\n"
	  "  <dm:person id=\"p1\">\n"
	  "    <r:activities from=\"2005-05-30T12:00:00+05:00\" until=\"2005-05-30T17:00:00+05:00\">\n"
	  "      <r:note>Far away</r:note>\n      <r:away/>\n    </r:activities>\n"
	  "    <r:class>calendar</r:class>\n"
	  "    <r:mood><r:angry/><r:other>ticked off</r:other></r:mood>\n"
	  "    <r:place-is><r:audio><r:noisy/></r:audio></r:place-is>\n"
	  "    <r:privacy><r:unknown/></r:privacy>\n    <r:sphere>bowling league</r:sphere>\n"
	  "    <dm:timestamp>2005-05-30T22:02:44+05:00</dm:timestamp>\n  </dm:person>\n"
	  "  <dm:device id=\"pc147\">\n"
	  "    <r:user-input idle-threshold=\"600\" last-input=\"2004-10-21T13:20:00.000-05:00\">idle</r:user-input>\n"
	  "    <dm:deviceID>urn:device:0003</dm:deviceID>\n    <dm:note>PC</dm:note>\n"
	  "    <dm:timestamp>2005-05-30T22:00:29Z</dm:timestamp>\n  </dm:device>\n</presence>\n",
	  "pres:someone@example.com; bs35r9 open away p=76 c=im:someone@mobilecarrier.net "
	  "t=2005-10-27T16:49:29Z [en|Don't Disturb Please!] [fr|Ne derangez pas, s'il vous plait]" },
	{ "RFC 4480 shape, tuple without notes takes the activity note",
	  P_OPEN "<tuple id='a'>" ST_OPEN "</tuple><dm:person id='p'><rpid:activities>"
	  "<rpid:note xml:lang='en'>Far away</rpid:note><rpid:away/></rpid:activities></dm:person>"
	  P_CLOSE,
	  "pres:bob@sip.example; a open away p=- c=- t=- [en|Far away]" },
	{ "Kamailio presence_xml/pua: activity and note in dm:person",
	  "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
	  "xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
	  "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" "
	  "xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\" entity=\"sip:alice@example.org\">\n"
	  "<tuple id=\"0x7f3a2c10\">\n<status><basic>open</basic></status>\n</tuple>\n"
	  "<dm:person id=\"1\"><rpid:activities><rpid:on-the-phone/></rpid:activities>"
	  "<dm:note>On the phone</dm:note></dm:person>\n</presence>\n",
	  "sip:alice@example.org; 0x7f3a2c10 open dnd p=- c=- t=- [-|On the phone]" },
	{ "Kamailio: publication expired, closed tuple",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence "
	  "xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bob@example.org\"><tuple "
	  "id=\"tuple_3e9a\"><status><basic>closed</basic></status></tuple></presence>",
	  "sip:bob@example.org; tuple_3e9a closed - p=- c=- t=-" },
	{ "Jitsi-like: person first, tuple note and contact",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?><presence "
	  "xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
	  "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:carol@example.net\">"
	  "<dm:person id=\"p3748\"><rpid:activities><rpid:meeting/></rpid:activities></dm:person>"
	  "<tuple id=\"t7128\"><status><basic>open</basic></status><contact>sip:carol@example.net"
	  "</contact><note>In a meeting</note></tuple></presence>",
	  "sip:carol@example.net; t7128 open dnd p=- c=sip:carol@example.net t=- [-|In a meeting]" },
	{ "Linphone-like: pretty-printed, person note with a language",
	  HEAD "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
	  "xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
	  "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:dave@sip.linphone.org\">\n"
	  "  <tuple id=\"kfrvwo\">\n    <status>\n      <basic>open</basic>\n    </status>\n"
	  "    <contact>sip:dave@sip.linphone.org</contact>\n"
	  "    <timestamp>2024-03-01T09:15:02Z</timestamp>\n  </tuple>\n"
	  "  <dm:person id=\"jdndxk\">\n    <rpid:activities>\n      <rpid:vacation/>\n"
	  "    </rpid:activities>\n    <dm:note xml:lang=\"fr\">En vacances</dm:note>\n"
	  "  </dm:person>\n</presence>\n",
	  "sip:dave@sip.linphone.org; kfrvwo open xa p=- c=sip:dave@sip.linphone.org "
	  "t=2024-03-01T09:15:02Z [fr|En vacances]" },
	{ "eyeBeam-like: RPID activities inside <status> (pre-RFC 4480)",
	  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
	  "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:eve@example.com\">"
	  "<tuple id=\"e1\"><status><basic>open</basic><rpid:activities><rpid:busy/>"
	  "</rpid:activities></status><note>Busy</note></tuple></presence>",
	  "sip:eve@example.com; e1 open dnd p=- c=- t=- [-|Busy]" },
	{ "activities directly in the tuple",
	  P_OPEN "<tuple id='a'>" ST_OPEN "<rpid:activities><rpid:lunch/></rpid:activities>"
	  "</tuple>" P_CLOSE, "pres:bob@sip.example; a open away p=- c=- t=-" },
	{ "tuple activity beats the person's",
	  P_OPEN "<tuple id='a'><status><basic>open</basic><rpid:activities><rpid:away/>"
	  "</rpid:activities></status></tuple><dm:person id='p'><rpid:activities><rpid:busy/>"
	  "</rpid:activities></dm:person>" P_CLOSE,
	  "pres:bob@sip.example; a open away p=- c=- t=-" },
	{ "several activities: the strongest wins (dnd > xa > away)",
	  P_OPEN "<tuple id='a'>" ST_OPEN "</tuple><dm:person id='p'><rpid:activities>"
	  "<rpid:lunch/><rpid:meeting/><rpid:sleeping/></rpid:activities></dm:person>" P_CLOSE,
	  "pres:bob@sip.example; a open dnd p=- c=- t=-" },
	{ "xa beats away", PERSON_DOC("travel/><rpid:holiday"),
	  "pres:bob@sip.example; t1 open xa p=- c=- t=-" },
	{ "unknown and other activities: no show",
	  P_OPEN "<tuple id='a'>" ST_OPEN "</tuple><dm:person id='p'><rpid:activities>"
	  "<rpid:other>Gardening</rpid:other><rpid:unknown/></rpid:activities></dm:person>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=-" },
	{ "activity outside the RPID namespace ignored",
	  P_OPEN "<tuple id='a'>" ST_OPEN "</tuple><dm:person id='p'><rpid:activities>"
	  "<x:busy xmlns:x='urn:other'/></rpid:activities></dm:person>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=-" },
	{ "person notes, several languages, only for tuples without notes",
	  P_OPEN "<tuple id='a'>" ST_OPEN "</tuple><tuple id='b'>" ST_OPEN
	  "<note>own</note></tuple><dm:person id='p'><dm:note xml:lang='en'>Hello</dm:note>"
	  "<dm:note xml:lang='de'>Hallo</dm:note><dm:note>neutral</dm:note></dm:person>"
	  "<note>document note</note>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=- [en|Hello] [de|Hallo] [-|neutral]; "
	  "b open - p=- c=- t=- [-|own]" },
	{ "document notes when there is no person note",
	  P_OPEN "<tuple id='a'>" ST_OPEN "</tuple><note xml:lang='it'>Ciao</note>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=- [it|Ciao]" },
	{ "xml:lang inherited from the root, overridden below",
	  "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='e' xml:lang='en'><tuple id='a'>"
	  ST_OPEN "<note>Hi</note><note xml:lang='fr'>Salut</note></tuple></presence>",
	  "e; a open - p=- c=- t=- [en|Hi] [fr|Salut]" },
	{ "exact tuple: sg:show beats the person, no note fallback",
	  P_OPEN "<tuple id='a'>" ST_OPEN "<sg:show>xa</sg:show></tuple><tuple id='b'>" ST_OPEN
	  "<sg:show/></tuple><dm:person id='p'><rpid:activities><rpid:away/></rpid:activities>"
	  "<dm:note>Gone</dm:note></dm:person>" P_CLOSE,
	  "pres:bob@sip.example; a open xa p=- c=- t=-; b open - p=- c=- t=-" },
	{ "sg:show chat", P_OPEN "<tuple id='a'>" ST_OPEN "<sg:show>chat</sg:show></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open chat p=- c=- t=-" },
	{ "sg:show with a value we do not know is ignored",
	  P_OPEN "<tuple id='a'>" ST_OPEN "<sg:show>bogus</sg:show></tuple><dm:person id='p'>"
	  "<rpid:activities><rpid:busy/></rpid:activities></dm:person>" P_CLOSE,
	  "pres:bob@sip.example; a open dnd p=- c=- t=-" },
	{ "sg:priority beats the contact's q-value",
	  P_OPEN "<tuple id='a'>" ST_OPEN "<sg:priority>-5</sg:priority><contact priority='0.9'>"
	  "sip:a@b</contact></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=-5 c=sip:a@b t=-" },
	{ "sg:priority out of range: the q-value counts",
	  P_OPEN "<tuple id='a'>" ST_OPEN "<sg:priority>300</sg:priority><contact priority='0'>"
	  "sip:a@b</contact></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=-128 c=sip:a@b t=-" },
	{ "q-values: 0.5, 1, 0., 1.000", P_OPEN
	  "<tuple id='a'>" ST_OPEN "<contact priority='0.5'>u:1</contact></tuple>"
	  "<tuple id='b'>" ST_OPEN "<contact priority='1'>u:2</contact></tuple>"
	  "<tuple id='c'>" ST_OPEN "<contact priority='0.'>u:3</contact></tuple>"
	  "<tuple id='d'>" ST_OPEN "<contact priority=' 1.000 '>u:4</contact></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=0 c=u:1 t=-; b open - p=127 c=u:2 t=-; "
	  "c open - p=-128 c=u:3 t=-; d open - p=127 c=u:4 t=-" },
	{ "malformed q-values are ignored", P_OPEN
	  "<tuple id='a'>" ST_OPEN "<contact priority='high'>u:1</contact></tuple>"
	  "<tuple id='b'>" ST_OPEN "<contact priority='1.5'>u:2</contact></tuple>"
	  "<tuple id='c'>" ST_OPEN "<contact priority='0.1234'>u:3</contact></tuple>"
	  "<tuple id='d'>" ST_OPEN "<contact priority='-0.5'>u:4</contact></tuple>"
	  "<tuple id='e'>" ST_OPEN "<contact priority=''>u:5</contact></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=u:1 t=-; b open - p=- c=u:2 t=-; "
	  "c open - p=- c=u:3 t=-; d open - p=- c=u:4 t=-; e open - p=- c=u:5 t=-" },
	{ "no tuples at all", P_OPEN P_CLOSE, "pres:bob@sip.example" },
	{ "empty entity, self-closing root",
	  "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity=''/>", "" },
	{ "status without basic: closed",
	  P_OPEN "<tuple id='a'><status/></tuple>" P_CLOSE, "pres:bob@sip.example; a closed - p=- c=- t=-" },
	{ "basic with white space around it",
	  P_OPEN "<tuple id='a'><status><basic>\n  open \t</basic></status></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=-" },
	{ "first of duplicate basic/contact/timestamp wins", P_OPEN
	  "<tuple id='a'><status><basic>open</basic><basic>closed</basic></status>"
	  "<contact>u:1</contact><contact priority='1'>u:2</contact>"
	  "<timestamp>T1</timestamp><timestamp>T2</timestamp></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=u:1 t=T1" },
	{ "unknown elements ignored with everything inside them", P_OPEN
	  "<x:wrap xmlns:x='urn:x'><tuple id='hidden'>" ST_OPEN "</tuple><note>no</note></x:wrap>"
	  "<tuple id='a'>" ST_OPEN "<x:y xmlns:x='urn:x'><note>no</note></x:y><unknown/></tuple>"
	  "<dm:device id='d'><dm:note>device</dm:note></dm:device>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=-" },
	{ "note text: entities, character references, CDATA, mixed content, empty", P_OPEN
	  "<tuple id='a'>" ST_OPEN "<note>a &lt; b &amp;&amp; c &gt; d &quot;&apos;&#233;&#x1F600;</note>"
	  "<note><![CDATA[<b>]]]]><![CDATA[>&amp;]]></note><note>x<b>skipped</b>y</note><note/>"
	  "<note>  spaced  \n</note></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=- [-|a < b && c > d \"'\xc3\xa9\xf0\x9f\x98\x80] "
	  "[-|<b>]]>&amp;] [-|xy] [-|] [-|  spaced  \n]" },
	{ "CRLF line ends, BOM, comments and processing instructions",
	  "\xef\xbb\xbf<?xml version='1.0'?>\r\n<!-- c -->\r\n<?pi x?>" P_OPEN
	  "<!-- inside --><tuple id='a'>" ST_OPEN "<note>l1\r\nl2</note></tuple>" P_CLOSE "\r\n",
	  "pres:bob@sip.example; a open - p=- c=- t=- [-|l1\nl2]" },
	{ "declared encoding ignored: read as UTF-8",
	  "<?xml version='1.0' encoding='ISO-8859-1'?>" P_OPEN "<tuple id='a'>" ST_OPEN
	  "<note>caf\xc3\xa9</note></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=- [-|caf\xc3\xa9]" },
	{ "encoded tuple ids are decoded, others kept", P_OPEN
	  "<tuple id='_Psi_2b_20laptop'>" ST_OPEN "</tuple>"
	  "<tuple id='_abc'>" ST_OPEN "</tuple>"		/* plain: not our encoding */
	  "<tuple id='_x_2B'>" ST_OPEN "</tuple>"		/* upper-case hex: not ours */
	  "<tuple id='_x_61'>" ST_OPEN "</tuple>"		/* 'a' needs no escape: not ours */
	  "<tuple id='_'>" ST_OPEN "</tuple>"			/* the empty resource */
	  "<tuple id='_t_c3_a9l_c3_a9phone'>" ST_OPEN "</tuple>"
	  "<tuple id='_x_c3'>" ST_OPEN "</tuple>"		/* not UTF-8: not ours */
	  "<tuple id='_x_00'>" ST_OPEN "</tuple>"		/* NUL: not ours */
	  "<tuple id='_x_'>" ST_OPEN "</tuple>" P_CLOSE,
	  "pres:bob@sip.example; Psi+ laptop open - p=- c=- t=-; _abc open - p=- c=- t=-; "
	  "_x_2B open - p=- c=- t=-; _x_61 open - p=- c=- t=-;  open - p=- c=- t=-; "
	  "t\xc3\xa9l\xc3\xa9phone open - p=- c=- t=-; _x_c3 open - p=- c=- t=-; "
	  "_x_00 open - p=- c=- t=-; _x_ open - p=- c=- t=-" },
	{ "16 tuples (the limit)", P_OPEN
	  "<tuple id='a'>" ST_OPEN "</tuple><tuple id='b'>" ST_OPEN "</tuple><tuple id='c'>"
	  ST_OPEN "</tuple><tuple id='d'>" ST_OPEN "</tuple><tuple id='e'>" ST_OPEN "</tuple>"
	  "<tuple id='f'>" ST_OPEN "</tuple><tuple id='g'>" ST_OPEN "</tuple><tuple id='h'>"
	  ST_OPEN "</tuple><tuple id='i'>" ST_OPEN "</tuple><tuple id='j'>" ST_OPEN "</tuple>"
	  "<tuple id='k'>" ST_OPEN "</tuple><tuple id='l'>" ST_OPEN "</tuple><tuple id='m'>"
	  ST_OPEN "</tuple><tuple id='n'>" ST_OPEN "</tuple><tuple id='o'>" ST_CLOSED "</tuple>"
	  "<tuple id='p'>" ST_CLOSED "</tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=-; b open - p=- c=- t=-; "
	  "c open - p=- c=- t=-; d open - p=- c=- t=-; e open - p=- c=- t=-; "
	  "f open - p=- c=- t=-; g open - p=- c=- t=-; h open - p=- c=- t=-; "
	  "i open - p=- c=- t=-; j open - p=- c=- t=-; k open - p=- c=- t=-; "
	  "l open - p=- c=- t=-; m open - p=- c=- t=-; n open - p=- c=- t=-; "
	  "o closed - p=- c=- t=-; p closed - p=- c=- t=-" },
	{ "timestamps kept as written", P_OPEN
	  "<tuple id='a'>" ST_OPEN "<timestamp> 2024-05-01T10:00:00.123+02:00 </timestamp></tuple>"
	  "<tuple id='b'>" ST_CLOSED "<timestamp>1985-04-12T23:20:50.52Z</timestamp></tuple>" P_CLOSE,
	  "pres:bob@sip.example; a open - p=- c=- t=2024-05-01T10:00:00.123+02:00; "
	  "b closed - p=- c=- t=1985-04-12T23:20:50.52Z" },
};

static void test_parse(void)
{
	for (size_t i = 0; i < NELEM(parse_rows); i++) {
		const char *name = parse_rows[i].name, *doc = parse_rows[i].doc;
		struct pidf_doc *d = (struct pidf_doc *)1;
		char err[256] = "";
		int r = parse(doc, strlen(doc), MAXTUPLES, &d, err, sizeof(err));

		CHECK_INT(r, 0, "parse: %s (%s)", name, err);
		if (r != 0) {
			CHECK(d == NULL, "parse: %s: no document on failure", name);
			continue;
		}
		char *got = dump_doc(d, 0);
		CHECK_STR(got, parse_rows[i].want, "parse: %s", name);
		free(got);
		pidf_doc_free(d);
	}
}

/* ---- parsing: refusals ----------------------------------------------------------------------- */

#define LAUGHS "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;" \
	"&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;" \
	"&lol2;&lol2;&lol2;\">]>"

static const struct {
	const char *name;
	const char *doc;
	size_t len;		/* 0: strlen */
	size_t max_tuples;
	const char *reason;	/* a part of the error message */
} bad_rows[] = {
	{ "empty input", "", 0, MAXTUPLES, "not well-formed" },
	{ "not XML", "hello, world", 0, MAXTUPLES, "not well-formed" },
	{ "SIP message body of another type", "v=0\r\no=- 0 0 IN IP4 192.0.2.1\r\n", 0, MAXTUPLES,
	  "not well-formed" },
	{ "root in another namespace",
	  "<presence xmlns='urn:ietf:params:xml:ns:pidf:foo' entity='e'/>", 0, MAXTUPLES,
	  "root element is not a PIDF <presence>" },
	{ "root without a namespace", "<presence entity='e'><tuple id='a'/></presence>", 0,
	  MAXTUPLES, "root element" },
	{ "an XMPP presence", "<presence xmlns='jabber:client'><show>away</show></presence>", 0,
	  MAXTUPLES, "root element" },
	{ "PIDF tuple as the root",
	  "<tuple xmlns='urn:ietf:params:xml:ns:pidf' id='a'>" ST_OPEN "</tuple>", 0, MAXTUPLES,
	  "root element" },
	{ "XCAP-like document", "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'/>",
	  0, MAXTUPLES, "root element" },
	{ "presence without entity",
	  "<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='a'>" ST_OPEN "</tuple></presence>",
	  0, MAXTUPLES, "without entity" },
	{ "tuple without status", P_OPEN "<tuple id='a'><note>hi</note></tuple>" P_CLOSE, 0,
	  MAXTUPLES, "tuple without <status>" },
	{ "empty tuple", P_OPEN "<tuple id='a'/>" P_CLOSE, 0, MAXTUPLES, "tuple without <status>" },
	{ "status in another namespace",
	  P_OPEN "<tuple id='a'><x:status xmlns:x='urn:x'><basic>open</basic></x:status></tuple>"
	  P_CLOSE, 0, MAXTUPLES, "tuple without <status>" },
	{ "tuple without id", P_OPEN "<tuple>" ST_OPEN "</tuple>" P_CLOSE, 0, MAXTUPLES,
	  "tuple without id" },
	{ "basic neither open nor closed", P_OPEN "<tuple id='a'><status><basic>busy</basic>"
	  "</status></tuple>" P_CLOSE, 0, MAXTUPLES, "<basic>" },
	{ "empty basic", P_OPEN "<tuple id='a'><status><basic/></status></tuple>" P_CLOSE, 0,
	  MAXTUPLES, "<basic>" },
	{ "basic in upper case", P_OPEN "<tuple id='a'><status><basic>OPEN</basic></status></tuple>"
	  P_CLOSE, 0, MAXTUPLES, "<basic>" },
	{ "DOCTYPE without internal subset", "<!DOCTYPE presence>" P_OPEN P_CLOSE, 0, MAXTUPLES,
	  "DOCTYPE" },
	{ "DOCTYPE with a system id", "<!DOCTYPE presence SYSTEM 'http://example.com/p.dtd'>" P_OPEN
	  P_CLOSE, 0, MAXTUPLES, "DOCTYPE" },
	{ "billion laughs", LAUGHS P_OPEN "<tuple id='a'>" ST_OPEN "<note>&lol3;</note></tuple>"
	  P_CLOSE, 0, MAXTUPLES, "DOCTYPE" },
	{ "external entity (XXE)", "<!DOCTYPE p [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>" P_OPEN
	  "<tuple id='a'>" ST_OPEN "<note>&x;</note></tuple>" P_CLOSE, 0, MAXTUPLES, "DOCTYPE" },
	{ "parameter entity", "<!DOCTYPE p [<!ENTITY % pe 'x'> %pe;]>" P_OPEN P_CLOSE, 0,
	  MAXTUPLES, "DOCTYPE" },
	{ "undefined entity", P_OPEN "<tuple id='a'>" ST_OPEN "<note>&nbsp;</note></tuple>" P_CLOSE,
	  0, MAXTUPLES, "not well-formed" },
	{ "17 tuples, 16 allowed", P_OPEN
	  "<tuple id='a'>" ST_OPEN "</tuple><tuple id='b'>" ST_OPEN "</tuple><tuple id='c'>"
	  ST_OPEN "</tuple><tuple id='d'>" ST_OPEN "</tuple><tuple id='e'>" ST_OPEN "</tuple>"
	  "<tuple id='f'>" ST_OPEN "</tuple><tuple id='g'>" ST_OPEN "</tuple><tuple id='h'>"
	  ST_OPEN "</tuple><tuple id='i'>" ST_OPEN "</tuple><tuple id='j'>" ST_OPEN "</tuple>"
	  "<tuple id='k'>" ST_OPEN "</tuple><tuple id='l'>" ST_OPEN "</tuple><tuple id='m'>"
	  ST_OPEN "</tuple><tuple id='n'>" ST_OPEN "</tuple><tuple id='o'>" ST_CLOSED "</tuple>"
	  "<tuple id='p'>" ST_CLOSED "</tuple><tuple id='q'>" ST_CLOSED "</tuple>" P_CLOSE, 0,
	  MAXTUPLES, "more than 16 tuples" },
	{ "one tuple, none allowed", P_OPEN "<tuple id='a'>" ST_OPEN "</tuple>" P_CLOSE, 0, 0,
	  "more than 0 tuples" },
	{ "unbound prefix", P_OPEN "<tuple id='a'>" ST_OPEN "<x:y/></tuple>" P_CLOSE, 0, MAXTUPLES,
	  "not well-formed" },
	{ "mismatched end tag", P_OPEN "<tuple id='a'>" ST_OPEN "</tupel>" P_CLOSE, 0, MAXTUPLES,
	  "not well-formed" },
	{ "junk after the document", P_OPEN P_CLOSE "x", 0, MAXTUPLES, "not well-formed" },
	{ "two documents", P_OPEN P_CLOSE P_OPEN P_CLOSE, 0, MAXTUPLES, "not well-formed" },
	{ "duplicate attribute", "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='a' "
	  "entity='b'/>", 0, MAXTUPLES, "not well-formed" },
	{ "truncated in a tag", P_OPEN "<tuple id='a'><sta", 0, MAXTUPLES, "not well-formed" },
	{ "truncated before the end tag", P_OPEN "<tuple id='a'>" ST_OPEN "</tuple>", 0, MAXTUPLES,
	  "not well-formed" },
	{ "invalid UTF-8 in a note", P_OPEN "<tuple id='a'>" ST_OPEN "<note>caf\xc3(</note></tuple>"
	  P_CLOSE, 0, MAXTUPLES, "not UTF-8" },
	{ "overlong UTF-8 '<'", P_OPEN "<tuple id='a'>" ST_OPEN "<note>\xc0\xbc</note></tuple>"
	  P_CLOSE, 0, MAXTUPLES, "not UTF-8" },
	{ "UTF-16 surrogate in UTF-8", P_OPEN "<tuple id='a'>" ST_OPEN "<note>\xed\xa0\x80</note>"
	  "</tuple>" P_CLOSE, 0, MAXTUPLES, "not UTF-8" },
	{ "Latin-1 despite the declaration",
	  "<?xml version='1.0' encoding='ISO-8859-1'?>" P_OPEN "<tuple id='a'>" ST_OPEN
	  "<note>caf\xe9</note></tuple>" P_CLOSE, 0, MAXTUPLES, "not UTF-8" },
	{ "NUL inside", P_OPEN "<tuple id='a'>" ST_OPEN "<note>a\0b</note></tuple>" P_CLOSE,
	  sizeof(P_OPEN "<tuple id='a'>" ST_OPEN "<note>a\0b</note></tuple>" P_CLOSE) - 1,
	  MAXTUPLES, "character XML does not allow" },
	{ "control character", P_OPEN "<tuple id='a'>" ST_OPEN "<note>\x1b[31m</note></tuple>"
	  P_CLOSE, 0, MAXTUPLES, "character XML does not allow" },
	{ "character reference to a forbidden character", P_OPEN "<tuple id='a'>" ST_OPEN
	  "<note>&#1;</note></tuple>" P_CLOSE, 0, MAXTUPLES, "not well-formed" },
	{ "nesting deeper than 64", P_OPEN
	  "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
	  "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
	  "<a><a><a><a><a><a><a><a><a><a>", 0, MAXTUPLES, "deeper than 64" },
};

static void test_refusals(void)
{
	for (size_t i = 0; i < NELEM(bad_rows); i++) {
		const char *name = bad_rows[i].name;
		size_t len = bad_rows[i].len ? bad_rows[i].len : strlen(bad_rows[i].doc);
		struct pidf_doc *d = (struct pidf_doc *)1;
		char err[256] = "";
		int r = parse(bad_rows[i].doc, len, bad_rows[i].max_tuples, &d, err, sizeof(err));

		CHECK_INT(r, -1, "refuse: %s", name);
		CHECK(d == NULL, "refuse: %s: no document", name);
		CHECK(strstr(err, bad_rows[i].reason) != NULL && !strchr(err, '\n'),
		      "refuse: %s: reason \"%s\" has \"%s\"", name, err, bad_rows[i].reason);
		if (r == 0)
			pidf_doc_free(d);
	}
	/* the reason is cut to the caller's buffer, and no buffer at all is fine */
	{
		char err[8];
		struct pidf_doc *d;

		memset(err, 'x', sizeof(err));
		CHECK_INT(parse("x", 1, MAXTUPLES, &d, err, sizeof(err)), -1, "tiny err buffer");
		CHECK(memchr(err, '\0', sizeof(err)) != NULL, "tiny err buffer: terminated");
		CHECK_INT(parse("x", 1, MAXTUPLES, &d, NULL, 0), -1, "no err buffer");
	}
}

/* ---- sizes and truncation ------------------------------------------------------------------- */

static const char full_doc[] = P_OPEN "<tuple id='a'>" ST_OPEN "<sg:show>xa</sg:show>"
	"<contact priority='0.5'>sip:bob@sip.example</contact><note xml:lang='en'>Out</note>"
	"<timestamp>2024-01-01T00:00:00Z</timestamp></tuple><dm:person id='p'><rpid:activities>"
	"<rpid:away/></rpid:activities></dm:person>" P_CLOSE;

static void test_sizes(void)
{
	size_t len = strlen(full_doc);
	struct pidf_doc *d;
	char err[256] = "";

	/* exactly max_len is fine, one byte more is not */
	CHECK_INT(pidf_parse(full_doc, len, len, 1, &d, err, sizeof(err)), 0, "len == max_len (%s)",
		  err);
	pidf_doc_free(d);
	CHECK_INT(pidf_parse(full_doc, len, len - 1, 1, &d, err, sizeof(err)), -1, "len > max_len");
	CHECK(strstr(err, "larger than") != NULL, "oversized: reason \"%s\"", err);
	/* a large document: 200 kB of note */
	{
		size_t big = 200000;
		char *buf = malloc(big + 1024), *p = buf;

		if (!buf)
			abort();
		p += sprintf(p, "%s<tuple id='a'>%s<note>", P_OPEN, ST_OPEN);
		memset(p, 'n', big);
		p += big;
		p += sprintf(p, "</note></tuple>%s", P_CLOSE);
		CHECK_INT(pidf_parse(buf, (size_t)(p - buf), MAXLEN, 1, &d, err, sizeof(err)), -1,
			  "200 kB document with a 64 kB limit");
		CHECK_INT(pidf_parse(buf, (size_t)(p - buf), 1 << 20, 1, &d, err, sizeof(err)), 0,
			  "200 kB document with a 1 MB limit (%s)", err);
		if (d) {
			CHECK_INT(strlen(d->tuples[0].notes[0].text), big, "200 kB note kept whole");
			pidf_doc_free(d);
		}
		free(buf);
	}
	/* every proper prefix of a document is refused (truncated in transit) */
	for (size_t n = 0; n < len; n++) {
		int r = parse(full_doc, n, 1, &d, err, sizeof(err));

		CHECK_INT(r, -1, "prefix of %zu/%zu bytes refused", n, len);
		if (r == 0)
			pidf_doc_free(d);
	}
	CHECK_INT(parse(full_doc, len, 1, &d, err, sizeof(err)), 0, "the whole document (%s)", err);
	if (d) {
		char *got = dump_doc(d, 0);

		CHECK_STR(got, "pres:bob@sip.example; a open xa p=0 c=sip:bob@sip.example "
			  "t=2024-01-01T00:00:00Z [en|Out]", "the whole document");
		free(got);
		pidf_doc_free(d);
	}
}

/* ---- writing --------------------------------------------------------------------------------- */

static void test_build(void)
{
	struct pidf_note notes[] = { { "Out to lunch", "en" }, { "Zum Mittagessen", "de" } };
	struct pidf_tuple t[] = {
		{ "balcony", 1, PIDF_SHOW_AWAY, notes, 2, 1, 5, "xmpp:juliet@example.com/balcony",
		  "2024-05-01T10:00:00Z" },
		{ "Psi+ laptop", 0, PIDF_SHOW_NONE, NULL, 0, 1, -1, NULL, NULL },
	};
	struct pidf_doc d = { "pres:juliet@example.com", t, 2 }, empty = { NULL, NULL, 0 };
	size_t len;
	char *xml = pidf_build(&d, &len);

	CHECK_STR(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
		  "xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
		  "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" "
		  "xmlns:sg=\"urn:simplegw:pidf:1\" entity=\"pres:juliet@example.com\">"
		  "<tuple id=\"balcony\"><status><basic>open</basic></status><sg:show>away</sg:show>"
		  "<contact priority=\"0.520\">xmpp:juliet@example.com/balcony</contact>"
		  "<note xml:lang=\"en\">Out to lunch</note><note xml:lang=\"de\">Zum Mittagessen</note>"
		  "<timestamp>2024-05-01T10:00:00Z</timestamp></tuple>"
		  "<tuple id=\"_Psi_2b_20laptop\"><status><basic>closed</basic></status><sg:show></sg:show>"
		  "<sg:priority>-1</sg:priority></tuple>"
		  "<dm:person id=\"_person_\"><rpid:activities><rpid:away/></rpid:activities>"
		  "<dm:note xml:lang=\"en\">Out to lunch</dm:note>"
		  "<dm:note xml:lang=\"de\">Zum Mittagessen</dm:note></dm:person></presence>\n",
		  "pidf_build: the whole document");
	CHECK_INT(len, strlen(xml), "pidf_build: length");
	free(xml);

	xml = pidf_build(&empty, NULL);
	CHECK_STR(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		  "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:sg=\"urn:simplegw:pidf:1\" "
		  "entity=\"\"></presence>\n", "pidf_build: no tuples, no entity");
	free(xml);

	/* the person speaks for the lead tuple: open first, then the highest priority */
	static const struct {
		int open[3], has_prio[3], prio[3];
		const char *want;	/* the person's note, or NULL for no person */
	} leads[] = {
		{ { 1, 1, 1 }, { 0, 0, 0 }, { 0, 0, 0 }, "n0" },
		{ { 0, 1, 1 }, { 0, 0, 0 }, { 0, 0, 0 }, "n1" },
		{ { 1, 1, 1 }, { 1, 1, 1 }, { 1, 5, 5 }, "n1" },
		{ { 1, 1, 1 }, { 1, 0, 1 }, { -1, 0, -5 }, "n1" },
		{ { 0, 0, 1 }, { 1, 1, 0 }, { 100, 100, -128 }, "n2" },
		{ { 0, 0, 0 }, { 1, 1, 1 }, { 1, 2, 3 }, "n2" },
	};
	for (size_t i = 0; i < NELEM(leads); i++) {
		struct pidf_note n[3] = { { "n0", NULL }, { "n1", NULL }, { "n2", NULL } };
		struct pidf_tuple lt[3];
		struct pidf_doc ld = { "e", lt, 3 };
		char want[64];

		for (int k = 0; k < 3; k++) {
			struct pidf_tuple one = { "t", leads[i].open[k], PIDF_SHOW_NONE, &n[k], 1,
						  leads[i].has_prio[k], leads[i].prio[k], NULL, NULL };
			lt[k] = one;
		}
		xml = pidf_build(&ld, NULL);
		snprintf(want, sizeof(want), "<dm:note>%s</dm:note></dm:person>", leads[i].want);
		CHECK(strstr(xml, want) != NULL, "lead tuple row %zu: %s", i, xml);
		free(xml);
	}
	/* no person when the lead tuple has neither activity nor notes */
	{
		struct pidf_tuple one = { "a", 1, PIDF_SHOW_CHAT, NULL, 0, 0, 0, NULL, NULL };
		struct pidf_doc od = { "e", &one, 1 };

		xml = pidf_build(&od, NULL);
		CHECK(strstr(xml, "person") == NULL && strstr(xml, "xmlns:dm") == NULL,
		      "no person for chat without notes: %s", xml);
		CHECK(strstr(xml, "<sg:show>chat</sg:show>") != NULL, "chat carried exactly: %s", xml);
		free(xml);
	}
}

/* ---- escaping and ids ------------------------------------------------------------------------ */

static const struct {
	const char *id, *written;
} id_rows[] = {
	{ "balcony", "balcony" },
	{ "Conversations.xYz1", "Conversations.xYz1" },
	{ "gajim.ABC-12_3", "gajim.ABC-12_3" },
	{ "Psi+ laptop", "_Psi_2b_20laptop" },
	{ "", "_" },
	{ "1abc", "_1abc" },
	{ "-x", "_-x" },
	{ ".x", "_.x" },
	{ "_x", "__5fx" },
	{ "_person_", "__5fperson_5f" },
	{ "a_b c", "_a_5fb_20c" },
	{ "t\xc3\xa9l\xc3\xa9phone", "_t_c3_a9l_c3_a9phone" },
	{ "<&\"'>]]>", "__3c_26_22_27_3e_5d_5d_3e" },
	{ "a:b/c@d", "_a_3ab_2fc_40d" },
	{ "tab\there\r\n", "_tab_09here_0d_0a" },
};

static const char *const nasty[] = {
	"a < b & c > d",
	"\"double\" and 'single' quotes",
	"]]> and <![CDATA[ x ]]>",
	"&amp; &lt; &#233; literal entity text",
	"line one\nline two\r\nline three\rend",
	"\ttabs\tand  spaces  ",
	"</note><note>injected</note>",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
	"",
	" ",
};

static void test_escaping(void)
{
	/* ids: how they are written, and that they come back */
	for (size_t i = 0; i < NELEM(id_rows); i++) {
		struct pidf_tuple t = { (char *)id_rows[i].id, 1, PIDF_SHOW_NONE, NULL, 0, 0, 0,
					NULL, NULL };
		struct pidf_doc d = { "e", &t, 1 }, *back = NULL;
		char *xml = pidf_build(&d, NULL), want[128];

		snprintf(want, sizeof(want), "<tuple id=\"%s\">", id_rows[i].written);
		CHECK(strstr(xml, want) != NULL, "id \"%s\" written as %s: %s", id_rows[i].id,
		      id_rows[i].written, xml);
		CHECK_INT(parse(xml, strlen(xml), 1, &back, NULL, 0), 0, "id \"%s\": parses",
			  id_rows[i].id);
		if (back) {
			CHECK_STR(back->tuples[0].id, id_rows[i].id, "id \"%s\" round trip", id_rows[i].id);
			pidf_doc_free(back);
		}
		free(xml);
	}
	/* notes, languages, entity, contact and timestamp holding markup characters */
	for (size_t i = 0; i < NELEM(nasty); i++) {
		struct pidf_note n[2] = { { (char *)nasty[i], (char *)"en" },
					  { (char *)nasty[i], NULL } };
		struct pidf_tuple t = { (char *)nasty[i], 1, PIDF_SHOW_DND, n, 2, 1, 3,
					(char *)nasty[i], (char *)nasty[i] };
		struct pidf_doc d = { (char *)nasty[i], &t, 1 }, *back = NULL;
		char err[256] = "", *xml = pidf_build(&d, NULL), *want, *got;

		CHECK(strstr(xml, "]]>") == NULL, "nasty %zu: no ]]> in the output", i);
		CHECK(strstr(xml, "injected</note>") == NULL || strstr(xml, "&lt;/note&gt;"),
		      "nasty %zu: no injection", i);
		CHECK_INT(parse(xml, strlen(xml), 1, &back, err, sizeof(err)), 0,
			  "nasty %zu parses (%s): %s", i, err, xml);
		if (back) {
			/* contact and timestamp are trimmed values: compare them separately */
			CHECK_STR(back->entity, nasty[i], "nasty %zu: entity", i);
			CHECK_STR(back->tuples[0].id, nasty[i], "nasty %zu: id", i);
			CHECK(back->tuples[0].nnotes == 2, "nasty %zu: two notes", i);
			if (back->tuples[0].nnotes == 2) {
				CHECK_STR(back->tuples[0].notes[0].text, nasty[i], "nasty %zu: note", i);
				CHECK_STR(back->tuples[0].notes[0].lang, "en", "nasty %zu: lang", i);
				CHECK_STR(back->tuples[0].notes[1].text, nasty[i], "nasty %zu: note 2", i);
				CHECK_STR(back->tuples[0].notes[1].lang, NULL, "nasty %zu: no lang", i);
			}
			/* the dumps agree once values are trimmed as the parser trims them */
			want = dump_doc(&d, 1);
			got = dump_doc(back, 1);
			if (strspn(nasty[i], " \t\r\n") == 0 &&
			    !strchr(" \t\r\n", nasty[i][strlen(nasty[i]) ? strlen(nasty[i]) - 1 : 0]))
				CHECK_STR(got, want, "nasty %zu: whole tuple", i);
			free(want);
			free(got);
			pidf_doc_free(back);
		}
		free(xml);
	}
	/* what is not text at all becomes U+FFFD, and the result stays well-formed */
	{
		struct pidf_note n = { "bad \xff byte, \x01 control, \xc3 cut", (char *)"e\xffn" };
		struct pidf_tuple t = { "r", 1, PIDF_SHOW_NONE, &n, 1, 0, 0, NULL, NULL };
		struct pidf_doc d = { "e\x02", &t, 1 }, *back = NULL;
		char *xml = pidf_build(&d, NULL);

		CHECK_INT(parse(xml, strlen(xml), 1, &back, NULL, 0), 0, "invalid bytes: parses: %s", xml);
		if (back) {
			CHECK_STR(back->tuples[0].notes[0].text,
				  "bad \xef\xbf\xbd byte, \xef\xbf\xbd control, \xef\xbf\xbd cut",
				  "invalid bytes: replaced");
			CHECK_STR(back->entity, "e\xef\xbf\xbd", "invalid entity byte: replaced");
			pidf_doc_free(back);
		}
		free(xml);
	}
}

/* ---- XMPP <presence/> ------------------------------------------------------------------------ */

/* libstrophe's own parser reports xml:lang as "lang" (it drops attribute namespaces); our
 * stream parser (xmpp/parser.c) keeps "xml:lang", which is what pidf.c reads.  Rename. */
static void fix_lang(xmpp_stanza_t *s)
{
	const char *lang;

	if (!xmpp_stanza_is_tag(s))
		return;
	if ((lang = xmpp_stanza_get_attribute(s, "lang")) != NULL) {
		char *copy = strdup(lang);

		if (!copy)
			abort();
		xmpp_stanza_del_attribute(s, "lang");
		xmpp_stanza_set_attribute(s, "xml:lang", copy);
		free(copy);
	}
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c))
		fix_lang(c);
}

static xmpp_stanza_t *stanza_from(xmpp_ctx_t *ctx, const char *xml)
{
	xmpp_stanza_t *s = xmpp_stanza_new_from_string(ctx, xml);

	if (s)
		fix_lang(s);
	return s;
}

static char *to_text(xmpp_stanza_t *s)
{
	char *buf = NULL, *copy;
	size_t len;

	if (xmpp_stanza_to_text(s, &buf, &len) != XMPP_EOK)
		return NULL;
	copy = strdup(buf);
	xmpp_free(xmpp_stanza_get_context(s), buf);
	return copy;
}

#define PR "<presence from='juliet@example.com/balcony' to='romeo@sip.example'"

static const struct {
	const char *name;
	const char *xml;
	const char *resource;
	const char *want;	/* dump of the tuple; NULL: not an availability presence */
	const char *back;	/* pidf_tuple_to_presence() of it, as libstrophe writes it, or NULL */
} xmpp_rows[] = {
	{ "plain available", PR "/>", "balcony", "balcony open - p=- c=- t=-", "<presence/>" },
	{ "away with status", PR "><show>away</show><status>Be right back</status></presence>",
	  "balcony", "balcony open away p=- c=- t=- [-|Be right back]",
	  "<presence><show>away</show><status>Be right back</status></presence>" },
	{ "xa", PR "><show>xa</show></presence>", "r", "r open xa p=- c=- t=-",
	  "<presence><show>xa</show></presence>" },
	{ "dnd", PR "><show>dnd</show><status>Busy!</status></presence>", "r",
	  "r open dnd p=- c=- t=- [-|Busy!]", NULL },
	{ "chat", PR "><show>chat</show></presence>", "r", "r open chat p=- c=- t=-", NULL },
	{ "unknown show ignored", PR "><show>sleepy</show></presence>", "r", "r open - p=- c=- t=-",
	  NULL },
	{ "first valid show counts", PR "><show>bogus</show><show>dnd</show><show>away</show>"
	  "</presence>", "r", "r open dnd p=- c=- t=-", NULL },
	{ "unavailable", PR " type='unavailable'/>", "r", "r closed - p=- c=- t=-",
	  "<presence type=\"unavailable\"/>" },
	{ "unavailable with status", PR " type='unavailable'><status>Logged out</status></presence>",
	  "r", "r closed - p=- c=- t=- [-|Logged out]",
	  "<presence type=\"unavailable\"><status>Logged out</status></presence>" },
	{ "unavailable: show does not apply", PR " type='unavailable'><show>away</show></presence>",
	  "r", "r closed - p=- c=- t=-", NULL },
	{ "several languages", PR " xml:lang='en'><status>Hi</status><status xml:lang='fr'>Salut"
	  "</status><status xml:lang='de-CH'>Gr\xc3\xbc\x65zi</status></presence>", "r",
	  "r open - p=- c=- t=- [en|Hi] [fr|Salut] [de-CH|Gr\xc3\xbc\x65zi]",
	  "<presence><status xml:lang=\"en\">Hi</status><status xml:lang=\"fr\">Salut</status>"
	  "<status xml:lang=\"de-CH\">Gr\xc3\xbc\x65zi</status></presence>" },
	{ "status without language", PR "><status xml:lang='es'>Hola</status><status>Hello</status>"
	  "</presence>", "r", "r open - p=- c=- t=- [es|Hola] [-|Hello]", NULL },
	{ "empty status", PR "><status/></presence>", "r", "r open - p=- c=- t=- [-|]",
	  "<presence><status/></presence>" },
	{ "status with markup characters",
	  PR "><status>a &lt; b &amp; \"c\" 'd' ]]&gt; e</status></presence>", "r",
	  "r open - p=- c=- t=- [-|a < b & \"c\" 'd' ]]> e]", NULL },
	{ "priority 0", PR "><priority>0</priority></presence>", "r", "r open - p=0 c=- t=-",
	  "<presence><priority>0</priority></presence>" },
	{ "priority -128", PR "><priority>-128</priority></presence>", "r",
	  "r open - p=-128 c=- t=-", NULL },
	{ "priority 127", PR "><priority>127</priority></presence>", "r", "r open - p=127 c=- t=-",
	  NULL },
	{ "priority -5", PR "><priority>-5</priority></presence>", "r", "r open - p=-5 c=- t=-",
	  "<presence><priority>-5</priority></presence>" },
	{ "priority +7", PR "><priority>+7</priority></presence>", "r", "r open - p=7 c=- t=-", NULL },
	{ "priority 128 ignored", PR "><priority>128</priority></presence>", "r",
	  "r open - p=- c=- t=-", NULL },
	{ "priority -129 ignored", PR "><priority>-129</priority></presence>", "r",
	  "r open - p=- c=- t=-", NULL },
	{ "priority not a number", PR "><priority>high</priority></presence>", "r",
	  "r open - p=- c=- t=-", NULL },
	{ "priority with spaces ignored", PR "><priority> 5</priority></presence>", "r",
	  "r open - p=- c=- t=-", NULL },
	{ "delay", PR "><delay xmlns='urn:xmpp:delay' from='example.com' "
	  "stamp='2002-09-10T23:41:07Z'>Offline storage</delay></presence>", "r",
	  "r open - p=- c=- t=2002-09-10T23:41:07Z",
	  "<presence><delay stamp=\"2002-09-10T23:41:07Z\" xmlns=\"urn:xmpp:delay\"/></presence>" },
	{ "legacy jabber:x:delay ignored", PR "><x xmlns='jabber:x:delay' stamp='20020910T23:41:07'/>"
	  "<delay stamp='2002-09-10T23:41:07Z'/></presence>", "r", "r open - p=- c=- t=-", NULL },
	{ "everything", PR " xml:lang='en'><show>xa</show><status>Gone fishing</status>"
	  "<status xml:lang='ja'>\xe9\x87\xa3\xe3\x82\x8a</status><priority>-1</priority>"
	  "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>"
	  "<delay xmlns='urn:xmpp:delay' stamp='2024-05-01T10:00:00.123Z'/></presence>",
	  "Psi+ laptop <1>",
	  "Psi+ laptop <1> open xa p=-1 c=- t=2024-05-01T10:00:00.123Z [en|Gone fishing] "
	  "[ja|\xe9\x87\xa3\xe3\x82\x8a]",
	  "<presence><show>xa</show><status xml:lang=\"en\">Gone fishing</status><status "
	  "xml:lang=\"ja\">\xe9\x87\xa3\xe3\x82\x8a</status><priority>-1</priority><delay "
	  "stamp=\"2024-05-01T10:00:00.123Z\" xmlns=\"urn:xmpp:delay\"/></presence>" },
	{ "no resource", PR "/>", NULL, " open - p=- c=- t=-", NULL },
	{ "unicode resource", PR "/>", "t\xc3\xa9l\xc3\xa9phone",
	  "t\xc3\xa9l\xc3\xa9phone open - p=- c=- t=-", NULL },
	{ "resource looking like our encoding", PR "/>", "_x_2b", "_x_2b open - p=- c=- t=-", NULL },
	/* not availability */
	{ "subscribe", PR " type='subscribe'/>", "r", NULL, NULL },
	{ "subscribed", PR " type='subscribed'/>", "r", NULL, NULL },
	{ "unsubscribe", PR " type='unsubscribe'/>", "r", NULL, NULL },
	{ "unsubscribed", PR " type='unsubscribed'/>", "r", NULL, NULL },
	{ "probe", PR " type='probe'/>", "r", NULL, NULL },
	{ "error", PR " type='error'><error type='cancel'/></presence>", "r", NULL, NULL },
	{ "a message", "<message><body>hi</body></message>", "r", NULL, NULL },
};

static void test_xmpp(xmpp_ctx_t *ctx)
{
	for (size_t i = 0; i < NELEM(xmpp_rows); i++) {
		const char *name = xmpp_rows[i].name;
		xmpp_stanza_t *s = stanza_from(ctx, xmpp_rows[i].xml), *back;
		struct pidf_tuple t, t2;
		struct pidf_doc d = { "pres:juliet@example.com", &t, 1 }, *pd = NULL;
		char *xml, *got, *text;
		int r;

		CHECK(s != NULL, "xmpp: %s: stanza parses", name);
		if (!s)
			continue;
		memset(&t, 0xa5, sizeof(t));
		r = pidf_tuple_from_presence(s, xmpp_rows[i].resource, &t);
		CHECK_INT(r, xmpp_rows[i].want ? 0 : -1, "xmpp: %s: verdict", name);
		if (r != 0) {
			CHECK(t.id == NULL && t.notes == NULL, "xmpp: %s: zeroed on refusal", name);
			xmpp_stanza_release(s);
			continue;
		}
		got = dump_one(&t);
		CHECK_STR(got, xmpp_rows[i].want, "xmpp -> tuple: %s", name);
		free(got);

		/* XMPP -> PIDF -> XMPP: nothing the user typed is lost */
		xml = pidf_build(&d, NULL);
		CHECK_INT(parse(xml, strlen(xml), 1, &pd, NULL, 0), 0, "xmpp: %s: document parses: %s",
			  name, xml);
		if (pd) {
			got = dump_one(&pd->tuples[0]);
			CHECK_STR(got, xmpp_rows[i].want, "xmpp -> pidf -> tuple: %s (%s)", name, xml);
			free(got);
			back = pidf_tuple_to_presence(ctx, &pd->tuples[0]);
			CHECK_STR(xmpp_stanza_get_to(back), NULL, "xmpp: %s: no to", name);
			CHECK_STR(xmpp_stanza_get_from(back), NULL, "xmpp: %s: no from", name);
			if (xmpp_rows[i].back) {
				text = to_text(back);
				CHECK_STR(text, xmpp_rows[i].back, "tuple -> xmpp: %s", name);
				free(text);
			}
			CHECK_INT(pidf_tuple_from_presence(back, pd->tuples[0].id, &t2), 0,
				  "xmpp: %s: back again", name);
			got = dump_one(&t2);
			CHECK_STR(got, xmpp_rows[i].want, "xmpp -> pidf -> xmpp: %s", name);
			free(got);
			pidf_tuple_clear(&t2);
			xmpp_stanza_release(back);
			pidf_doc_free(pd);
		}
		free(xml);
		pidf_tuple_clear(&t);
		CHECK(t.id == NULL && t.nnotes == 0, "xmpp: %s: cleared", name);
		xmpp_stanza_release(s);
	}
	pidf_tuple_clear(NULL);
	pidf_doc_free(NULL);
}

/* SIP -> XMPP -> SIP: every parse row's document, through stanzas and back, gives the same
 * document (minus what XMPP has no place for: the contact URI, a show while closed). */
static void test_sip_round_trip(xmpp_ctx_t *ctx)
{
	for (size_t i = 0; i < NELEM(parse_rows); i++) {
		const char *name = parse_rows[i].name;
		struct pidf_doc *d1 = NULL, *d3 = NULL, d2;
		char *xml, *a, *b;

		if (parse(parse_rows[i].doc, strlen(parse_rows[i].doc), MAXTUPLES, &d1, NULL, 0) != 0)
			continue;	/* reported by test_parse */
		d2.entity = d1->entity;
		d2.ntuples = d1->ntuples;
		d2.tuples = calloc(d1->ntuples + 1, sizeof(*d2.tuples));
		if (!d2.tuples)
			abort();
		for (size_t k = 0; k < d1->ntuples; k++) {
			xmpp_stanza_t *s = pidf_tuple_to_presence(ctx, &d1->tuples[k]);

			CHECK_INT(pidf_tuple_from_presence(s, d1->tuples[k].id, &d2.tuples[k]), 0,
				  "sip round trip: %s: tuple %zu", name, k);
			xmpp_stanza_release(s);
		}
		xml = pidf_build(&d2, NULL);
		CHECK_INT(parse(xml, strlen(xml), MAXTUPLES, &d3, NULL, 0), 0,
			  "sip round trip: %s: parses", name);
		if (d3) {
			a = dump_doc(d1, 1);
			b = dump_doc(d3, 1);
			CHECK_STR(b, a, "sip -> xmpp -> sip: %s", name);
			free(a);
			free(b);
			/* and writing is stable: build(parse(build(x))) == build(x) */
			a = pidf_build(d3, NULL);
			CHECK_STR(a, xml, "sip round trip: %s: writing is stable", name);
			free(a);
		}
		for (size_t k = 0; k < d2.ntuples; k++)
			pidf_tuple_clear(&d2.tuples[k]);
		free(d2.tuples);
		free(xml);
		pidf_doc_free(d1);
		pidf_doc_free(d3);
	}
}

/* Several resources of one JID -> one document -> the same resources back. */
static void test_multi_resource(xmpp_ctx_t *ctx)
{
	static const struct {
		const char *resource, *xml;
	} res[] = {
		{ "phone", "<presence><show>away</show><status xml:lang='en'>On the bus</status>"
			   "<priority>-1</priority></presence>" },
		{ "desktop", "<presence><show>xa</show><priority>10</priority></presence>" },
		{ "web client", "<presence><show>chat</show><status>Talk to me</status></presence>" },
		{ "old", "<presence type='unavailable'><status>Bye</status></presence>" },
		{ "plain", "<presence/>" },
	};
	struct pidf_tuple t[NELEM(res)];
	struct pidf_doc d = { "pres:juliet@example.com", t, NELEM(res) }, *back = NULL;
	char *xml, *want, *got;

	for (size_t i = 0; i < NELEM(res); i++) {
		xmpp_stanza_t *s = stanza_from(ctx, res[i].xml);

		CHECK(s && pidf_tuple_from_presence(s, res[i].resource, &t[i]) == 0,
		      "multi: %s", res[i].resource);
		if (s)
			xmpp_stanza_release(s);
	}
	xml = pidf_build(&d, NULL);
	/* the person speaks for "desktop" (open, priority 10): xa as RPID away */
	CHECK(strstr(xml, "<dm:person id=\"_person_\"><rpid:activities><rpid:away/>"
		      "</rpid:activities></dm:person>") != NULL, "multi: person: %s", xml);
	CHECK_INT(parse(xml, strlen(xml), NELEM(res), &back, NULL, 0), 0, "multi: parses");
	if (back) {
		want = dump_doc(&d, 0);
		got = dump_doc(back, 0);
		CHECK_STR(got, want, "multi: every resource back as it was");
		CHECK_STR(want, "pres:juliet@example.com; phone open away p=-1 c=- t=- [en|On the bus]; "
			  "desktop open xa p=10 c=- t=-; web client open chat p=- c=- t=- [-|Talk to me]; "
			  "old closed - p=- c=- t=- [-|Bye]; plain open - p=- c=- t=-", "multi: content");
		free(want);
		free(got);
		pidf_doc_free(back);
	}
	/* a standard peer reading only PIDF + RPID sees away for the lead tuple */
	free(xml);
	for (size_t i = 0; i < NELEM(res); i++)
		pidf_tuple_clear(&t[i]);
}

int main(void)
{
	xmpp_ctx_t *ctx;

	test_show_table();
	test_priority();
	test_parse();
	test_refusals();
	test_sizes();
	test_build();
	test_escaping();

	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	if (!ctx)
		abort();
	test_xmpp(ctx);
	test_sip_round_trip(ctx);
	test_multi_resource(ctx);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	TEST_DONE();
}
