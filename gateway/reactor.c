/* reactor.c - runs Sofia-SIP's su_root on the gateway's libevent base: one thread, one loop.
 *
 * Sofia-SIP normally owns its loop (su_root_run).  Here the root uses the epoll port with
 * threading disabled, so nua's "clone" task lives in this thread and every su_msg between nua's
 * API and its stack is queued on the same port.  libevent watches the port's epoll descriptor
 * (readable whenever any Sofia socket is), and a libevent timer is armed for the next Sofia timeout
 * as reported by su_root_step().  Two details matter:
 *  - su_root_step(root, 0) never sleeps: it runs due timers, queued messages and ready sockets,
 *    and returns the time to the next timer (0: more work is queued, SU_WAIT_FOREVER: none).
 *  - a message queued from this very thread does not wake the port (su_socket_port_wakeup only
 *    signals other threads), so every call into nua from outside a Sofia callback must be followed
 *    by reactor_kick(), which runs one more step on the next loop pass.
 * The epoll descriptor is not exposed by Sofia's API; it is found as the one "[eventpoll]"
 * descriptor that su_root_create() added to /proc/self/fd.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#define SU_ROOT_MAGIC_T struct reactor
#include <sofia-sip/su.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_wait.h>

#include "gw.h"

struct reactor {
	struct event_base *base;
	su_root_t *root;
	int epfd;
	struct event *io_ev;	/* epoll descriptor readable */
	struct event *timer_ev;	/* next Sofia timer */
	struct event *kick_ev;	/* run a step on the next loop pass */
	unsigned long steps;
	char logline[1024];	/* Sofia logs in fragments: assembled here up to a newline */
	size_t loglen;
};

#define REACTOR_MAX_FDS 64

/* Lists the epoll descriptors this process holds. */
static int reactor_epoll_fds(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) && n < max) {
		char path[64], target[64];
		ssize_t len;
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, "anon_inode:[eventpoll]") == 0)
			fds[n++] = (int)fd;
	}
	closedir(d);
	return n;
}

static void reactor_run_step(struct reactor *r)
{
	su_duration_t next = su_root_step(r->root, 0);

	r->steps++;
	if (next == 0) {
		/* more queued: continue on the next pass, after libevent's other ready events */
		event_active(r->kick_ev, EV_TIMEOUT, 0);
	} else if (next > 0) {
		struct timeval tv = { next / 1000, (next % 1000) * 1000 };

		evtimer_add(r->timer_ev, &tv);
	} else {
		evtimer_del(r->timer_ev);
	}
}

static void reactor_event_cb(evutil_socket_t fd, short what, void *arg)
{
	reactor_run_step(arg);
}

/* Sofia's log lines arrive in fragments; they are logged at debug level, one line per record. */
static void reactor_sofia_log(void *stream, char const *fmt, va_list ap) GW_VPRINTF(2);

static void reactor_sofia_log(void *stream, char const *fmt, va_list ap)
{
	struct reactor *r = stream;
	char frag[1024];
	int n = vsnprintf(frag, sizeof(frag), fmt, ap);

	if (n < 0)
		return;
	for (const char *p = frag; *p; p++) {
		if (*p == '\n' || r->loglen + 1 >= sizeof(r->logline)) {
			r->logline[r->loglen] = '\0';
			if (r->loglen)
				log_msg(CONF_LOG_DEBUG, "sofia", "%s", r->logline);
			r->loglen = 0;
			if (*p == '\n')
				continue;
		}
		r->logline[r->loglen++] = *p;
	}
}

struct reactor *reactor_new(struct event_base *base)
{
	struct reactor *r = gw_xcalloc(1, sizeof(*r));
	int before[REACTOR_MAX_FDS], after[REACTOR_MAX_FDS], nb, na;

	r->base = base;
	r->epfd = -1;
	if (su_init() != 0) {
		log_error("su_init failed");
		free(r);
		return NULL;
	}
	su_log_redirect(NULL, reactor_sofia_log, r);
	su_port_prefer(su_epoll_port_create, su_epoll_clone_start);

	nb = reactor_epoll_fds(before, REACTOR_MAX_FDS);
	r->root = su_root_create(r);
	na = reactor_epoll_fds(after, REACTOR_MAX_FDS);
	if (!r->root || nb < 0 || na < 0) {
		log_error("cannot create the Sofia-SIP root (%s)", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < na; i++) {
		int known = 0;

		for (int j = 0; j < nb; j++)
			known |= after[i] == before[j];
		if (!known) {
			if (r->epfd >= 0) {
				log_error("Sofia-SIP root created more than one epoll descriptor");
				goto fail;
			}
			r->epfd = after[i];
		}
	}
	if (r->epfd < 0) {
		log_error("cannot find the Sofia-SIP root's epoll descriptor");
		goto fail;
	}
	/* nua's stack task runs in this thread: no thread is ever started */
	su_root_threading(r->root, 0);
	/* handle every ready socket per step, not one: under load, fewer passes and syscalls */
	su_root_multishot(r->root, 1);

	r->io_ev = event_new(base, r->epfd, EV_READ | EV_PERSIST, reactor_event_cb, r);
	r->timer_ev = evtimer_new(base, reactor_event_cb, r);
	r->kick_ev = event_new(base, -1, 0, reactor_event_cb, r);
	if (!r->io_ev || !r->timer_ev || !r->kick_ev || event_add(r->io_ev, NULL) != 0)
		gw_fatal("cannot register the Sofia-SIP events with libevent");
	log_debug("Sofia-SIP root on libevent: epoll fd %d", r->epfd);
	return r;
fail:
	if (r->root)
		su_root_destroy(r->root);
	su_log_redirect(NULL, NULL, NULL);
	su_deinit();
	free(r);
	return NULL;
}

struct event_base *reactor_event_base(struct reactor *r)
{
	return r->base;
}

su_root_t *reactor_su_root(struct reactor *r)
{
	return r->root;
}

void reactor_kick(struct reactor *r)
{
	event_active(r->kick_ev, EV_TIMEOUT, 0);
}

unsigned long reactor_steps(const struct reactor *r)
{
	return r->steps;
}

void reactor_free(struct reactor *r)
{
	if (!r)
		return;
	if (r->io_ev)
		event_free(r->io_ev);
	if (r->timer_ev)
		event_free(r->timer_ev);
	if (r->kick_ev)
		event_free(r->kick_ev);
	/* Sofia may still log while the root goes away */
	su_root_destroy(r->root);
	su_log_redirect(NULL, NULL, NULL);
	su_deinit();
	free(r);
}
