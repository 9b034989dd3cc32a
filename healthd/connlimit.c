/* connlimit.c: admission to a listener (allow list, total and per-source caps, eviction) and accept error pauses. */
#include "connlimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

#define SOURCE_BUCKETS 1024
#define ACCEPT_RETRY_MS 250
#define REFUSAL_LOG_EVERY_MS 60000
/* A per-source episode ends after this long without any source over its limit. */
#define SOURCE_EPISODE_QUIET_MS 60000

TAILQ_HEAD(slot_list, hd_conn_slot);

struct hd_conn_source {
	int family;
	uint8_t addr[16];
	int count;
	struct slot_list slots; /* in accept order */
	struct hd_conn_source *next_in_bucket;
};

struct hd_connlimit {
	char name[16];
	struct event_base *base;
	struct evconnlistener *listener;
	evconnlistener_cb accept_cb; /* the module's: the listener calls ours, which passes every connection on */
	void *accept_arg;
	struct event *retry;
	struct slot_list level[3]; /* BUSY slots are listed too, so that every slot is on one list */
	struct hd_conn_source *buckets[SOURCE_BUCKETS];
	size_t n_open;
	int max_total;
	bool paused_full, paused_error;
	/* the episode at the total cap */
	bool cap_episode;
	int64_t cap_since_ms;
	uint64_t cap_episode_evicted, cap_episode_refused;
	/* the episode of accept errors */
	bool error_episode;
	int64_t error_since_ms;
	uint64_t error_episode_pauses;
	int64_t last_refusal_log_ms;
	int64_t source_limit_last_ms; /* the last time a source was over its limit (0: not in an episode) */
	/* counters for /metrics */
	uint64_t evicted, refused_allow, refused_source, refused_cap, cap_episodes, accept_pauses;
};

/* ---- addresses ---- */

static bool ipv4_of(const struct sockaddr *sa, uint8_t out[4])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(out, &a6->s6_addr[12], 4);
			return true;
		}
	}
	return false;
}

/* The address as (family, 16 bytes), IPv4-mapped IPv6 folded into IPv4; false for other families. */
static bool key_of(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (ipv4_of(sa, addr)) {
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		*family = AF_INET6;
		return true;
	}
	return false;
}

void hd_peer_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	int family;
	uint8_t addr[16];

	if (sa == NULL || !key_of(sa, &family, addr) || inet_ntop(family, addr, buf, (socklen_t)len) == NULL)
		hd_strlcpy(buf, "?", len);
}

bool hd_sockaddr_is_loopback(const struct sockaddr *sa)
{
	int family;
	uint8_t addr[16];

	if (sa == NULL || !key_of(sa, &family, addr))
		return false;
	if (family == AF_INET)
		return addr[0] == 127;
	return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)addr);
}

int hd_cidr_parse(const char *text, struct hd_cidr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	int max;

	memset(out, 0, sizeof(*out));
	*why = "expected an address range such as \"10.0.0.0/8\", \"192.0.2.7\" or \"2001:db8::/32\"";
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		long p;
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		p = strtol(slash + 1, &end, 10);
		if (*end != '\0' || p < 0 || p > max) {
			*why = "the prefix length after / must be 0..32 for IPv4, 0..128 for IPv6";
			return -1;
		}
		out->prefix = (int)p;
	}
	/* Bits beyond the prefix must be zero: "10.1.2.3/8" is more likely a typo than meant. */
	for (int bit = out->prefix; bit < max; bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			*why = "the address has bits set beyond the prefix length (write the network address, e.g. 10.0.0.0/8)";
			return -1;
		}
	return 0;
}

bool hd_cidr_match(const struct hd_cidr *c, const struct sockaddr *sa)
{
	int family;
	uint8_t addr[16];
	int full, rest;

	if (sa == NULL || !key_of(sa, &family, addr) || family != c->family)
		return false;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(addr, c->addr, (size_t)full) != 0)
		return false;
	return rest == 0 || ((addr[full] ^ c->addr[full]) & (0xFF00 >> rest)) == 0;
}

bool hd_cidr_list_match(const struct hd_cidr_list *l, const struct sockaddr *sa)
{
	for (size_t i = 0; i < l->n; i++)
		if (hd_cidr_match(&l->v[i], sa))
			return true;
	return false;
}

/* ---- sources ---- */

