/* audit.h - the audit log: one JSON object per line for every cross-domain SIP transaction
 * (<audit> in the gateway file; docs/config.md lists the fields).
 *
 * A line is written with one write() to a file opened O_APPEND, so a line is never split and
 * logrotate may move the file at any time: audit_reopen() (SIGHUP) opens the path again.  With
 * syslog="yes" each line goes to syslog at LOG_INFO instead.  Like logging, the audit log is
 * process-wide.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <stddef.h>

struct conf;

/* One transaction.  Every string is borrowed, may be NULL (written as null), and is escaped
 * (control characters, quotes, invalid UTF-8) on output. */
struct audit_rec {
	const char *peer;		/* the peer network's name, NULL when none was identified */
	const char *direction;		/* "in" (from the peer network) or "out" (to it) */
	const char *service;		/* "pager", "presence", "sessions", "groupchat", "other" */
	const char *method;		/* "MESSAGE", "SUBSCRIBE", ... */
	const char *from, *to;		/* addr-specs */
	const char *call_id;
	const char *source;		/* "address:port/transport" of an incoming request */
	int status;			/* final status, 0 when there was none (timeout, cancelled) */
	const char *phrase;		/* reason phrase */
	const char *content;		/* the body, written only with content="yes" */
	size_t content_len;
};

/* Opens the audit log conf asks for (nothing when it has no <audit>).  conf must outlive it.
 * Returns 0, or -1 after logging why the file cannot be opened. */
int audit_open(const struct conf *conf);

/* SIGHUP: opens the file's path again (logrotate moved it); on failure the old descriptor
 * stays and the error is logged. */
void audit_reopen(void);

/* Writes one line; does nothing when no audit log is open. */
void audit_record(const struct audit_rec *r);

/* The verdict written for a status: "accepted" (2xx), "refused" (3xx-6xx), "failed" (0). */
const char *audit_verdict(int status);

/* Formats r as one JSON line ending in '\n' into buf (at most len bytes, len >= 64), the
 * content included when with_content is non-zero; a value that does not fit is cut at a
 * character boundary and the line stays valid JSON.  Returns the length.  (For the tests.) */
size_t audit_format(const struct audit_rec *r, double time_s, int with_content, char *buf,
		    size_t len);

void audit_close(void);

#endif
