/*
 * media._lane: the compiled forwarding lane, one listener's outbound stream on the hot path.
 *
 * `Lane.send()` does, in one C call, what `media.lane.PyLane.send()` does in Python (that pure-Python
 * lane is the fallback and the reference: both pass the same tests, tests/media/test_lane.py):
 * rewrite the sequence number and timestamp (the `RtpMunger` rules of media/rtp_munger.py, bit for
 * bit), build the RTP header (the listener's payload type, SSRC and header extensions), protect
 * the packet with the listener's libsrtp session, hand it to the listener's UDP socket, and count
 * what the RTCP sender reports state; `sync()` writes those counts into the aiortc sender (and
 * the DTLS transport's byte counts) before each report, not on every packet.
 *
 * libsrtp is the one pylibsrtp carries: the session pointer and `srtp_protect`'s address come
 * from pylibsrtp's cffi binding (radiocore.aiortc_hooks.srtp_addresses), so the context is used
 * with the library copy that created it. The lane keeps a reference to the session object, the
 * socket, the sender and the transport it writes to. Single-threaded: the event loop's thread.
 *
 * Built by setup.py (optional: without a C compiler and Python's headers, media.lane falls back to
 * the pure-Python lane).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define SEQ_MASK 0xFFFFu
#define HALF_SEQ 0x8000u
#define WINDOW 64u
#define RESTART_BEHIND 1000u
#define MAX_PAUSE_S 3600.0
#define NTP_ONE_SECOND 4294967296.0
/* the same limits as pylibsrtp's Session: a 1500-byte buffer less SRTP's largest trailer */
#define SRTP_BUFFER 1500
#define SRTP_MAX_TRAILER_LEN 144
#define MAX_TAIL 256

typedef int (*protect_fn)(void *ctx, void *rtp, int *len);

typedef struct {
    PyObject_HEAD
    /* munger (media/rtp_munger.py) */
    uint32_t clock_rate;
    int has_source;
    long long source;
    uint32_t seq_offset;
    uint32_t ts_offset;
    uint32_t highest_in;
    uint32_t highest_ts_in;
    uint64_t highest_ntp;
    uint64_t sent_window;
    /* header and SRTP (wire) */
    unsigned char first_byte;
    unsigned char payload_type;
    unsigned char tail[MAX_TAIL];
    Py_ssize_t tail_len;
    void *srtp;
    protect_fn protect;
    PyObject *session;
    PyObject *sender;
    PyObject *dtls;
    /* socket (use_socket): NULL = return the protected packet (a relayed pair's queue) */
    PyObject *sock;
    /* follow(): aioice's live map of nominated pairs and the pair this lane sends on; a batch
     * (send_many) leaves the lane to its Python caller once the map names another pair */
    PyObject *nominated;
    PyObject *pair;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    /* counters */
    unsigned long long packets;
    unsigned long long octets;
    unsigned long long late;
    unsigned long long send_errors;
    unsigned long long tx_bytes;
    unsigned long long tx_packets;
    uint64_t last_ntp;  /* the NTP and RTP times of the last packet sent (the SR's pair) */
    uint32_t last_rtp_ts;
    /* the sender's and transport's counters before this lane added to them */
    unsigned long long base_packets;
    unsigned long long base_octets;
    unsigned long long base_tx_bytes;
    unsigned long long base_tx_packets;
    unsigned char buffer[SRTP_BUFFER];
} Lane;

static PyObject *s_ntp, *s_rtp_ts, *s_octets, *s_packets, *s_tx_bytes, *s_tx_packets, *s_fileno;
static PyObject *rtp_component; /* 1: the key of RTP's pair in the nominated map */
static PyTypeObject LaneType;

/* ---- munger ---------------------------------------------------------------------------- */

