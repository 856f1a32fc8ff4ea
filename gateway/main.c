/* main.c - the simplegw command: options, configuration check (-n), and the daemon's start. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include "gw.h"

#define SIMPLEGW_VERSION "0.1.0"
#define FD_LIMIT_CAP 65536	/* descriptors asked for at most: connections are capped far below */
#define SIMPLEGW_CONF_DEFAULT "/etc/simplegw/gateway.xml"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: simplegw [-n] [-d] [-v] [-c FILE]\n"
		"  -c FILE  the gateway file (default " SIMPLEGW_CONF_DEFAULT ", see docs/config.md)\n"
		"  -n       check the configuration, print \"configuration OK\" and exit\n"
		"  -d       log at debug level to stderr, whatever the file says\n"
		"  -v       print the version and exit\n");
}

static void report_stderr(void *arg, const char *file, unsigned line, const char *msg)
{
	int *errors = arg;

	(*errors)++;
	if (line)
		fprintf(stderr, "%s:%u: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

/* Every connection costs a descriptor: the soft limit goes up to the hard one (capped), and the
 * log says what it is; accept.c keeps a reserve for when it is reached anyway. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FD_LIMIT_CAP ? FD_LIMIT_CAP : rl.rlim_max;
	if (rl.rlim_cur < want) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_notice("descriptor limit raised from %llu to %llu",
				   (unsigned long long)was, (unsigned long long)want);
		else
			log_warn("descriptor limit %llu: cannot raise it to %llu (%s)",
				 (unsigned long long)was, (unsigned long long)want, strerror(errno));
		return;
	}
	log_info("descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
	const char *path = SIMPLEGW_CONF_DEFAULT;
	int check = 0, debug = 0, errors = 0, c, status;
	struct conf *conf;
	struct gw *gw;

	while ((c = getopt(argc, argv, "c:ndvh")) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'v':
			printf("simplegw %s\n", SIMPLEGW_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	conf = conf_load(path, report_stderr, &errors);
	if (!conf) {
		fprintf(stderr, "%s: %d error%s, configuration not usable\n", path, errors,
			errors == 1 ? "" : "s");
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		conf_free(conf);
		return 0;
	}
	log_init("simplegw", debug ? CONF_LOG_DEBUG : conf->log_level, debug || conf->log_stderr,
		 !debug && conf->log_syslog, conf->log_facility);
	/* a peer closing a socket must be an error return, not a signal; so must a file size
	 * limit (the store's commit fails and is retried) */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	/* what the gateway creates (the state database, its -wal and -shm) is its own */
	umask(077);
	raise_fd_limit();
	gw = gw_new(conf);
	if (!gw)
		return 1;
	status = gw_run(gw);
	gw_free(gw);
	return status;
}
