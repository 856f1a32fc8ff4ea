/* log.c - leveled logging to stderr and/or syslog, with the calling function's name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"

static struct {
	enum conf_log_level level;
	int to_stderr;
	int to_syslog;
	int journal;		/* stderr is systemd's journal stream: no stamp, a <N> prefix */
} log_sink = { CONF_LOG_INFO, 1, 0, 0 };

static const char *const log_names[] = {
	[CONF_LOG_ERROR] = "error",
	[CONF_LOG_WARNING] = "warning",
	[CONF_LOG_NOTICE] = "notice",
	[CONF_LOG_INFO] = "info",
	[CONF_LOG_DEBUG] = "debug",
};

static const int log_syslog_prio[] = {
	[CONF_LOG_ERROR] = LOG_ERR,
	[CONF_LOG_WARNING] = LOG_WARNING,
	[CONF_LOG_NOTICE] = LOG_NOTICE,
	[CONF_LOG_INFO] = LOG_INFO,
	[CONF_LOG_DEBUG] = LOG_DEBUG,
};

/* Under systemd, JOURNAL_STREAM names the stream stderr is connected to ("device:inode"): the
 * journal stamps each line itself and reads its priority from a "<N>" prefix (sd-daemon(3)).
 * Only when stderr is that very stream: a shell started from the unit inherits the variable
 * with its stderr redirected elsewhere. */
static int log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char extra;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, enum conf_log_level level, int to_stderr, int to_syslog,
	      int facility)
{
	if (log_sink.to_syslog)
		closelog();
	log_sink.level = level;
	log_sink.to_stderr = to_stderr;
	log_sink.to_syslog = to_syslog;
	log_sink.journal = log_stderr_is_journal();
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_level(enum conf_log_level level)
{
	log_sink.level = level;
}

int log_enabled(enum conf_log_level level)
{
	return level <= log_sink.level;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(name, log_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *log_level_name(enum conf_log_level level)
{
	return (unsigned)level < sizeof(log_names) / sizeof(log_names[0]) ? log_names[level] : "?";
}

void log_vmsg(enum conf_log_level level, const char *func, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (!log_enabled(level))
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* one line per record: a newline inside would let logged peer data forge records */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_sink.to_stderr && log_sink.journal) {
		fprintf(stderr, "<%d>%s %s: %s\n", log_syslog_prio[level], log_names[level], func,
			line);
	} else if (log_sink.to_stderr) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, ts.tv_nsec / 1000000L,
			log_names[level], func, line);
	}
	if (log_sink.to_syslog)
		syslog(log_syslog_prio[level], "%s %s: %s", log_names[level], func, line);
}

void log_msg(enum conf_log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, func, fmt, ap);
	va_end(ap);
}

static uint64_t log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void log_limited(struct log_limit *lim, enum conf_log_level level, const char *func,
		 const char *fmt, ...)
{
	uint64_t now;
	va_list ap;

	if (!log_enabled(level))
		return;
	now = log_now_ms();
	if (!lim->window_ms || now - lim->window_ms >= LOG_LIMIT_MS) {
		if (lim->suppressed)
			log_msg(level, func, "%lu more like the next were not logged in the last %u s",
				lim->suppressed, LOG_LIMIT_MS / 1000);
		lim->window_ms = now;
		lim->lines = 0;
		lim->suppressed = 0;
	}
	if (lim->lines >= LOG_LIMIT_LINES) {
		lim->suppressed++;
		return;
	}
	lim->lines++;
	va_start(ap, fmt);
	log_vmsg(level, func, fmt, ap);
	va_end(ap);
}