static void rebase(Lane *self, long long source, uint32_t seq, uint32_t ts, uint64_t ntp)
{
    uint32_t highest_seq = (self->highest_in + self->seq_offset) & SEQ_MASK;
    uint32_t highest_ts = self->highest_ts_in + self->ts_offset;
    uint32_t advance = 0;
    if (self->highest_ntp) {
        double elapsed = 0.0;
        if (ntp > self->highest_ntp)
            elapsed = (double)(ntp - self->highest_ntp) / NTP_ONE_SECOND;
        if (elapsed > MAX_PAUSE_S)
            elapsed = MAX_PAUSE_S;
        /* Python's round(): half to even, which nearbyint is in the default rounding mode */
        double rounded = nearbyint(elapsed * (double)self->clock_rate);
        advance = rounded < 1.0 ? 1u : (uint32_t)rounded;
    }
    self->seq_offset = (highest_seq + 1u - seq) & SEQ_MASK;
    self->ts_offset = highest_ts + advance - ts;
    self->highest_in = (seq - 1u) & SEQ_MASK;
    self->highest_ts_in = ts - advance;
    self->sent_window = ~(uint64_t)0;
    self->source = source;
    self->has_source = 1;
}

/* 1 and the outgoing numbers, or 0: drop the packet (late or sent before) */
static int munge(Lane *self, long long source, uint32_t seq, uint32_t ts, uint64_t ntp,
                 uint32_t *out_seq, uint32_t *out_ts)
{
    if (!self->has_source || source != self->source)
        rebase(self, source, seq, ts, ntp);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t diff = (seq - self->highest_in) & SEQ_MASK;
        if (diff > 0 && diff < HALF_SEQ) {
            self->highest_in = seq;
            self->highest_ts_in = ts;
            self->highest_ntp = ntp;
            self->sent_window = diff < WINDOW ? (self->sent_window << diff) | 1u : 1u;
            *out_seq = (seq + self->seq_offset) & SEQ_MASK;
            *out_ts = ts + self->ts_offset;
            return 1;
        }
        uint32_t behind = (self->highest_in - seq) & SEQ_MASK;
        if (behind >= WINDOW) {
            if (behind < RESTART_BEHIND)
                return 0;
            rebase(self, source, seq, ts, ntp); /* then the packet is the newest */
            continue;
        }
        uint64_t bit = (uint64_t)1 << behind;
        if (self->sent_window & bit)
            return 0;
        self->sent_window |= bit;
        *out_seq = (seq + self->seq_offset) & SEQ_MASK;
        *out_ts = ts + self->ts_offset;
        return 1;
    }
    return 0; /* not reached: after a rebase the packet is always the newest */
}

/* ---- argument helpers ---------------------------------------------------------------------- */

static int as_u64(PyObject *o, uint64_t *out, const char *what)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int", what);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static int as_ll(PyObject *o, long long *out, const char *what)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int", what);
        return -1;
    }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static int set_count(PyObject *obj, PyObject *name, unsigned long long value)
{
    PyObject *v = PyLong_FromUnsignedLongLong(value);
    if (v == NULL)
        return -1;
    int rc = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return rc;
}

static int get_count(PyObject *obj, PyObject *name, unsigned long long *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsUnsignedLongLong(v);
    Py_DECREF(v);
    return (*out == (unsigned long long)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* ---- the type -------------------------------------------------------------------------------- */

static int Lane_init(Lane *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"clock_rate", "first_seq", "first_ts", NULL};
    unsigned int clock_rate, first_seq, first_ts;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "III", kwlist, &clock_rate, &first_seq,
                                     &first_ts))
        return -1;
    if (clock_rate == 0) {
        PyErr_SetString(PyExc_ValueError, "clock_rate must be above 0");
        return -1;
    }
    self->clock_rate = clock_rate;
    self->has_source = 0;
    self->seq_offset = 0;
    self->ts_offset = 0;
    self->highest_in = (first_seq - 1u) & SEQ_MASK;
    self->highest_ts_in = first_ts;
    self->highest_ntp = 0;
    self->sent_window = ~(uint64_t)0;
    return 0;
}

static int Lane_traverse(Lane *self, visitproc visit, void *arg)
{
    Py_VISIT(self->session);
    Py_VISIT(self->sender);
    Py_VISIT(self->dtls);
    Py_VISIT(self->sock);
    Py_VISIT(self->nominated);
    Py_VISIT(self->pair);
    return 0;
}