static unsigned bucket_of(int family, const uint8_t addr[16])
{
	uint32_t h = 2166136261u ^ (uint32_t)family;

	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % SOURCE_BUCKETS;
}

static struct hd_conn_source *find_source(struct hd_connlimit *cl, int family, const uint8_t addr[16])
{
	for (struct hd_conn_source *s = cl->buckets[bucket_of(family, addr)]; s; s = s->next_in_bucket)
		if (s->family == family && memcmp(s->addr, addr, 16) == 0)
			return s;
	return NULL;
}

static void drop_source(struct hd_connlimit *cl, struct hd_conn_source *s)
{
	struct hd_conn_source **p = &cl->buckets[bucket_of(s->family, s->addr)];

	while (*p != s)
		p = &(*p)->next_in_bucket;
	*p = s->next_in_bucket;
	free(s);
}

/* ---- pausing the listener: at the cap with nothing to evict, or after an accept error ---- */

static void apply_pause(struct hd_connlimit *cl)
{
	if (cl->listener == NULL)
		return;
	if (cl->paused_full || cl->paused_error)
		evconnlistener_disable(cl->listener);
	else
		evconnlistener_enable(cl->listener);
}

static bool any_evictable(const struct hd_connlimit *cl)
{
	return !TAILQ_EMPTY(&cl->level[HD_SLOT_EVICTABLE]) || !TAILQ_EMPTY(&cl->level[HD_SLOT_IDLE_FIRST]);
}

static void update_full(struct hd_connlimit *cl)
{
	bool full = cl->max_total > 0 && cl->n_open >= (size_t)cl->max_total && !any_evictable(cl);

	if (full != cl->paused_full) {
		cl->paused_full = full;
		apply_pause(cl);
	}
	if (cl->cap_episode && cl->n_open < (size_t)cl->max_total * 3 / 4) {
		log_info("%s: below the connection cap again after %.1f s; during the episode %" PRIu64 " connections "
			 "were evicted and %" PRIu64 " refused", cl->name, (double)(hd_now_mono_ms() - cl->cap_since_ms) / 1000.0,
			 cl->cap_episode_evicted, cl->cap_episode_refused);
		cl->cap_episode = false;
	}
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct hd_connlimit *cl = arg;

	(void)fd;
	(void)what;
	cl->paused_error = false; /* the next accept error pauses again, quietly, in the same episode */
	apply_pause(cl);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct hd_connlimit *cl = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};

	(void)l;
	cl->accept_pauses++;
	cl->error_episode_pauses++;
	if (!cl->error_episode) {
		cl->error_episode = true;
		cl->error_since_ms = hd_now_mono_ms();
		log_err("%s: accept(): %s%s; not accepting for %d ms at a time until it works again (logged once)", cl->name,
			strerror(err), err == EMFILE || err == ENFILE ? " (raise LimitNOFILE / RLIMIT_NOFILE)" : "",
			ACCEPT_RETRY_MS);
	}
	cl->paused_error = true;
	apply_pause(cl);
	evtimer_add(cl->retry, &tv);
}

struct hd_connlimit *connlimit_new(struct event_base *base, const char *name)
{
	struct hd_connlimit *cl = xcalloc(1, sizeof(*cl));

	hd_strlcpy(cl->name, name, sizeof(cl->name));
	cl->base = base;
	for (size_t i = 0; i < HD_ARRAY_LEN(cl->level); i++)
		TAILQ_INIT(&cl->level[i]);
	cl->retry = evtimer_new(base, on_retry, cl);
	if (cl->retry == NULL)
		hd_fatal("%s: out of memory", name);
	return cl;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct hd_connlimit *cl = arg;

	cl->accept_cb(l, fd, sa, salen, cl->accept_arg);
}

void connlimit_attach(struct hd_connlimit *cl, struct evconnlistener *listener, evconnlistener_cb cb, void *arg)
{
	cl->listener = listener;
	cl->accept_cb = cb;
	cl->accept_arg = arg;
	evconnlistener_set_cb(listener, on_accept, cl);
	evconnlistener_set_error_cb(listener, on_accept_error);
	apply_pause(cl);
}

void connlimit_free(struct hd_connlimit *cl)
{
	if (cl == NULL)
		return;
	for (size_t b = 0; b < SOURCE_BUCKETS; b++)
		while (cl->buckets[b]) {
			struct hd_conn_source *s = cl->buckets[b];
			cl->buckets[b] = s->next_in_bucket;
			free(s);
		}
	event_free(cl->retry);
	free(cl);
}

