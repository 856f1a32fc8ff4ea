/* relay_common.h - what bench/floor_relay.c and bench/stack_floor.c share.  Each is built alone
 * by bench/compare.py (one cc per file), so these are static functions in a header. */
#ifndef RELAY_COMMON_H
#define RELAY_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>

static const char *relay_name = "relay";	/* the program's name, set by main() */

/* Prints "name: message" and exits with status 1 (a setup or link failure). */
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", relay_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* The entity that stands for c in a stanza's text or in an attribute quoted with ', or NULL
 * when c stands for itself. */
static const char *relay_entity(char c)
{
	return c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '\'' ? "&apos;" : NULL;
}

/* A TCP connection to 127.0.0.1:port without Nagle (the component link); dies if none. */
static int relay_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("cannot connect to the component port %d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* XEP-0114's handshake: the hex SHA-1 of the stream id (id[0..idn)) followed by the secret, into
 * hex (2 * EVP_MAX_MD_SIZE + 1 octets, terminated); returns its length. */
static size_t relay_handshake(const char *id, size_t idn, const char *secret, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len;
	size_t sn = strlen(secret);
	char *material = malloc(idn + sn);

	if (!material)
		die("out of memory");
	memcpy(material, id, idn);
	memcpy(material + idn, secret, sn);
	if (!EVP_Digest(material, idn + sn, md, &md_len, EVP_sha1(), NULL))
		die("SHA-1 failed");
	free(material);
	for (unsigned i = 0; i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 2 * (size_t)md_len;
}

#endif
