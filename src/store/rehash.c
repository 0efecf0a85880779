/* The hashing thread of the patch stream (rehash_priv.h). One thread, one
 * read buffer of RH_BUF bytes, a queue of RH_QUEUE requests and one digest
 * per member (at most CF_MAX_MEMBERS): the memory does not grow with the
 * database. */
#include "rehash_priv.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clamfresh/limits.h"

#define RH_BUF (1024 * 1024)
#define RH_QUEUE 64

enum { OP_BEGIN, OP_FEED, OP_END };

typedef struct op {
    int kind;
    uint64_t off, len; /* OP_FEED */
    int keep;          /* OP_END */
} op;

typedef struct member {
    uint8_t digest[32];
    int err;          /* errno of a failed read; -1 = the file ended early; 0 = none */
    uint64_t err_off; /* where */
    int dropped;
} member;

struct cf_rehash {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* queued, taken, or stop */
    op queue[RH_QUEUE];
    size_t head, tail; /* ops [head, tail) wait or run, modulo RH_QUEUE: head moves on when one is done */
    member *members;
    size_t nmembers; /* begun */
    int stop;
};

/* The thread's side: the member being hashed. */
typedef struct cursor {
    EVP_MD_CTX *md;
    uint8_t *buf;
    int err;
    uint64_t err_off;
} cursor;

static void feed_range(cf_rehash *h, cursor *c, uint64_t off, uint64_t len)
{
    while (len > 0 && c->err == 0) {
        size_t want = len < RH_BUF ? (size_t)len : RH_BUF;
        ssize_t k = pread(h->fd, c->buf, want, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            c->err = k < 0 ? errno : -1;
            c->err_off = off;
            return;
        }
        EVP_DigestUpdate(c->md, c->buf, (size_t)k);
        off += (uint64_t)k;
        len -= (uint64_t)k;
    }
}

static void *worker(void *arg)
{
    cf_rehash *h = arg;
    cursor c = {EVP_MD_CTX_new(), malloc(RH_BUF), 0, 0};
    size_t cur = 0; /* index of the member being hashed */
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stop && h->head == h->tail)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stop)
            break;
        op o = h->queue[h->head % RH_QUEUE];
        pthread_mutex_unlock(&h->mu);
        uint8_t d[32] = {0};
        if (o.kind == OP_BEGIN) {
            c.err = c.md == NULL || c.buf == NULL || EVP_DigestInit_ex(c.md, EVP_sha256(), NULL) != 1 ? ENOMEM
                                                                                                      : 0;
            c.err_off = 0;
        } else if (o.kind == OP_FEED) {
            feed_range(h, &c, o.off, o.len);
        } else if (c.err == 0) {
            EVP_DigestFinal_ex(c.md, d, NULL);
        }
        pthread_mutex_lock(&h->mu);
        if (o.kind == OP_END) {
            memcpy(h->members[cur].digest, d, 32);
            h->members[cur].err = c.err;
            h->members[cur].err_off = c.err_off;
            h->members[cur].dropped = !o.keep;
            cur++;
        }
        h->head++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    EVP_MD_CTX_free(c.md);
    free(c.buf);
    return NULL;
}

cf_rehash *cf_rehash_new(int fd, cf_err *e)
{
    cf_rehash *h = calloc(1, sizeof *h);
    member *m = calloc(CF_MAX_MEMBERS, sizeof *m);
    if (h == NULL || m == NULL) {
        free(h);
        free(m);
        cf_err_set(e, CF_ENOMEM, "out of memory");
        return NULL;
    }
    h->fd = fd;
    h->members = m;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    int rc = pthread_create(&h->thread, NULL, worker, h);
    if (rc != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h->members);
        free(h);
        cf_err_set(e, CF_ENOMEM, "cannot start the hashing thread: %s", strerror(rc));
        return NULL;
    }
    return h;
}

static void push(cf_rehash *h, op o)
{
    pthread_mutex_lock(&h->mu);
    while (h->tail - h->head == RH_QUEUE)
        pthread_cond_wait(&h->cv, &h->mu);
    h->queue[h->tail % RH_QUEUE] = o;
    h->tail++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

long cf_rehash_begin(cf_rehash *h, cf_err *e)
{
    if (h->nmembers >= CF_MAX_MEMBERS) {
        cf_err_set(e, CF_ETOOBIG, "more than %d members to hash", CF_MAX_MEMBERS);
        return -1;
    }
    push(h, (op){.kind = OP_BEGIN});
    return (long)h->nmembers++;
}

void cf_rehash_feed(cf_rehash *h, uint64_t off, uint64_t len)
{
    if (len > 0)
        push(h, (op){.kind = OP_FEED, .off = off, .len = len});
}

void cf_rehash_end(cf_rehash *h, int keep)
{
    push(h, (op){.kind = OP_END, .keep = keep});
}

cf_code cf_rehash_wait(cf_rehash *h, cf_err *e)
{
    pthread_mutex_lock(&h->mu);
    while (h->head != h->tail)
        pthread_cond_wait(&h->cv, &h->mu);
    cf_code rc = CF_OK;
    for (size_t i = 0; i < h->nmembers && rc == CF_OK; i++) {
        const member *m = &h->members[i];
        if (m->err != 0 && !m->dropped)
            rc = cf_err_set(e, CF_EIO, "reading back the staged file at byte %llu failed: %s",
                            (unsigned long long)m->err_off,
                            m->err < 0 ? "the file is shorter" : strerror(m->err));
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

const uint8_t *cf_rehash_digest(const cf_rehash *h, long i)
{
    return h->members[i].digest;
}

void cf_rehash_free(cf_rehash *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->members);
    free(h);
}
