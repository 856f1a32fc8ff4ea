/* reactor.c - runs Sofia-SIP's su_root on the gateway's libevent base: one thread, one loop.
 *
 * Sofia-SIP normally owns its loop (su_root_run).  Here the root uses the epoll port with
 * threading disabled, and the SIP side drives nta (Sofia's transaction layer) in this thread.  libevent watches the port's epoll descriptor
 * (readable whenever any Sofia socket is), and a libevent timer is armed for the next Sofia timeout
 * as reported by su_root_step().  Two details matter:
 *  - su_root_step(root, 0) never sleeps: it runs due timers, queued messages and ready sockets,
 *    and returns the time to the next timer in whole milliseconds, truncated (SU_WAIT_FOREVER:
 *    none).  It returns 0 for three reasons it does not tell apart: it handled socket events,
 *    messages are queued, or a timer is due in under a millisecond.  Taking every 0 as "step again
 *    now" made the loop spin on epoll_wait(..., 0) until such a timer came due (61 of 65 system
 *    calls per message at 200 messages/s).  Running the timer early instead does not help: nta
 *    checks its deadlines on its own clock, finds nothing due and re-arms a millisecond ahead,
 *    over and over.  So a 0 is resolved with the timer queue itself (su_timer_expire() runs what
 *    is due and says how far the next timer is): no timer within the millisecond means messages
 *    are queued, and one more step follows on the next loop pass; a timer within it becomes a
 *    libevent timer of one millisecond, after at most REACTOR_ZERO_KICKS more steps for messages
 *    queued meanwhile.  Sockets still ready keep the epoll descriptor readable and call us again
 *    by themselves.  A positive time is rounded up by a millisecond, so that the libevent timer
 *    never fires before the Sofia timer is due (and finds a 0).
 *  - a message queued from this very thread does not wake the port (su_socket_port_wakeup only
 *    signals other threads; nta reports an error met while sending that way), and a request or
 *    answer sent from outside a Sofia callback may set a timer earlier than the libevent timer
 *    armed: so such calls are followed by reactor_kick(), which runs one more step on the next
 *    loop pass.
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
	unsigned long sub_ms;	/* steps that found a timer due in under a millisecond */
	unsigned zero_kicks;	/* steps run since one returned 0 with such a timer pending */
	char logline[1024];	/* Sofia logs in fragments: assembled here up to a newline */
	size_t loglen;
};

#define REACTOR_MAX_FDS 64
/* Steps run for queued messages while a timer is due in under a millisecond: a chain of queued
 * messages takes one or two; beyond that the loop would only wait for the clock. */
#define REACTOR_ZERO_KICKS 2

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

/* Arms the libevent timer ms milliseconds ahead (replacing what was armed). */
static void reactor_arm(struct reactor *r, su_duration_t ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->timer_ev, &tv);
}

static void reactor_run_step(struct reactor *r)
{
	su_duration_t next = su_root_step(r->root, 0);

	r->steps++;
	if (next == 0) {
		/* which 0 (see the file's comment): runs the timers that are due by now and gives
		 * the time to the next one, truncated to milliseconds */
		su_duration_t timer = SU_WAIT_FOREVER;

		su_timer_expire(su_task_timers(su_root_task(r->root)), &timer, su_now());
		if (timer != 0) {
			/* messages queued: continue on the next pass, after libevent's other events */
			event_active(r->kick_ev, EV_TIMEOUT, 0);
			r->zero_kicks = 0;
			return;
		}
		r->sub_ms++;
		reactor_arm(r, 1);
		if (r->zero_kicks < REACTOR_ZERO_KICKS) {
			r->zero_kicks++;
			event_active(r->kick_ev, EV_TIMEOUT, 0);
		}
		return;
	}
	r->zero_kicks = 0;
	if (next > 0)
		reactor_arm(r, next + 1);
	else
		evtimer_del(r->timer_ev);
}

/* A Sofia socket is ready, or the timer fired: new work, so new steps for queued messages. */
static void reactor_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reactor *r = arg;

	r->zero_kicks = 0;
	reactor_run_step(r);
}

static void reactor_kick_cb(evutil_socket_t fd, short what, void *arg)
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
	/* everything runs in this thread: no thread is ever started */
	su_root_threading(r->root, 0);
	/* handle every ready socket per step, not one: under load, fewer passes and syscalls */
	su_root_multishot(r->root, 1);

	r->io_ev = event_new(base, r->epfd, EV_READ | EV_PERSIST, reactor_event_cb, r);
	r->timer_ev = evtimer_new(base, reactor_event_cb, r);
	r->kick_ev = event_new(base, -1, 0, reactor_kick_cb, r);
	if (!r->io_ev || !r->timer_ev || !r->kick_ev || event_add(r->io_ev, NULL) != 0)
		gw_fatal("cannot register the Sofia-SIP events with libevent");
	log_info("Sofia-SIP root on libevent: epoll fd %d", r->epfd);
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
	r->zero_kicks = 0;
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
	log_debug("Sofia-SIP root: %lu steps, %lu found a timer due in under a millisecond",
		  r->steps, r->sub_ms);
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