/* ---- admission ---- */

static void note_accepted(struct hd_connlimit *cl)
{
	if (cl->error_episode) {
		log_info("%s: accepting again after %.1f s (%" PRIu64 " pauses)", cl->name,
			 (double)(hd_now_mono_ms() - cl->error_since_ms) / 1000.0, cl->error_episode_pauses);
		cl->error_episode = false;
		cl->error_episode_pauses = 0;
	}
}

static void start_cap_episode(struct hd_connlimit *cl, const struct hd_conn_policy *p)
{
	if (cl->cap_episode)
		return;
	cl->cap_episode = true;
	cl->cap_since_ms = hd_now_mono_ms();
	cl->cap_episode_evicted = cl->cap_episode_refused = 0;
	cl->cap_episodes++;
	log_warn("%s: %zu connections open, the cap (%s %d): the idlest give way to newcomers, and a newcomer is "
		 "refused when every connection is busy (logged once until below %d)", cl->name, cl->n_open,
		 p->max_total_key, p->max_total, p->max_total * 3 / 4);
}

static struct hd_conn_slot *idlest_of_source(struct hd_conn_source *s)
{
	struct hd_conn_slot *best = NULL, *slot;

	TAILQ_FOREACH(slot, &s->slots, by_source) {
		if (slot->level == HD_SLOT_IDLE_FIRST)
			return slot; /* the oldest idle keep-alive one */
		if (slot->level == HD_SLOT_EVICTABLE && best == NULL)
			best = slot;
	}
	return best;
}

static struct hd_conn_slot *idlest_of_all(struct hd_connlimit *cl)
{
	struct hd_conn_slot *slot = TAILQ_FIRST(&cl->level[HD_SLOT_IDLE_FIRST]);

	return slot ? slot : TAILQ_FIRST(&cl->level[HD_SLOT_EVICTABLE]);
}

static void refusal_log(struct hd_connlimit *cl, const char *ip, const char *why)
{
	int64_t now = hd_now_mono_ms();

	if (cl->last_refusal_log_ms != 0 && now - cl->last_refusal_log_ms < REFUSAL_LOG_EVERY_MS)
		return;
	cl->last_refusal_log_ms = now;
	log_warn("%s: refused a connection from %s: %s (at most one such line a minute; /metrics counts them all)",
		 cl->name, ip, why);
}

bool connlimit_admit(struct hd_connlimit *cl, const struct hd_conn_policy *p, const struct sockaddr *sa,
		     struct hd_conn_slot *slot, void (*evict)(struct hd_conn_slot *))
{
	char ip[INET6_ADDRSTRLEN] = "local";
	int family = 0;
	uint8_t addr[16];
	bool keyed = sa != NULL && key_of(sa, &family, addr);
	struct hd_conn_source *src = keyed ? find_source(cl, family, addr) : NULL;

	note_accepted(cl);
	cl->max_total = p->max_total;
	if (sa != NULL)
		hd_peer_ip(sa, ip, sizeof(ip));
	if (p->allow != NULL && p->allow->set && (sa == NULL || !hd_cidr_list_match(p->allow, sa))) {
		cl->refused_allow++;
		refusal_log(cl, ip, p->allow_key ? p->allow_key : "not allowed");
		return false;
	}
	if (src != NULL && p->max_per_source > 0 && src->count >= p->max_per_source) {
		struct hd_conn_slot *victim = idlest_of_source(src);
		int64_t now = hd_now_mono_ms();
		if (cl->source_limit_last_ms == 0 || now - cl->source_limit_last_ms > SOURCE_EPISODE_QUIET_MS)
			log_warn("%s: %s has %d connections open, the limit per source (%s): a source's idlest give way "
				 "to its newcomers, which are refused while all of its connections are busy (logged once "
				 "until no source has been over its limit for %d s)", cl->name, ip, src->count,
				 p->max_per_source_key, SOURCE_EPISODE_QUIET_MS / 1000);
		cl->source_limit_last_ms = now;
		if (victim == NULL) {
			cl->refused_source++;
			return false;
		}
		cl->evicted++;
		victim->evict(victim); /* may free src when it was the last one: look it up again */
		src = find_source(cl, family, addr);
	}
	if (p->max_total > 0 && cl->n_open >= (size_t)p->max_total) {
		struct hd_conn_slot *victim = idlest_of_all(cl);
		start_cap_episode(cl, p);
		if (victim == NULL) {
			cl->refused_cap++;
			cl->cap_episode_refused++;
			update_full(cl);
			return false;
		}
		cl->evicted++;
		cl->cap_episode_evicted++;
		victim->evict(victim);
		if (keyed)
			src = find_source(cl, family, addr);
	}
	if (keyed && src == NULL) {
		unsigned b = bucket_of(family, addr);
		src = xcalloc(1, sizeof(*src));
		src->family = family;
		memcpy(src->addr, addr, 16);
		TAILQ_INIT(&src->slots);
		src->next_in_bucket = cl->buckets[b];
		cl->buckets[b] = src;
	}
	memset(slot, 0, sizeof(*slot));
	slot->cl = cl;
	slot->src = src;
	slot->level = HD_SLOT_EVICTABLE;
	slot->evict = evict;
	if (src != NULL) {
		src->count++;
		TAILQ_INSERT_TAIL(&src->slots, slot, by_source);
	}
	TAILQ_INSERT_TAIL(&cl->level[HD_SLOT_EVICTABLE], slot, by_level);
	cl->n_open++;
	update_full(cl);
	return true;
}