static int Lane_clear(Lane *self)
{
    Py_CLEAR(self->session);
    Py_CLEAR(self->sender);
    Py_CLEAR(self->dtls);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->nominated);
    Py_CLEAR(self->pair);
    self->srtp = NULL;
    self->protect = NULL;
    return 0;
}

static void Lane_dealloc(Lane *self)
{
    PyObject_GC_UnTrack(self);
    Lane_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Lane_munge(Lane *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long source;
    uint64_t seq, ts, ntp;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "munge(source, seq, ts, ntp)");
        return NULL;
    }
    if (as_ll(args[0], &source, "source") || as_u64(args[1], &seq, "seq") ||
        as_u64(args[2], &ts, "ts") || as_u64(args[3], &ntp, "ntp"))
        return NULL;
    uint32_t out_seq, out_ts;
    if (!munge(self, source, (uint32_t)(seq & SEQ_MASK), (uint32_t)ts, ntp, &out_seq, &out_ts))
        Py_RETURN_NONE;
    return Py_BuildValue("(kk)", (unsigned long)out_seq, (unsigned long)out_ts);
}

static PyObject *Lane_wire(Lane *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"first_byte", "payload_type", "tail",   "session", "srtp",
                             "protect",    "sender",       "dtls",   NULL};
    unsigned char first_byte, payload_type;
    Py_buffer tail;
    PyObject *session, *sender, *dtls;
    unsigned long long srtp, protect;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "bby*OKKOO", kwlist, &first_byte, &payload_type,
                                     &tail, &session, &srtp, &protect, &sender, &dtls))
        return NULL;
    if (tail.len > MAX_TAIL || srtp == 0 || protect == 0) {
        PyBuffer_Release(&tail);
        PyErr_SetString(PyExc_ValueError, "header tail too long, or no SRTP session");
        return NULL;
    }
    unsigned long long base_packets, base_octets, base_tx_bytes, base_tx_packets;
    if (get_count(sender, s_packets, &base_packets) || get_count(sender, s_octets, &base_octets) ||
        get_count(dtls, s_tx_bytes, &base_tx_bytes) ||
        get_count(dtls, s_tx_packets, &base_tx_packets)) {
        PyBuffer_Release(&tail);
        return NULL;
    }
    memcpy(self->tail, tail.buf, (size_t)tail.len);
    self->tail_len = tail.len;
    PyBuffer_Release(&tail);
    self->first_byte = first_byte;
    self->payload_type = payload_type;
    self->srtp = (void *)(uintptr_t)srtp;
    self->protect = (protect_fn)(uintptr_t)protect;
    Py_INCREF(session);
    Py_XSETREF(self->session, session);
    Py_INCREF(sender);
    Py_XSETREF(self->sender, sender);
    Py_INCREF(dtls);
    Py_XSETREF(self->dtls, dtls);
    self->base_packets = base_packets - self->packets;
    self->base_octets = base_octets - self->octets;
    self->base_tx_bytes = base_tx_bytes - self->tx_bytes;
    self->base_tx_packets = base_tx_packets - self->tx_packets;
    Py_RETURN_NONE;
}

/* use_socket(sock, family, address, port, scope_id) or use_socket(None): returned packets */
static PyObject *Lane_use_socket(Lane *self, PyObject *args)
{
    PyObject *sock;
    int family = 0, port = 0;
    unsigned int scope_id = 0;
    const char *host = NULL;
    if (!PyArg_ParseTuple(args, "O|isiI", &sock, &family, &host, &port, &scope_id))
        return NULL;
    if (sock == Py_None) {
        Py_CLEAR(self->sock);
        Py_RETURN_NONE;
    }
    memset(&self->addr, 0, sizeof(self->addr));
    if (host == NULL || port <= 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "use_socket needs a family, an address and a port");
        return NULL;
    }
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&self->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad;
        self->addr_len = sizeof(*a);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&self->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_scope_id = scope_id;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad;
        self->addr_len = sizeof(*a);
    } else {
        goto bad;
    }
    Py_INCREF(sock);
    Py_XSETREF(self->sock, sock);
    Py_RETURN_NONE;
