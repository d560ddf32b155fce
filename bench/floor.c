// floor — the reference SSE fan-out server for the sse-fanout benchmarks: the least work a
// single thread can do to deliver the same bytes, so the figures of the real product can be
// read against what the hardware allows.
//
// Usage: floor [--port P] [--max-queue BYTES] [--sndbuf BYTES]
//   --port P           listen on 127.0.0.1:P (default 0 = ephemeral); prints "LISTENING <port>"
//   --max-queue BYTES  close a subscriber whose pending bytes exceed this (default 1 MiB)
//   --sndbuf BYTES     SO_SNDBUF of every accepted socket (default 128 KiB, like the product)
//
// Endpoints (HTTP/1.1, keep-alive):
//   GET  /events?topics=a,b/*     subscribe to exact topics and prefix patterns ("b/*" matches
//                                 every topic under "b/"); the response is a chunked
//                                 text/event-stream (raw body to an HTTP/1.0 client)
//   POST /publish?topic=T&count=C&size=S
//                                 publish C events back to back to topic T (no topic: to every
//                                 subscriber); each event is "data: <CLOCK_MONOTONIC ns>
//                                 <padding>\n\n" with S bytes of data; answered by 204 once
//                                 everything is queued (the request body is ignored)
//   GET  /stats                   {"connections": <subscribers>, "rss": <bytes>, ...}; also
//                                 sockets, topics, events_published, slow_closed, and the
//                                 last publish call's queuing and first-flush-pass times
//                                 (last_queue_us, last_flush_us)
//
// Design.  One thread, one level-triggered epoll set, non-blocking sockets.
//   - A Frame is one encoded event, allocated once: "<hex len>\r\n" + payload + "\r\n".  It is
//     refcounted; a subscriber's outbox holds (frame, offset, length) entries pointing into it,
//     the whole chunk for chunked connections, the payload only for HTTP/1.0 ones.  The last
//     outbox to drop a frame frees it.  HTTP responses of this server are private frames.
//   - Topics: a hash map from topic string (patterns keep their "/*") to the array of
//     subscribed connections.  Publishing to "a/b/c" looks up "a/b/c", "a/*" and "a/b/*", so the
//     cost does not depend on how many topics or connections exist.  A connection records its
//     position in each array, so unsubscribing is a swap-remove.  Every subscriber is also in
//     one array for broadcasts.  A publish sequence number stamped on the connection keeps an
//     event from being queued twice to a connection that matches through several subscriptions.
//   - Coalescing: queuing marks the connection dirty; after each publish (and at the end of each
//     event-loop turn) every dirty connection gets ONE writev with all it has pending.  A short
//     write or EAGAIN arms EPOLLOUT, and the connection is not written again until the kernel
//     says it is writable.  A connection whose outbox would pass --max-queue is closed.
//   - Closing never frees memory directly: a closed connection goes to a zombie list freed at the
//     end of the loop turn, so no pointer held in the current epoll batch or dirty list dangles.
//
// Build: cmake --preset bench && cmake --build --preset bench --target floor (bench/run.js does)

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST 8192       /* bytes of request head we accept */
#define MAX_BODY 65536         /* bytes of (ignored) request body we accept */
#define MAX_TOPICS_PER_CONN 64
#define MAX_TOPIC_LEN 1024
#define MAX_COUNT 1000000
#define MAX_SIZE (1 << 20)
#define WRITEV_MAX 1024        /* IOV_MAX on Linux */

/* ------------------------------------------------------------------------------------------ */
/* Frames */

typedef struct frame {
    uint32_t refs;
    uint32_t len;      /* bytes in data */
    uint32_t raw_off;  /* payload without chunk framing, for HTTP/1.0 connections */
    uint32_t raw_len;
    char data[];
} frame;

static frame *frame_new(size_t len) {
    frame *f = malloc(sizeof(frame) + len);
    if (!f) { perror("malloc"); exit(1); }
    f->refs = 1;
    f->len = (uint32_t)len;
    f->raw_off = 0;
    f->raw_len = (uint32_t)len;
    return f;
}

