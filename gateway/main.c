/* main.c - the simplegw command: options, -n, pid file, privilege drop, the daemon's start. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "gw.h"

#define FD_LIMIT_CAP 65536	/* descriptors asked for at most: connections are capped far below */
#define SIMPLEGW_CONF_DEFAULT "/etc/simplegw/gateway.xml"

/* Exit statuses (simplegw(8) lists them): gw_run() returns 0 after a clean shutdown and 1 when
 * another instance serves the component; everything that stops a start is 1 too. */
enum {
	EXIT_CLEAN = 0,
	EXIT_START = 1,		/* configuration, start, pid file held, another instance */
	EXIT_USAGE = 2,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: simplegw [-dhnv] [-c FILE] [-p PIDFILE] [-u USER]\n"
		"  -c FILE     the gateway file (default " SIMPLEGW_CONF_DEFAULT ", simplegw.xml(5))\n"
		"  -n          check the configuration, print \"configuration OK\" and exit\n"
		"  -d          log at debug level to stderr, whatever the file says\n"
		"  -u USER     run as USER once the ports are bound and the files read (needs root)\n"
		"  -p PIDFILE  write the process id to PIDFILE (refused while a running simplegw\n"
		"              holds it), removed at exit\n"
		"  -v          print the version and exit\n"
		"  -h          print this help and exit\n"
		"exit status: 0 clean shutdown (SIGTERM, SIGINT) or -n/-v/-h done; 1 configuration or\n"
		"start failure, pid file held, or another instance serving the component; 2 usage\n");
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

/* ---- -p: the pid file
 *
 * Who holds it is told by a lock, not by the number inside: the file is created with O_EXCL and
 * flock()ed for the life of the process, so a file nobody has locked is stale whatever pid it
 * names (a reused pid never looks alive), and one that is locked belongs to a running simplegw.
 * The number is written once the gateway has bound its ports. */
struct pidfile {
	const char *path;
	int fd;			/* -1: none */
	struct stat st;		/* what we created: never remove another instance's file */
};

/* Creates and locks the pid file; replaces a stale one.  0, or -1 with the reason logged. */
static int pidfile_acquire(struct pidfile *pf)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct stat cur;
		char buf[32] = "";
		ssize_t n;
		int fd;

		fd = open(pf->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
			  0644);
		if (fd >= 0) {
			if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &pf->st) != 0) {
				log_error("pid file %s: cannot lock it: %s", pf->path,
					  strerror(errno));
				unlink(pf->path);
				close(fd);
				return -1;
			}
			/* another instance starting at the same moment may have taken our file for
			 * a stale one (not yet locked) and removed it: then it is not ours */
			if (stat(pf->path, &cur) != 0 || cur.st_dev != pf->st.st_dev ||
			    cur.st_ino != pf->st.st_ino) {
				close(fd);
				continue;
			}
			(void)fchmod(fd, 0644);	/* the umask is 077: anyone may read a pid */
			pf->fd = fd;
			return 0;
		}
		if (errno != EEXIST) {
			log_error("pid file %s: cannot create it: %s", pf->path, strerror(errno));
			return -1;
		}
		fd = open(pf->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;	/* removed meanwhile: try again */
			log_error("pid file %s: cannot open it: %s", pf->path, strerror(errno));
			return -1;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			if (errno == EWOULDBLOCK)
				log_error("pid file %s: held by a running simplegw (pid %s): another "
					  "instance is running", pf->path, *buf ? buf : "not written yet");
			else
				log_error("pid file %s: cannot lock it: %s", pf->path,
					  strerror(errno));
			close(fd);
			return -1;
		}
		/* stale: remove it, unless another starting instance replaced it meanwhile */
		if (fstat(fd, &pf->st) == 0 && stat(pf->path, &cur) == 0 &&
		    cur.st_dev == pf->st.st_dev && cur.st_ino == pf->st.st_ino) {
			if (unlink(pf->path) != 0) {
				log_error("pid file %s: stale (pid %s), cannot remove it: %s", pf->path,
					  *buf ? buf : "none", strerror(errno));
				close(fd);
				return -1;
			}
			log_notice("pid file %s: stale (pid %s, no simplegw holds it): replaced",
				   pf->path, *buf ? buf : "none");
		}
		close(fd);
	}
	log_error("pid file %s: kept changing while it was being replaced", pf->path);
	return -1;
}

static int pidfile_write(struct pidfile *pf)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(pf->fd, 0) != 0 || pwrite(pf->fd, buf, (size_t)n, 0) != n) {
		log_error("pid file %s: cannot write it: %s", pf->path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes our pid file.  After -u the directory may not let us: the file is emptied then (the
 * descriptor was opened for writing before the drop), which reads as stale just the same. */
static void pidfile_release(struct pidfile *pf)
{
	struct stat cur;

	if (pf->fd < 0)
		return;
	if (stat(pf->path, &cur) == 0 && cur.st_dev == pf->st.st_dev &&
	    cur.st_ino == pf->st.st_ino && unlink(pf->path) != 0) {
		log_notice("pid file %s: cannot remove it (%s): emptied instead", pf->path,
			   strerror(errno));
		if (ftruncate(pf->fd, 0) != 0)
			log_warn("pid file %s: cannot empty it either (%s)", pf->path,
				 strerror(errno));
	}
	close(pf->fd);
	pf->fd = -1;
}

/* ---- -u: the privilege drop */

struct runas {
	const char *name;
	uid_t uid;
	gid_t gid;
	int drop;		/* 0: already running as the user, nothing to drop */
};

/* Checked before anything is bound: the user exists, is not root, and we are root (or already
 * that user).  0, or -1 with the reason on stderr. */
static int runas_resolve(const char *name, struct runas *ra)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		fprintf(stderr, "simplegw: -u %s: %s\n", name,
			errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "simplegw: -u %s: that is root; name an unprivileged user\n", name);
		return -1;
	}
	ra->name = name;
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	ra->drop = 1;
	if (getuid() == ra->uid && geteuid() == ra->uid) {
		ra->drop = 0;
		return 0;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "simplegw: -u %s needs root to switch users (running as uid %lu)\n",
			name, (unsigned long)geteuid());
		return -1;
	}
	return 0;
}