bad:
    PyErr_Format(PyExc_ValueError, "not a numeric address of family %d: %s", family, host);
    return NULL;
}

/* The protected packet of a munged (out_seq, out_ts) in the lane's buffer; its length in *len;
 * -1 with an exception set when libsrtp refuses it. The caller checked the length. */
static int build(Lane *self, uint32_t out_seq, uint32_t out_ts, uint64_t marker,
                 PyObject *payload, int *len)
{
    Py_ssize_t payload_len = PyBytes_GET_SIZE(payload);
    unsigned char *b = self->buffer;
    b[0] = self->first_byte;
    b[1] = (unsigned char)(self->payload_type | (marker ? 0x80 : 0));
    b[2] = (unsigned char)(out_seq >> 8);
    b[3] = (unsigned char)out_seq;
    b[4] = (unsigned char)(out_ts >> 24);
    b[5] = (unsigned char)(out_ts >> 16);
    b[6] = (unsigned char)(out_ts >> 8);
    b[7] = (unsigned char)out_ts;
    memcpy(b + 8, self->tail, (size_t)self->tail_len);
    memcpy(b + 8 + self->tail_len, PyBytes_AS_STRING(payload), (size_t)payload_len);
    *len = (int)(8 + self->tail_len + payload_len);
    int rc = self->protect(self->srtp, b, len);
    if (rc != 0) {
        PyErr_Format(PyExc_RuntimeError, "srtp_protect failed (%d)", rc);
        return -1;
    }
    return 0;
}

/* The socket's number (-1: closed) in *fd; -1 with an exception set if fileno() fails. */
static int socket_fd(PyObject *sock, long *fd)
{
    PyObject *fileno = PyObject_CallMethodNoArgs(sock, s_fileno);
    if (fileno == NULL)
        return -1;
    *fd = PyLong_AsLong(fileno);
    Py_DECREF(fileno);
    if (*fd == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/* What the sender reports state of a packet sent (or returned) */
static void count_sent(Lane *self, Py_ssize_t payload_len, int len, uint64_t ntp, uint32_t out_ts)
{
    self->packets++;
    self->octets += (unsigned long long)payload_len;
    self->tx_packets++;
    self->tx_bytes += (unsigned long long)len;
    self->last_ntp = ntp;
    self->last_rtp_ts = out_ts;
}

/* The arguments (source, seq, ts, marker, payload, ntp) of send and send_many; -1 with an
 * exception set when one is not what it must be. */
static int packet_args(PyObject *const *args, long long *source, uint64_t *seq, uint64_t *ts,
                       uint64_t *marker, PyObject **payload, uint64_t *ntp)
{
    if (as_ll(args[0], source, "source") || as_u64(args[1], seq, "seq") ||
        as_u64(args[2], ts, "ts") || as_u64(args[3], marker, "marker") ||
        as_u64(args[5], ntp, "ntp"))
        return -1;
    *payload = args[4];
    if (!PyBytes_Check(*payload)) {
        PyErr_SetString(PyExc_TypeError, "payload must be bytes");
        return -1;
    }
    return 0;
}

/* send(source, seq, ts, marker, payload, ntp): None once handed to the socket (or dropped as
 * late), or the protected packet when the lane has no socket (the caller queues it). */
static PyObject *Lane_send(Lane *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long source;
    uint64_t seq, ts, ntp, marker;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "send(source, seq, ts, marker, payload, ntp)");
        return NULL;
    }
    PyObject *payload;
    if (packet_args(args, &source, &seq, &ts, &marker, &payload, &ntp) < 0)
        return NULL;
    if (self->protect == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the lane is not wired");
        return NULL;
    }
    Py_ssize_t payload_len = PyBytes_GET_SIZE(payload);
    Py_ssize_t length = 8 + self->tail_len + payload_len;
    if (length > SRTP_BUFFER - SRTP_MAX_TRAILER_LEN) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return NULL;
    }
    uint32_t out_seq, out_ts;
    if (!munge(self, source, (uint32_t)(seq & SEQ_MASK), (uint32_t)ts, ntp, &out_seq, &out_ts)) {
        self->late++;
        Py_RETURN_NONE;
    }
    int len = 0;
    if (build(self, out_seq, out_ts, marker, payload, &len) < 0)
        return NULL;
    PyObject *result = NULL;
    if (self->sock != NULL) {
        long fd;
        if (socket_fd(self->sock, &fd) < 0)
            return NULL;
        if (fd < 0) { /* the socket is closed: nothing to send on (its number may be reused) */
            self->send_errors++;
            Py_RETURN_NONE;
        }
        ssize_t sent = sendto((int)fd, self->buffer, (size_t)len, MSG_DONTWAIT,
                              (struct sockaddr *)&self->addr, self->addr_len);
        if (sent < 0)
            self->send_errors++; /* a full socket buffer loses the packet, as UDP does */
    } else {
        result = PyBytes_FromStringAndSize((const char *)self->buffer, len);
        if (result == NULL)
            return NULL;
    }
    count_sent(self, payload_len, len, ntp, out_ts);
    if (result != NULL)
        return result;
    Py_RETURN_NONE;
}