static void frame_unref(frame *f) {
    if (--f->refs == 0) free(f);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections */

typedef struct { frame *f; uint32_t off, len; } out_entry;

struct topic;
typedef struct { struct topic *t; uint32_t pos; } sub_ref;       /* conn -> topic array slot */
typedef struct conn conn;
typedef struct { conn *c; uint32_t slot; } topic_member;           /* topic -> conn sub slot */

enum { C_REQUEST, C_STREAM };

struct conn {
    int fd;
    int kind;             /* C_REQUEST: reading HTTP requests; C_STREAM: SSE subscriber */
    int chunked;          /* SSE body uses chunk framing */
    int closed;
    int doomed;           /* outbox overflow: close at the next flush */
    int close_after;      /* close once the outbox is empty (Connection: close, EOF) */
    int in_dirty;
    int want_out;         /* EPOLLOUT armed */
    int rd_closed;        /* the peer finished sending (requesters only): stop polling input */
    uint64_t seen_pub;    /* last publish sequence this connection was queued for */

    /* outbox: ring buffer of entries */
    out_entry *q;
    uint32_t qcap, qhead, qcount;
    size_t qbytes;

    /* request buffer (C_REQUEST) */
    char *req;
    size_t reqlen, reqcap;

    /* subscriptions (C_STREAM) */
    sub_ref subs[MAX_TOPICS_PER_CONN];
    uint32_t nsubs;
    uint32_t all_pos;     /* position in the broadcast array */

    conn *prev, *next;    /* list of every open connection, for the clean exit */
    conn *next_zombie;
};

/* ------------------------------------------------------------------------------------------ */
/* Topic map: open addressing, linear probing, backward-shift deletion */

typedef struct topic {
    char *name;
    size_t name_len;
    uint64_t hash;
    topic_member *m;
    uint32_t n, cap;
} topic;

static topic **tmap;          /* slots, NULL = empty */
static size_t tmap_cap = 0;   /* power of two */
static size_t tmap_count = 0;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

static topic *tmap_find(const char *name, size_t len) {
    if (!tmap_cap) return NULL;
    uint64_t h = hash_bytes(name, len);
    for (size_t i = h & (tmap_cap - 1);; i = (i + 1) & (tmap_cap - 1)) {
        topic *t = tmap[i];
        if (!t) return NULL;
        if (t->hash == h && t->name_len == len && memcmp(t->name, name, len) == 0) return t;
    }
}

static void tmap_insert_slot(topic *t) {
    size_t i = t->hash & (tmap_cap - 1);
    while (tmap[i]) i = (i + 1) & (tmap_cap - 1);
    tmap[i] = t;
}

static topic *tmap_get_or_add(const char *name, size_t len) {
    topic *t = tmap_find(name, len);
    if (t) return t;
    if ((tmap_count + 1) * 10 > tmap_cap * 7) { /* grow at 70% load */
        size_t old_cap = tmap_cap;
        topic **old = tmap;
        tmap_cap = old_cap ? old_cap * 2 : 64;
        tmap = calloc(tmap_cap, sizeof(topic *));
        if (!tmap) { perror("calloc"); exit(1); }
        for (size_t i = 0; i < old_cap; i++) if (old[i]) tmap_insert_slot(old[i]);
        free(old);
    }
    t = calloc(1, sizeof(topic));
    t->name = malloc(len + 1);
    if (!t || !t->name) { perror("malloc"); exit(1); }
    memcpy(t->name, name, len);
    t->name[len] = 0;
    t->name_len = len;
    t->hash = hash_bytes(name, len);
    tmap_insert_slot(t);
    tmap_count++;
    return t;
}

static void tmap_remove(topic *t) {
    size_t mask = tmap_cap - 1, i = t->hash & mask;
    while (tmap[i] != t) i = (i + 1) & mask;
    /* backward shift: move later entries of the probe run into the hole when allowed */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; tmap[j]; j = (j + 1) & mask) {
        size_t home = tmap[j]->hash & mask;
        /* entry j may move to hole if its home is not in (hole, j] cyclically */
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) { tmap[hole] = tmap[j]; hole = j; }
    }
    tmap[hole] = NULL;
    tmap_count--;
    free(t->m);
    free(t->name);
    free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Server state */

static int ep = -1, listen_fd = -1;
static int spare_fd = -1;         /* kept open so an accept can still succeed under EMFILE */
static size_t max_queue = 1 << 20;
static int sndbuf = 128 * 1024;
static volatile sig_atomic_t stopping = 0;

