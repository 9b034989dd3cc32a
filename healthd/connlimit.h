/* connlimit.h: who may connect to a listener, how many at once (in total and per source), and what gives way. */
#ifndef HEALTHD_CONNLIMIT_H
#define HEALTHD_CONNLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/listener.h>
#include <sys/queue.h>

struct event_base;
struct evbuffer;
struct sockaddr;

/* An address range ("10.0.0.0/8", "::1/128", a bare address = one host). IPv4-mapped IPv6 peers match IPv4 ranges. */
struct hd_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;
};

struct hd_cidr_list {
	bool set; /* false: the key was absent (the key's own default applies) */
	size_t n;
	struct hd_cidr *v;
};

/* Parses one range; 0, or -1 with *why (static text). */
int hd_cidr_parse(const char *text, struct hd_cidr *out, const char **why);
bool hd_cidr_match(const struct hd_cidr *c, const struct sockaddr *sa);
bool hd_cidr_list_match(const struct hd_cidr_list *l, const struct sockaddr *sa);
/* Peers on 127.0.0.0/8 or ::1 (and IPv4-mapped loopback). */
bool hd_sockaddr_is_loopback(const struct sockaddr *sa);
/* The peer's IP as text ("?" for anything else); IPv4-mapped IPv6 shown as IPv4. */
void hd_peer_ip(const struct sockaddr *sa, char *buf, size_t len);

/* What a listener allows; read from the configuration at every accept, so that a reload applies at once. */
struct hd_conn_policy {
	int max_total;
	int max_per_source;               /* 0: no per-source limit (Unix sockets) */
	const struct hd_cidr_list *allow; /* NULL or unset: everyone */
	const char *max_total_key, *max_per_source_key, *allow_key; /* config key names, for the log */
};

struct hd_conn_source;
struct hd_connlimit;

/* How readily a connection gives way to a newcomer when a limit is reached. */
enum hd_slot_level {
	HD_SLOT_BUSY,       /* answering: never evicted */
	HD_SLOT_EVICTABLE,  /* waiting for (the rest of) a request, or done and lingering */
	HD_SLOT_IDLE_FIRST, /* idle keep-alive: evicted before anything else */
};

/* Embedded in each connection of a limited listener. */
struct hd_conn_slot {
	struct hd_connlimit *cl;
	struct hd_conn_source *src;
	enum hd_slot_level level;
	void (*evict)(struct hd_conn_slot *slot); /* closes the connection (which calls connlimit_remove) */
	TAILQ_ENTRY(hd_conn_slot) by_source, by_level;
};

/*
 * name appears in the log and as the listener label in /metrics ("http", "agent", "admin"). The listener's accept
 * errors are handled here: on EMFILE, ENFILE, ENOBUFS or ENOMEM (or anything unexpected) it stops accepting and
 * retries from a timer, logging once per episode, instead of spinning on a level-triggered error.
 */
struct hd_connlimit *connlimit_new(struct event_base *base, const char *name);
/* Takes over the listener's callbacks: connections go on to cb(arg), accept errors are handled here. */
void connlimit_attach(struct hd_connlimit *cl, struct evconnlistener *listener, evconnlistener_cb cb, void *arg);
void connlimit_free(struct hd_connlimit *cl);

/*
 * Decides about a connection just accepted from sa (NULL for a Unix socket). Refuses a source outside
 * policy->allow; at the per-source limit evicts that source's idlest connection, at the total limit the idlest of
 * all; refuses when nothing may be evicted. true: the slot is added (level EVICTABLE); false: close the socket.
 * Refusals and evictions are counted, and logged once per episode.
 */
bool connlimit_admit(struct hd_connlimit *cl, const struct hd_conn_policy *policy, const struct sockaddr *sa,
		     struct hd_conn_slot *slot, void (*evict)(struct hd_conn_slot *));
void connlimit_set_level(struct hd_conn_slot *slot, enum hd_slot_level level);
void connlimit_remove(struct hd_conn_slot *slot);
size_t connlimit_open(const struct hd_connlimit *cl);

/* The counters of every listener in the Prometheus text format. */
void connlimit_render_metrics(struct evbuffer *out, struct hd_connlimit *const *list, size_t n);

#endif