/* follow(nominated, pair) or follow(None, None): see the struct */
static PyObject *Lane_follow(Lane *self, PyObject *args)
{
    PyObject *nominated, *pair;
    if (!PyArg_ParseTuple(args, "OO", &nominated, &pair))
        return NULL;
    if (nominated == Py_None) {
        Py_CLEAR(self->nominated);
        Py_CLEAR(self->pair);
        Py_RETURN_NONE;
    }
    if (!PyDict_Check(nominated)) {
        PyErr_SetString(PyExc_TypeError, "follow(nominated: dict, pair) or follow(None, None)");
        return NULL;
    }
    Py_INCREF(nominated);
    Py_XSETREF(self->nominated, nominated);
    Py_INCREF(pair);
    Py_XSETREF(self->pair, pair);
    Py_RETURN_NONE;
}

#define BATCH 64

/* Hand `count` built packets to `fd` with sendmmsg; each one the socket refuses counts as a
 * send error of its lane (as Lane.send counts a refused sendto). */
static void flush_batch(int fd, struct mmsghdr *msgs, Lane **owners, int count)
{
    int done = 0;
    for (int attempt = 0; done < count && attempt < count; attempt++) {
        int sent = sendmmsg(fd, msgs + done, (unsigned int)(count - done), MSG_DONTWAIT);
        if (sent <= 0) {
            owners[done]->send_errors++; /* the first one failed: lost, as UDP loses it */
            done++;
        } else {
            done += sent;
        }
    }
    for (; done < count; done++) /* not reached: each attempt settles at least one */
        owners[done]->send_errors++;
}

/* send_many(lanes, source, seq, ts, marker, payload, ntp): Lane.send for each lane of the tuple
 * (each at most once), the packets handed to their sockets with one sendmmsg per run of lanes
 * on the same socket (one for all of them on a shared port). A lane with no socket, not wired,
 * or whose nominated pair is no longer the one it follows is left alone: the indexes of those
 * are returned (a list, or None when there are none) for the caller's own path. */