static conn **all_subs;           /* every SSE subscriber, for broadcasts */
static uint32_t nall = 0, all_cap = 0;
static conn **dirty;              /* connections with something to flush */
static size_t ndirty = 0, dirty_cap = 0;
static conn *zombies = NULL;
static conn *conn_list = NULL;    /* every open connection */
static size_t nconns = 0;         /* open sockets, listener excluded */
static uint64_t pub_seq = 0;
static uint64_t events_published = 0, slow_closed = 0;
static uint64_t last_queue_ns = 0, last_flush_ns = 0; /* phases of the last publish call */

static void *xrealloc(void *p, size_t n) {
    void *r = realloc(p, n);
    if (!r) { perror("realloc"); exit(1); }
    return r;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void update_events(conn *c) {
    struct epoll_event ev = {.events = (c->rd_closed ? 0 : EPOLLIN | EPOLLRDHUP) |
                                       (c->want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void set_events(conn *c, int want_out) {
    if (c->want_out == want_out) return;
    c->want_out = want_out;
    update_events(c);
}

static void mark_dirty(conn *c) {
    if (c->in_dirty || c->closed) return;
    if (ndirty == dirty_cap) {
        dirty_cap = dirty_cap ? dirty_cap * 2 : 1024;
        dirty = xrealloc(dirty, dirty_cap * sizeof(conn *));
    }
    dirty[ndirty++] = c;
    c->in_dirty = 1;
}

static void unsubscribe_all(conn *c) {
    for (uint32_t s = 0; s < c->nsubs; s++) {
        topic *t = c->subs[s].t;
        uint32_t pos = c->subs[s].pos;
        /* swap-remove, then fix the moved member's back reference */
        t->m[pos] = t->m[--t->n];
        if (pos < t->n) t->m[pos].c->subs[t->m[pos].slot].pos = pos;
        if (t->n == 0) tmap_remove(t);
    }
    c->nsubs = 0;
    if (c->kind == C_STREAM) {
        conn *last = all_subs[--nall];
        all_subs[c->all_pos] = last;
        last->all_pos = c->all_pos;
    }
}

static void close_conn(conn *c) {
    if (c->closed) return;
    c->closed = 1;
    unsubscribe_all(c);
    close(c->fd); /* removes it from the epoll set */
    nconns--;
    if (c->prev) c->prev->next = c->next;
    else conn_list = c->next;
    if (c->next) c->next->prev = c->prev;
    while (c->qcount) {
        frame_unref(c->q[c->qhead].f);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qcount--;
    }
    c->qbytes = 0;
    c->next_zombie = zombies;
    zombies = c;
}

static void free_zombies(void) {
    while (zombies) {
        conn *c = zombies;
        zombies = c->next_zombie;
        free(c->q);
        free(c->req);
        free(c);
    }
}

/* Queue bytes [off, off+len) of f on c.  Never closes c here (we may be iterating a topic
 * array): an overflowing connection is only marked, and closed by the flush. */
static void enqueue(conn *c, frame *f, uint32_t off, uint32_t len) {
    if (c->closed || c->doomed) return;
    if (c->qbytes + len > max_queue) {
        c->doomed = 1;
        mark_dirty(c);
        return;
    }
    if (c->qcount == c->qcap) {
        uint32_t ncap = c->qcap ? c->qcap * 2 : 16;
        out_entry *nq = malloc(ncap * sizeof(out_entry));
        if (!nq) { perror("malloc"); exit(1); }
        for (uint32_t i = 0; i < c->qcount; i++) nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qcount) % c->qcap] = (out_entry){f, off, len};
    c->qcount++;
    c->qbytes += len;
    f->refs++;
    if (!c->want_out) mark_dirty(c);
}

/* A private frame holding a response (or any bytes) for one connection. */
static void enqueue_bytes(conn *c, const char *s, size_t n) {
    frame *f = frame_new(n);
    memcpy(f->data, s, n);
    enqueue(c, f, 0, (uint32_t)n);
    frame_unref(f);
}

/* One writev with everything pending (up to IOV_MAX entries; a larger outbox gets a second
 * writev only if the first one went out whole). */
static void flush_conn(conn *c) {
    if (c->closed) return;
    if (c->doomed) { slow_closed++; close_conn(c); return; }
    while (c->qcount) {
        struct iovec iov[WRITEV_MAX];
        int n = 0;
        size_t total = 0;
        for (uint32_t i = 0; i < c->qcount && n < WRITEV_MAX; i++, n++) {
            out_entry *e = &c->q[(c->qhead + i) % c->qcap];
            iov[n].iov_base = e->f->data + e->off;
            iov[n].iov_len = e->len;
            total += e->len;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { set_events(c, 1); return; }
            close_conn(c); /* EPIPE, ECONNRESET, ... */
            return;
        }
        size_t left = (size_t)w;
        c->qbytes -= left;
        while (left) {
            out_entry *e = &c->q[c->qhead];
            if (left >= e->len) {
                left -= e->len;
                frame_unref(e->f);
                c->qhead = (c->qhead + 1) % c->qcap;
                c->qcount--;
            } else {
                e->off += (uint32_t)left;
                e->len -= (uint32_t)left;
                left = 0;
            }
        }
        if ((size_t)w < total) { set_events(c, 1); return; } /* socket buffer full */
    }
    set_events(c, 0);
    if (c->close_after) close_conn(c);
}

static void flush_dirty(void) {
    /* flush_conn never adds to the dirty list, so a simple pass suffices */
    for (size_t i = 0; i < ndirty; i++) {
        conn *c = dirty[i];
        c->in_dirty = 0;
        if (!c->closed && !c->want_out) flush_conn(c);
        else if (!c->closed && c->doomed) flush_conn(c);
    }
    ndirty = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP helpers */

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (size >= n+1), '+' becomes a space. Returns the length. */
static size_t url_decode(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return o;
}

// Finds query parameter `key` in query q[0..n); sets *val and *vlen to its raw (undecoded) value.
static int query_param(const char *q, size_t n, const char *key, const char **val, size_t *vlen) {
    size_t klen = strlen(key);
    const char *p = q, *end = q + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - p) >= klen && memcmp(p, key, klen) == 0 &&
            (p + klen == pe || p[klen] == '=')) {
            *val = p + klen == pe ? pe : p + klen + 1;
            *vlen = (size_t)(pe - *val);
            return 1;
        }
        p = pe + 1;
    }
    return 0;
}

static int parse_uint(const char *s, size_t n, long max, long *out) {
    if (n == 0 || n > 9) return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return 0;
    *out = v;
    return 1;
}

static void respond(conn *c, const char *status, const char *ctype, const char *body, int keep) {
    char head[512];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\n%s%s%scontent-length: %zu\r\nconnection: %s\r\n\r\n", status,
                     ctype ? "content-type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", blen,
                     keep ? "keep-alive" : "close");
    enqueue_bytes(c, head, (size_t)n);
    if (blen) enqueue_bytes(c, body, blen);
    if (!keep) c->close_after = 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Endpoints */

static void subscribe(conn *c, const char *name, size_t len) {
    if (len == 0 || len > MAX_TOPIC_LEN || c->nsubs == MAX_TOPICS_PER_CONN) return;
    for (uint32_t s = 0; s < c->nsubs; s++) /* no duplicates */
        if (c->subs[s].t->name_len == len && memcmp(c->subs[s].t->name, name, len) == 0) return;
    topic *t = tmap_get_or_add(name, len);
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4;
        t->m = xrealloc(t->m, t->cap * sizeof(topic_member));
    }
    t->m[t->n] = (topic_member){c, c->nsubs};
    c->subs[c->nsubs++] = (sub_ref){t, t->n};
    t->n++;
}