void connlimit_set_level(struct hd_conn_slot *slot, enum hd_slot_level level)
{
	struct hd_connlimit *cl = slot->cl;

	if (cl == NULL || slot->level == level)
		return;
	TAILQ_REMOVE(&cl->level[slot->level], slot, by_level);
	slot->level = level;
	TAILQ_INSERT_TAIL(&cl->level[level], slot, by_level); /* the tail: the most recently active */
	update_full(cl);
}

void connlimit_remove(struct hd_conn_slot *slot)
{
	struct hd_connlimit *cl = slot->cl;

	if (cl == NULL)
		return;
	TAILQ_REMOVE(&cl->level[slot->level], slot, by_level);
	if (slot->src != NULL) {
		TAILQ_REMOVE(&slot->src->slots, slot, by_source);
		if (--slot->src->count == 0)
			drop_source(cl, slot->src);
	}
	slot->cl = NULL;
	slot->src = NULL;
	cl->n_open--;
	update_full(cl);
}

size_t connlimit_open(const struct hd_connlimit *cl)
{
	return cl->n_open;
}

/* ---- /metrics ---- */

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void connlimit_render_metrics(struct evbuffer *out, struct hd_connlimit *const *list, size_t n)
{
	family(out, "healthd_connections_open", "gauge", "Connections open on each listener.");
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "healthd_connections_open{listener=\"%s\"} %zu\n", list[i]->name, list[i]->n_open);
	family(out, "healthd_connections_evicted_total", "counter",
	       "Idle or incomplete connections closed to make room for a newcomer (total or per-source limit).");
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "healthd_connections_evicted_total{listener=\"%s\"} %" PRIu64 "\n", list[i]->name,
				    list[i]->evicted);
	family(out, "healthd_connections_refused_total", "counter",
	       "Connections closed at accept: source not allowed, its per-source limit or the cap with every connection busy.");
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(out, "healthd_connections_refused_total{listener=\"%s\",reason=\"allow_from\"} %" PRIu64 "\n",
				    list[i]->name, list[i]->refused_allow);
		evbuffer_add_printf(out, "healthd_connections_refused_total{listener=\"%s\",reason=\"per_source\"} %" PRIu64 "\n",
				    list[i]->name, list[i]->refused_source);
		evbuffer_add_printf(out, "healthd_connections_refused_total{listener=\"%s\",reason=\"cap\"} %" PRIu64 "\n",
				    list[i]->name, list[i]->refused_cap);
	}
	family(out, "healthd_connection_cap_episodes_total", "counter",
	       "Times a listener reached its connection cap (each episode ends below three quarters of it).");
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "healthd_connection_cap_episodes_total{listener=\"%s\"} %" PRIu64 "\n", list[i]->name,
				    list[i]->cap_episodes);
	family(out, "healthd_accept_pauses_total", "counter",
	       "Pauses of a listener after accept() failed (descriptors or memory exhausted), 250 ms each.");
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "healthd_accept_pauses_total{listener=\"%s\"} %" PRIu64 "\n", list[i]->name,
				    list[i]->accept_pauses);
}
