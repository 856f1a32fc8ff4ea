/* audit.c - the audit log: one JSON line per cross-domain SIP transaction (audit.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../conf/conf.h"
#include "audit.h"
#include "gw.h"

#define AUDIT_LINE_MAX 16384	/* a line longer than this has its values cut */

static struct {
	const struct conf *conf;
	int fd;			/* -1: none (syslog, or not configured) */
	int use_syslog;
	unsigned long lines, errors;
	struct log_limit err_log;
} audit = { .fd = -1 };

static int audit_open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

int audit_open(const struct conf *conf)
{
	audit.conf = conf;
	audit.use_syslog = conf->audit_syslog && !conf->audit_file;
	if (!conf->audit_file)
		return 0;
	audit.fd = audit_open_file(conf->audit_file);
	if (audit.fd < 0) {
		log_error("cannot open the audit log %s: %s", conf->audit_file, strerror(errno));
		return -1;
	}
	log_notice("audit log: %s%s", conf->audit_file,
		   conf->audit_content ? " (message content included)" : "");
	return 0;
}

void audit_reopen(void)
{
	int fd;

	if (!audit.conf || !audit.conf->audit_file)
		return;
	fd = audit_open_file(audit.conf->audit_file);
	if (fd < 0) {
		log_error("cannot reopen the audit log %s: %s (still writing to the file opened "
			  "before)", audit.conf->audit_file, strerror(errno));
		return;
	}
	if (audit.fd >= 0)
		close(audit.fd);
	audit.fd = fd;
	log_notice("audit log %s reopened", audit.conf->audit_file);
}

void audit_close(void)
{
	if (audit.fd >= 0)
		close(audit.fd);
	audit.fd = -1;
	audit.conf = NULL;
	audit.use_syslog = 0;
}

const char *audit_verdict(int status)
{
	if (status >= 200 && status < 300)
		return "accepted";
	if (status >= 300)
		return "refused";
	return "failed";
}

struct out {
	char *buf;
	size_t len, n;
};

/* Bytes always kept free at the end: a closing quote, "}\n" and the NUL. */
#define AUDIT_MARGIN 8

/* Appends s if it fits within the margin; returns 0 if it did not (nothing written). */
static int put(struct out *o, const char *s, size_t n)
{
	if (o->n + n + AUDIT_MARGIN > o->len)
		return 0;
	memcpy(o->buf + o->n, s, n);
	o->n += n;
	return 1;
}

/* ,"name":"value" (value escaped, cut at a character boundary when the line is full; null for
 * NULL).  A field that cannot even begin is left out, so the line stays valid JSON. */
static void put_field(struct out *o, const char *name, const char *s, size_t n, int first)
{
	char esc[8];
	size_t keep = o->n;

	if (!put(o, &",\""[first], 2 - (size_t)first) || !put(o, name, strlen(name)) ||
	    !put(o, "\":", 2) || !put(o, s ? "\"" : "null", s ? 1 : 4)) {
		o->n = keep;
		return;
	}
	if (!s)
		return;
	for (size_t i = 0; i < n;) {
		const unsigned char *c = (const unsigned char *)s + i;
		unsigned long cp;
		size_t l = gw_utf8_decode(c, n - i, &cp);
		int ok;

		if (l == 0) {
			ok = put(o, "\\ufffd", 6);
			l = 1;
		} else if (*c == '"' || *c == '\\') {
			esc[0] = '\\', esc[1] = (char)*c;
			ok = put(o, esc, 2);
		} else if (*c < 0x20 || *c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			ok = put(o, esc, 6);
		} else {
			ok = put(o, (const char *)c, l);
		}
		if (!ok)
			break;
		i += l;
	}
	o->buf[o->n++] = '"';	/* the margin has room for it */
}

size_t audit_format(const struct audit_rec *r, double time_s, int with_content, char *buf,
		    size_t len)
{
	struct out o = { buf, len, 0 };
	char ts[96], num[24];
	time_t secs = (time_t)time_s;
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)((time_s - (double)secs) * 1000.0) % 1000);
	put(&o, "{", 1);
	put_field(&o, "time", ts, strlen(ts), 1);
	put_field(&o, "peer", r->peer, r->peer ? strlen(r->peer) : 0, 0);
	put_field(&o, "direction", r->direction, r->direction ? strlen(r->direction) : 0, 0);
	put_field(&o, "service", r->service, r->service ? strlen(r->service) : 0, 0);
	put_field(&o, "method", r->method, r->method ? strlen(r->method) : 0, 0);
	put_field(&o, "from", r->from, r->from ? strlen(r->from) : 0, 0);
	put_field(&o, "to", r->to, r->to ? strlen(r->to) : 0, 0);
	put_field(&o, "verdict", audit_verdict(r->status), strlen(audit_verdict(r->status)), 0);
	snprintf(num, sizeof(num), ",\"status\":%d", r->status);
	put(&o, num, strlen(num));
	put_field(&o, "reason", r->phrase, r->phrase ? strlen(r->phrase) : 0, 0);
	put_field(&o, "call_id", r->call_id, r->call_id ? strlen(r->call_id) : 0, 0);
	put_field(&o, "source", r->source, r->source ? strlen(r->source) : 0, 0);
	if (with_content && r->content)
		put_field(&o, "content", r->content, r->content_len, 0);
	memcpy(o.buf + o.n, "}\n", 3);	/* the margin has room for it, and the NUL */
	o.n += 2;
	return o.n;
}

void audit_record(const struct audit_rec *r)
{
	char buf[AUDIT_LINE_MAX];
	struct timespec now;
	size_t n;

	if (audit.fd < 0 && !audit.use_syslog)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	n = audit_format(r, (double)now.tv_sec + now.tv_nsec / 1e9, audit.conf->audit_content, buf,
			 sizeof(buf));
	audit.lines++;
	if (audit.use_syslog) {
		syslog(audit.conf->log_facility | LOG_INFO, "%.*s", (int)(n - 1), buf);
		return;
	}
	for (size_t off = 0; off < n;) {
		ssize_t w = write(audit.fd, buf + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			audit.errors++;
			log_limited(&audit.err_log, CONF_LOG_ERROR, __func__,
				    "cannot write the audit log %s: %s", audit.conf->audit_file,
				    w < 0 ? strerror(errno) : "short write");
			return;
		}
		off += (size_t)w;
	}
}