static void handle_events(conn *c, const char *query, size_t qlen, int http10) {
    const char *v;
    size_t vlen;
    if (query_param(query, qlen, "topics", &v, &vlen)) {
        char *dec = malloc(vlen + 1);
        if (!dec) { perror("malloc"); exit(1); }
        /* split on ',' before decoding so an encoded comma stays inside a topic */
        const char *p = v, *end = v + vlen;
        while (p <= end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *pe = comma ? comma : end;
            size_t dlen = url_decode(p, (size_t)(pe - p), dec);
            subscribe(c, dec, dlen);
            p = pe + 1;
        }
        free(dec);
    }
    c->kind = C_STREAM;
    c->chunked = !http10;
    if (nall == all_cap) {
        all_cap = all_cap ? all_cap * 2 : 1024;
        all_subs = xrealloc(all_subs, all_cap * sizeof(conn *));
    }
    c->all_pos = nall;
    all_subs[nall++] = c;
    static const char head11[] =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        "connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n";
    static const char head10[] =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        "connection: close\r\n\r\n";
    if (http10) enqueue_bytes(c, head10, sizeof head10 - 1);
    else enqueue_bytes(c, head11, sizeof head11 - 1);
}

/* Queues frame f to every subscriber matching topic (NULL = all), once per connection. */
static void fan_out(frame *f, const char *topic_name, size_t tlen) {
    pub_seq++;
    if (!topic_name) {
        for (uint32_t i = 0; i < nall; i++) {
            conn *c = all_subs[i];
            if (c->chunked) enqueue(c, f, 0, f->len);
            else enqueue(c, f, f->raw_off, f->raw_len);
        }
        return;
    }
    // the exact topic, then the patterns "p/*" for every prefix p of the topic ending in '/'
    char key[MAX_TOPIC_LEN + 2];
    for (size_t cut = 0; cut <= tlen; cut++) {
        topic *t;
        if (cut == tlen) {
            t = tmap_find(topic_name, tlen);
        } else {
            if (topic_name[cut] != '/') continue;
            memcpy(key, topic_name, cut + 1);
            key[cut + 1] = '*';
            t = tmap_find(key, cut + 2);
        }
        if (!t) continue;
        for (uint32_t i = 0; i < t->n; i++) {
            conn *c = t->m[i].c;
            if (c->seen_pub == pub_seq) continue;
            c->seen_pub = pub_seq;
            if (c->chunked) enqueue(c, f, 0, f->len);
            else enqueue(c, f, f->raw_off, f->raw_len);
        }
    }
}

