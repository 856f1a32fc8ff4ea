/* util.c - allocation wrappers that abort on exhaustion, and small string helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

void gw_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(CONF_LOG_ERROR, "fatal", fmt, ap);
	va_end(ap);
	abort();
}

void *gw_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		gw_fatal("out of memory (%zu bytes)", n);
	return p;
}

void *gw_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		gw_fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *gw_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		gw_fatal("out of memory (%zu bytes)", n);
	return q;
}

char *gw_xstrdup(const char *s)
{
	return gw_xstrndup(s, strlen(s));
}

char *gw_xstrndup(const char *s, size_t n)
{
	char *p = gw_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *gw_xasprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	if (!fmt)	/* also tells the compiler so, under the sanitizers' checks */
		gw_fatal("gw_xasprintf: no format");
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		gw_fatal("gw_xasprintf: bad format");
	p = gw_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

uint64_t gw_hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

int gw_strcaseeq(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
		if (!x)
			return 1;
	}
}

char *gw_put_uint(char *p, unsigned long long v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

void gw_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa && sa->sa_family == AF_INET && len >= sizeof("255.255.255.255:65535")) {
		/* on every request's path (its source, for logs): no printf */
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		const unsigned char *a = (const unsigned char *)&in->sin_addr;
		char *p = buf;

		for (int i = 0; i < 4; i++) {
			p = gw_put_uint(p, a[i]);
			*p++ = i < 3 ? '.' : ':';
		}
		p = gw_put_uint(p, ntohs(in->sin_port));
		*p = '\0';
	} else if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "?");
	}
}

int gw_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes one UTF-8 sequence at s (n bytes left).  Returns its length and the code point, or 0
 * for an invalid, overlong or surrogate sequence. */
size_t gw_utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
	unsigned long c;
	size_t len;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		c = s[0] & 0x1f, len = 2;
	} else if ((s[0] & 0xf0) == 0xe0) {
		c = s[0] & 0x0f, len = 3;
	} else if ((s[0] & 0xf8) == 0xf0) {
		c = s[0] & 0x07, len = 4;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}
