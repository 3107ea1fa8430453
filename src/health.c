/*
 * health.c - heartbeat file and its check.  See health.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "health.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int health_write(const char *state_dir, struct transport **tr, size_t n)
{
	json_t *t = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(t, transport_name(tr[i]), json_integer(transport_last_poll(tr[i])));
	json_t *j = json_pack("{s:I, s:I, s:o}", "pid", (json_int_t)getpid(), "written",
			      (json_int_t)wall_ms(), "last_poll", t);
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/%s", state_dir, HEALTH_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int rc = json_dump_file(j, tmp, JSON_COMPACT);
	json_decref(j);
	if (rc == 0 && rename(tmp, path) == 0)
		return 0;
	log_warn("heartbeat_failed", "file=%s error=%s", log_q(path), log_q(strerror(errno)));
	return -1;
}

int health_check(const char *state_dir, long max_age_s, struct strbuf *out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", state_dir, HEALTH_FILE);
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j) {
		strbuf_addf(out, "faqbot is not running: no heartbeat in %s\n", path);
		return -1;
	}
	int rc = 0;
	int64_t now = wall_ms();
	json_int_t pid = json_integer_value(json_object_get(j, "pid"));
	if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
		strbuf_addf(out, "faqbot is not running: the process of %s (pid %lld) is gone\n", path,
			    (long long)pid);
		json_decref(j);
		return -1;	/* the polls of a process that is gone say nothing */
	} else if (now - json_integer_value(json_object_get(j, "written")) > max_age_s * 1000) {
		strbuf_addf(out, "faqbot (pid %lld) is stuck: its heartbeat is %lld s old\n",
			    (long long)pid,
			    (long long)((now - json_integer_value(json_object_get(j, "written"))) / 1000));
		rc = -1;
	}
	const char *name;
	json_t *v;
	json_object_foreach(json_object_get(j, "last_poll"), name, v) {
		int64_t at = json_integer_value(v);
		if (!at) {
			strbuf_addf(out, "%s: no successful poll yet\n", name);
			rc = -1;
		} else if (now - at > max_age_s * 1000) {
			strbuf_addf(out, "%s: the last successful poll was %lld s ago (limit %ld s): "
				    "is the server reachable?\n", name, (long long)((now - at) / 1000), max_age_s);
			rc = -1;
		} else {
			strbuf_addf(out, "%s: ok, last successful poll %lld s ago\n", name,
				    (long long)((now - at) / 1000));
		}
	}
	json_decref(j);
	return rc;
}