static void handle_publish(conn *c, const char *query, size_t qlen, int keep) {
    const char *v;
    size_t vlen;
    long count = 1, size = 64;
    char topic_buf[MAX_TOPIC_LEN + 1];
    const char *topic_name = NULL;
    size_t tlen = 0;
    if (query_param(query, qlen, "count", &v, &vlen) && !parse_uint(v, vlen, MAX_COUNT, &count)) {
        respond(c, "400 Bad Request", "text/plain", "bad count\n", keep);
        return;
    }
    if (query_param(query, qlen, "size", &v, &vlen) && !parse_uint(v, vlen, MAX_SIZE, &size)) {
        respond(c, "400 Bad Request", "text/plain", "bad size\n", keep);
        return;
    }
    if (query_param(query, qlen, "topic", &v, &vlen)) {
        if (vlen == 0 || vlen > MAX_TOPIC_LEN) {
            respond(c, "400 Bad Request", "text/plain", "bad topic\n", keep);
            return;
        }
        tlen = url_decode(v, vlen, topic_buf);
        topic_name = topic_buf;
    }
    uint64_t t0 = mono_ns();
    for (long k = 0; k < count; k++) {
        /* data = "<ns>" + " " + padding, S bytes in all (never shorter than the timestamp) */
        char ts[24];
        int tslen = snprintf(ts, sizeof ts, "%llu", (unsigned long long)mono_ns());
        size_t dlen = (size_t)size > (size_t)tslen ? (size_t)size : (size_t)tslen;
        size_t plen = 6 + dlen + 2; /* "data: " + data + "\n\n" */
        char hex[16];
        int hlen = snprintf(hex, sizeof hex, "%zx\r\n", plen);
        frame *f = frame_new((size_t)hlen + plen + 2);
        char *p = f->data;
        memcpy(p, hex, (size_t)hlen); p += hlen;
        f->raw_off = (uint32_t)hlen;
        f->raw_len = (uint32_t)plen;
        memcpy(p, "data: ", 6); p += 6;
        memcpy(p, ts, (size_t)tslen); p += tslen;
        if (dlen > (size_t)tslen) {
            *p++ = ' ';
            memset(p, 'x', dlen - (size_t)tslen - 1);
            p += dlen - (size_t)tslen - 1;
        }
        memcpy(p, "\n\n\r\n", 4);
        fan_out(f, topic_name, tlen);
        frame_unref(f);
        events_published++;
    }
    static const char ok[] = "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
    static const char ok_close[] =
        "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    if (keep) enqueue_bytes(c, ok, sizeof ok - 1);
    else { enqueue_bytes(c, ok_close, sizeof ok_close - 1); c->close_after = 1; }
    uint64_t t1 = mono_ns();
    flush_dirty();
    last_queue_ns = t1 - t0;
    last_flush_ns = mono_ns() - t1;
}