/* A file the gateway keeps writing after the drop: the state database and its -wal and -shm
 * (SQLite made them as root, so root owns them), and the audit log, reopened on SIGHUP. */
static void runas_give(const struct runas *ra, const char *path, const char *suffix)
{
	char *file = gw_xasprintf("%s%s", path, suffix);
	struct stat st;

	if (stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_uid != ra->uid || st.st_gid != ra->gid)) {
		if (chown(file, ra->uid, ra->gid) == 0)
			log_info("%s: now owned by %s", file, ra->name);
		else
			log_warn("%s: cannot give it to %s: %s", file, ra->name, strerror(errno));
	}
	free(file);
}

/* The directory SQLite removes -wal and -shm from at exit, and creates them in at the next
 * open: the user should be able to write there, or those files outlive the process. */
static void runas_check_dir(const char *path)
{
	char *copy = gw_xstrdup(path);
	const char *dir = dirname(copy);

	if (access(dir, W_OK | X_OK) != 0)
		log_warn("%s: not writable by this user (%s): SQLite's -wal and -shm files stay "
			 "there after exit; give the directory to the user (StateDirectory= does)",
			 dir, strerror(errno));
	free(copy);
}

static int runas_drop(const struct runas *ra, const struct conf *conf)
{
	if (!ra->drop) {
		log_info("already running as %s (uid %lu): nothing to drop", ra->name,
			 (unsigned long)ra->uid);
		return 0;
	}
	if (conf->presence_db) {
		runas_give(ra, conf->presence_db, "");
		runas_give(ra, conf->presence_db, "-wal");
		runas_give(ra, conf->presence_db, "-shm");
	}
	if (conf->audit_file)
		runas_give(ra, conf->audit_file, "");
	if (initgroups(ra->name, ra->gid) != 0 || setresgid(ra->gid, ra->gid, ra->gid) != 0 ||
	    setresuid(ra->uid, ra->uid, ra->uid) != 0) {
		log_error("cannot become %s (uid %lu, gid %lu): %s", ra->name,
			  (unsigned long)ra->uid, (unsigned long)ra->gid, strerror(errno));
		return -1;
	}
	/* the drop must be for good: no id left that could take root back */
	{
		uid_t r, e, s;
		gid_t gr, ge, gs;

		if (getresuid(&r, &e, &s) != 0 || getresgid(&gr, &ge, &gs) != 0 ||
		    r != ra->uid || e != ra->uid || s != ra->uid ||
		    gr != ra->gid || ge != ra->gid || gs != ra->gid ||
		    setuid(0) != -1 || seteuid(0) != -1 || (ra->gid != 0 && setgid(0) != -1)) {
			log_error("the switch to %s did not hold: refusing to run", ra->name);
			return -1;
		}
	}
	log_notice("running as %s (uid %lu, gid %lu)", ra->name, (unsigned long)ra->uid,
		   (unsigned long)ra->gid);
	if (conf->presence_db)
		runas_check_dir(conf->presence_db);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = SIMPLEGW_CONF_DEFAULT, *user = NULL;
	int check = 0, debug = 0, errors = 0, c, status;
	struct pidfile pf = { NULL, -1, { 0 } };
	struct runas ra = { 0 };
	struct conf *conf;
	struct gw *gw;

	while ((c = getopt(argc, argv, "c:ndvhu:p:")) != -1) {
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
		case 'u':
			user = optarg;
			break;
		case 'p':
			pf.path = optarg;
			break;
		case 'v':
			printf("simplegw %s\n", SIMPLEGW_VERSION);
			return EXIT_CLEAN;
		case 'h':
			usage(stdout);
			return EXIT_CLEAN;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (pf.path && !*pf.path) || (user && !*user)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* before anything is read or bound: a start that cannot drop must not start */
	if (user && !check && runas_resolve(user, &ra) != 0)
		return EXIT_START;
	conf = conf_load(path, report_stderr, &errors);
	if (!conf) {
		fprintf(stderr, "%s: %d error%s, configuration not usable\n", path, errors,
			errors == 1 ? "" : "s");
		return EXIT_START;
	}
	if (check) {
		printf("configuration OK\n");
		conf_free(conf);
		return EXIT_CLEAN;
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
	if (pf.path && pidfile_acquire(&pf) != 0) {
		conf_free(conf);
		return EXIT_START;
	}
	/* binds every port, opens the state database and reads the TLS files: all as started */
	gw = gw_new(conf);
	if (!gw) {
		pidfile_release(&pf);
		return EXIT_START;
	}
	gw->log_forced = debug;	/* a reload keeps -d's level */
	if ((user && runas_drop(&ra, gw->conf) != 0) || (pf.path && pidfile_write(&pf) != 0)) {
		gw_free(gw);
		pidfile_release(&pf);
		return EXIT_START;
	}
	status = gw_run(gw);
	gw_free(gw);
	pidfile_release(&pf);
	return status;
}