static PyObject *send_many(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long source;
    uint64_t seq, ts, ntp, marker;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "send_many(lanes, source, seq, ts, marker, payload, ntp)");
        return NULL;
    }
    PyObject *lanes = args[0];
    if (!PyTuple_Check(lanes)) {
        PyErr_SetString(PyExc_TypeError, "lanes must be a tuple");
        return NULL;
    }
    PyObject *payload;
    if (packet_args(args + 1, &source, &seq, &ts, &marker, &payload, &ntp) < 0)
        return NULL;
    Py_ssize_t payload_len = PyBytes_GET_SIZE(payload);
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    Lane *owners[BATCH];
    int count = 0, batch_fd = -1;
    long fd = -1;
    PyObject *fd_of = NULL; /* the socket whose number `fd` is */
    PyObject *deferred = NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(lanes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(lanes, i);
        if (!PyObject_TypeCheck(item, &LaneType)) {
            PyErr_SetString(PyExc_TypeError, "lanes must hold media._lane.Lane objects");
            goto error;
        }
        Lane *lane = (Lane *)item;
        int ready = lane->protect != NULL && lane->sock != NULL && lane->nominated != NULL;
        if (ready) {
            PyObject *current = PyDict_GetItemWithError(lane->nominated, rtp_component);
            if (current == NULL && PyErr_Occurred())
                goto error;
            ready = current == lane->pair;
        }
        if (!ready) {
            if (deferred == NULL && (deferred = PyList_New(0)) == NULL)
                goto error;
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(deferred, index) < 0) {
                Py_XDECREF(index);
                goto error;
            }
            Py_DECREF(index);
            continue;
        }
        if (8 + lane->tail_len + payload_len > SRTP_BUFFER - SRTP_MAX_TRAILER_LEN) {
            PyErr_SetString(PyExc_ValueError, "packet is too long");
            goto error;
        }
        uint32_t out_seq, out_ts;
        if (!munge(lane, source, (uint32_t)(seq & SEQ_MASK), (uint32_t)ts, ntp, &out_seq,
                   &out_ts)) {
            lane->late++;
            continue;
        }
        if (lane->sock != fd_of) {
            if (socket_fd(lane->sock, &fd) < 0)
                goto error;
            fd_of = lane->sock;
        }
        if (fd < 0) { /* closed: as Lane.send */
            lane->send_errors++;
            continue;
        }
        if (count > 0 && (fd != batch_fd || count == BATCH)) {
            flush_batch(batch_fd, msgs, owners, count);
            count = 0;
        }
        int len = 0;
        if (build(lane, out_seq, out_ts, marker, payload, &len) < 0)
            goto error;
        batch_fd = (int)fd;
        iov[count].iov_base = lane->buffer;
        iov[count].iov_len = (size_t)len;
        memset(&msgs[count], 0, sizeof(msgs[count]));
        msgs[count].msg_hdr.msg_name = &lane->addr;
        msgs[count].msg_hdr.msg_namelen = lane->addr_len;
        msgs[count].msg_hdr.msg_iov = &iov[count];
        msgs[count].msg_hdr.msg_iovlen = 1;
        owners[count] = lane;
        count++;
        count_sent(lane, payload_len, len, ntp, out_ts);
    }
    if (count > 0)
        flush_batch(batch_fd, msgs, owners, count);
    if (deferred != NULL)
        return deferred;
    Py_RETURN_NONE;
error:
    if (count > 0) /* what was built and counted goes */
        flush_batch(batch_fd, msgs, owners, count);
    Py_XDECREF(deferred);
    return NULL;
}

/* sync(): the sender's RTCP sender-report counters and time pair, and the DTLS transport's
 * counts, as this lane has them (called before each sender report) */
static PyObject *Lane_sync(Lane *self, PyObject *unused)
{
    if (self->sender == NULL || self->dtls == NULL)
        Py_RETURN_NONE; /* not wired: nothing sent, nothing to state */
    if (self->packets) {
        PyObject *v_ntp = PyLong_FromUnsignedLongLong(self->last_ntp);
        PyObject *v_ts = PyLong_FromUnsignedLong(self->last_rtp_ts);
        int failed = v_ntp == NULL || v_ts == NULL ||
                     PyObject_SetAttr(self->sender, s_ntp, v_ntp) ||
                     PyObject_SetAttr(self->sender, s_rtp_ts, v_ts);
        Py_XDECREF(v_ntp);
        Py_XDECREF(v_ts);
        if (failed)
            return NULL;
    }
    if (set_count(self->sender, s_octets, self->base_octets + self->octets) ||
        set_count(self->sender, s_packets, self->base_packets + self->packets) ||
        set_count(self->dtls, s_tx_bytes, self->base_tx_bytes + self->tx_bytes) ||
        set_count(self->dtls, s_tx_packets, self->base_tx_packets + self->tx_packets))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *get_packets(Lane *self, void *c) { return PyLong_FromUnsignedLongLong(self->packets); }
static PyObject *get_octets(Lane *self, void *c) { return PyLong_FromUnsignedLongLong(self->octets); }
static PyObject *get_late(Lane *self, void *c) { return PyLong_FromUnsignedLongLong(self->late); }
static PyObject *get_send_errors(Lane *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->send_errors);
}