static void handle_stats(conn *c, int keep) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    char body[256];
    snprintf(body, sizeof body,
             "{\"connections\":%u,\"rss\":%ld,\"sockets\":%zu,\"topics\":%zu,"
             "\"events_published\":%llu,\"slow_closed\":%llu,\"last_queue_us\":%.1f,"
             "\"last_flush_us\":%.1f}\n",
             nall, resident * sysconf(_SC_PAGESIZE), nconns, tmap_count,
             (unsigned long long)events_published, (unsigned long long)slow_closed,
             (double)last_queue_ns / 1e3, (double)last_flush_ns / 1e3);
    respond(c, "200 OK", "application/json", body, keep);
}

/* Header value lookup in head[0..n) (lines after the request line); case-insensitive name. */
static int header_value(const char *head, size_t n, const char *name, const char **val,
                        size_t *vlen) {
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', n), *end = head + n;
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *val = v;
            *vlen = (size_t)(ve - v);
            return 1;
        }
        p = eol;
    }
    return 0;
}

static int contains_ci(const char *s, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (strncasecmp(s + i, word, w) == 0) return 1;
    return 0;
}

/* Handles the complete requests in c->req.  Returns when more bytes are needed, when the
 * connection became a stream, or when it is to be closed. */
static void process_requests(conn *c) {
    while (c->kind == C_REQUEST && !c->close_after && !c->closed) {
        char *end = c->reqlen >= 4 ? memmem(c->req, c->reqlen, "\r\n\r\n", 4) : NULL;
        if (!end) {
            if (c->reqlen >= MAX_REQUEST) {
                respond(c, "431 Request Header Fields Too Large", NULL, NULL, 0);
            }
            return;
        }
        size_t head_len = (size_t)(end - c->req) + 4;
        /* request line: METHOD SP target SP HTTP/1.x */
        char *sp1 = memchr(c->req, ' ', head_len);
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - c->req)) : NULL;
        if (!sp1 || !sp2 || (size_t)(c->req + head_len - sp2) < 9 ||
            memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
            respond(c, "400 Bad Request", NULL, NULL, 0);
            return;
        }
        int http10 = sp2[8] == '0';
        const char *method = c->req;
        size_t mlen = (size_t)(sp1 - c->req);
        const char *target = sp1 + 1;
        size_t tlen = (size_t)(sp2 - target);
        const char *qm = memchr(target, '?', tlen);
        size_t plen = qm ? (size_t)(qm - target) : tlen;
        const char *query = qm ? qm + 1 : target + tlen;
        size_t qlen = qm ? tlen - plen - 1 : 0;

        const char *v;
        size_t vlen;
        int keep = !http10;
        if (header_value(c->req, head_len, "connection", &v, &vlen)) {
            if (contains_ci(v, vlen, "close")) keep = 0;
            else if (contains_ci(v, vlen, "keep-alive")) keep = 1;
        }
        if (header_value(c->req, head_len, "transfer-encoding", &v, &vlen)) {
            respond(c, "501 Not Implemented", "text/plain", "chunked requests unsupported\n", 0);
            return;
        }
        long body = 0;
        if (header_value(c->req, head_len, "content-length", &v, &vlen) &&
            !parse_uint(v, vlen, MAX_BODY, &body)) {
            respond(c, "400 Bad Request", NULL, NULL, 0);
            return;
        }
        if (c->reqlen < head_len + (size_t)body) return; /* wait for the (ignored) body */

#define IS(m, p) (mlen == strlen(m) && memcmp(method, m, mlen) == 0 && plen == strlen(p) && \
                  memcmp(target, p, plen) == 0)
        if (IS("GET", "/events")) {
            handle_events(c, query, qlen, http10);
        } else if (IS("POST", "/publish")) {
            handle_publish(c, query, qlen, keep);
        } else if (IS("GET", "/stats")) {
            handle_stats(c, keep);
        } else {
            respond(c, "404 Not Found", "text/plain", "not found\n", keep);
        }
#undef IS
        /* drop the handled request */
        size_t used = head_len + (size_t)body;
        memmove(c->req, c->req + used, c->reqlen - used);
        c->reqlen -= used;
    }
}

static void on_readable(conn *c) {
    char buf[16384];
    for (;;) {
        ssize_t r;
        if (c->kind == C_REQUEST && !c->close_after) {
            /* grow the request buffer as needed; process_requests rejects a head longer than
             * MAX_REQUEST, and a body is at most MAX_BODY, so there is always room here */
            if (c->reqcap - c->reqlen < 1024 && c->reqcap < MAX_REQUEST + MAX_BODY) {
                size_t ncap = c->reqcap ? c->reqcap * 2 : 2048;
                if (ncap > MAX_REQUEST + MAX_BODY) ncap = MAX_REQUEST + MAX_BODY;
                c->req = xrealloc(c->req, ncap);
                c->reqcap = ncap;
            }
            size_t room = c->reqcap - c->reqlen;
            r = read(c->fd, c->req + c->reqlen, room);
            if (r > 0) {
                c->reqlen += (size_t)r;
                process_requests(c);
                if (c->closed) return;
                if (c->kind == C_STREAM) { free(c->req); c->req = NULL; c->reqlen = c->reqcap = 0; }
                if ((size_t)r < room) return;
                continue;
            }
        } else {
            /* subscribers have nothing more to say; neither has a requester being closed */
            r = read(c->fd, buf, sizeof buf);
            if (r > 0) { if ((size_t)r < sizeof buf) return; continue; }
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        /* EOF or error: a subscriber is gone; a requester still gets its pending responses */
        if (c->kind == C_REQUEST && r == 0 && c->qcount) {
            c->close_after = 1;
            c->rd_closed = 1;
            update_events(c);
        } else {
            close_conn(c);
        }
        return;
    }
}

static void on_accept(void) {
    for (int k = 0; k < 512; k++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
                /* out of files: the level-triggered listener would spin, so shed the
                 * connection: free the spare fd, accept and close, take the spare back */
                static int warned = 0;
                if (!warned++) fprintf(stderr, "floor: accept: %s, shedding\n", strerror(errno));
                close(spare_fd);
                int shed = accept(listen_fd, NULL, NULL);
                if (shed >= 0) close(shed);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            if (errno != EAGAIN) {
                static int warned = 0;
                if (!warned++) fprintf(stderr, "floor: accept: %s\n", strerror(errno));
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        conn *c = calloc(1, sizeof(conn));
        if (!c) { perror("calloc"); exit(1); }
        c->fd = fd;
        c->kind = C_REQUEST;
        c->next = conn_list;
        if (conn_list) conn_list->prev = c;
        conn_list = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        nconns++;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            perror("epoll_ctl");
            close_conn(c);
        }
    }
}

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static void usage(FILE *f) {
    fputs("usage: floor [--port P] [--max-queue BYTES] [--sndbuf BYTES]\n"
          "  GET /events?topics=a,b/*   POST /publish?topic=T&count=C&size=S   GET /stats\n",
          f);
}

int main(int argc, char **argv) {
    long port = 0;
    for (int a = 1; a < argc; a++) {
        long v;
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) { usage(stdout); return 0; }
        if (a + 1 >= argc || !parse_uint(argv[a + 1], strlen(argv[a + 1]), 1L << 30, &v)) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(argv[a], "--port") && v <= 65535) port = v;
        else if (!strcmp(argv[a], "--max-queue") && v > 0) max_queue = (size_t)v;
        else if (!strcmp(argv[a], "--sndbuf") && v > 0) sndbuf = (int)v;
        else { usage(stderr); return 2; }
        a++;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listen_fd, 4096) != 0) {
        perror("floor: bind/listen");
        return 2;
    }
    socklen_t alen = sizeof addr;
    getsockname(listen_fd, (struct sockaddr *)&addr, &alen);
    printf("LISTENING %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev);

    struct epoll_event evs[1024];
    while (!stopping) {
        int n = epoll_wait(ep, evs, 1024, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) { on_accept(); continue; }
            if (c->closed) continue;
            uint32_t f = evs[i].events;
            if (f & EPOLLERR) { close_conn(c); continue; }
            if (f & EPOLLOUT) flush_conn(c);
            if (c->closed) continue;
            if (f & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) on_readable(c);
        }
        flush_dirty();
        free_zombies();
    }

    /* clean exit: close everything, free every frame and structure */
    while (conn_list) close_conn(conn_list);
    free_zombies();
    free(all_subs);
    free(dirty);
    for (size_t i = 0; i < tmap_cap; i++) if (tmap[i]) { free(tmap[i]->m); free(tmap[i]->name); free(tmap[i]); }
    free(tmap);
    close(ep);
    close(listen_fd);
    if (spare_fd >= 0) close(spare_fd);
    fprintf(stderr, "floor: exiting\n");
    return 0;
}