static PyGetSetDef Lane_getset[] = {
    {"packets", (getter)get_packets, NULL, "packets handed to the socket (or returned)", NULL},
    {"octets", (getter)get_octets, NULL, "RTP payload bytes of those packets", NULL},
    {"late", (getter)get_late, NULL, "packets dropped as late or sent before", NULL},
    {"send_errors", (getter)get_send_errors, NULL, "sends the socket refused", NULL},
    {NULL},
};

static PyMethodDef Lane_methods[] = {
    {"munge", (PyCFunction)(void (*)(void))Lane_munge, METH_FASTCALL,
     "munge(source, seq, ts, ntp) -> (seq, ts) or None: the munger alone (tests)"},
    {"wire", (PyCFunction)(void (*)(void))Lane_wire, METH_VARARGS | METH_KEYWORDS,
     "wire(first_byte, payload_type, tail, session, srtp, protect, sender, dtls)"},
    {"use_socket", (PyCFunction)Lane_use_socket, METH_VARARGS,
     "use_socket(sock, family, host, port, scope_id) or use_socket(None)"},
    {"send", (PyCFunction)(void (*)(void))Lane_send, METH_FASTCALL,
     "send(source, seq, ts, marker, payload, ntp) -> None or the protected packet"},
    {"follow", (PyCFunction)Lane_follow, METH_VARARGS,
     "follow(nominated, pair) or follow(None, None): the pair send_many checks it still sends on"},
    {"sync", (PyCFunction)Lane_sync, METH_NOARGS,
     "sync(): write the counts into the sender and transport (before a sender report)"},
    {NULL},
};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "media._lane.Lane",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One listener's outbound RTP stream (compiled; see media/lane.py)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_traverse = (traverseproc)Lane_traverse,
    .tp_clear = (inquiry)Lane_clear,
    .tp_methods = Lane_methods,
    .tp_getset = Lane_getset,
};

static PyMethodDef module_methods[] = {
    {"send_many", (PyCFunction)(void (*)(void))send_many, METH_FASTCALL,
     "send_many(lanes, source, seq, ts, marker, payload, ntp) -> None or the indexes left"},
    {NULL},
};

static struct PyModuleDef lane_module = {
    PyModuleDef_HEAD_INIT, .m_name = "media._lane",
    .m_doc = "The compiled forwarding lane (see media/lane.py)", .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__lane(void)
{
    s_ntp = PyUnicode_InternFromString("_RTCRtpSender__ntp_timestamp");
    s_rtp_ts = PyUnicode_InternFromString("_RTCRtpSender__rtp_timestamp");
    s_octets = PyUnicode_InternFromString("_RTCRtpSender__octet_count");
    s_packets = PyUnicode_InternFromString("_RTCRtpSender__packet_count");
    s_tx_bytes = PyUnicode_InternFromString("_RTCDtlsTransport__tx_bytes");
    s_tx_packets = PyUnicode_InternFromString("_RTCDtlsTransport__tx_packets");
    s_fileno = PyUnicode_InternFromString("fileno");
    rtp_component = PyLong_FromLong(1);
    if (!rtp_component || !s_ntp || !s_rtp_ts || !s_octets || !s_packets || !s_tx_bytes || !s_tx_packets || !s_fileno)
        return NULL;
    if (PyType_Ready(&LaneType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&lane_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&LaneType);
    if (PyModule_AddObject(m, "Lane", (PyObject *)&LaneType) < 0) {
        Py_DECREF(&LaneType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
